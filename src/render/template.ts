/**
 * Guarded JSONata templates. Templates are user input: compile once at load (syntax errors name line
 * and column), evaluate with timeout/stack/sequence guards and a cap on the output, and hand back plain
 * JSON. Templates within the fast path's subset (template-fast-path.ts) are answered on the main thread;
 * the rest go to the sandbox's worker threads when there is one (template-sandbox.ts), where the timeout
 * is the worker's own clock, memory is capped and a worker that runs over is replaced.
 */
import jsonata from 'jsonata';
import { TemplateError, describeError } from '../errors.js';
import { ENRICHMENT_FACTS, type EnrichmentFact } from '../enrich/enrichment-facts.js';
import { LRUCache } from 'lru-cache';
import { BAIL, compileFastPath } from './template-fast-path.js';
import { LinearRegExp, RegexSyntaxError } from './linear-regex.js';
import type { TemplateSandbox } from './template-sandbox.js';

/** The code of the TemplateError thrown when an expression gives no value at all. */
export const EMPTY_RESULT = 'EMPTY';

export interface TemplateOptions {
  /** JSONata's evaluation timeout: the budget of one evaluation (in a worker, the worker's own clock). */
  timeoutMs: number;
  /** Largest result, as JSON text, in bytes (TEMPLATE_MAX_OUTPUT_BYTES); larger is a guard trip. */
  maxOutputBytes?: number;
  /** Where evaluations outside the fast path run; without one, on this thread (CLI, tests of the language). */
  sandbox?: TemplateSandbox;
}

/** The code of the TemplateError thrown when a result is larger than maxOutputBytes. */
export const OUTPUT_TOO_LARGE = 'SIZE';
const DEFAULT_MAX_OUTPUT_BYTES = 1024 * 1024;

/** Depth and sequence-length limits: generous for real payloads, fatal for runaway recursion and huge ranges. */
const STACK_LIMIT = 300;
const SEQUENCE_LIMIT = 100_000;

/**
 * jsonataOptions: how every template is compiled, wherever it is evaluated. Regexes (literals, and those
 * `$eval` builds) run on RE2, in linear time.
 */
export function jsonataOptions(timeoutMs: number): jsonata.JsonataOptions {
  return {
    timeout: timeoutMs,
    stack: STACK_LIMIT,
    sequence: SEQUENCE_LIMIT,
    RegexEngine: LinearRegExp as unknown as RegExpConstructor,
  };
}

export interface Template {
  readonly source: string;
  /** The enrichment bindings it reads (`$object`, `$owner`, `$namespace`), so only those are fetched. */
  readonly uses: ReadonlySet<EnrichmentFact>;
  /**
   * evaluate returns the result as plain JSON, or throws a TemplateError. `deadline` (ms since the epoch): the
   * request's; an evaluation still waiting for a template worker then is dropped (TemplateQueueError).
   */
  evaluate(input: unknown, bindings: Record<string, unknown>, deadline?: number): Promise<unknown>;
  /** render returns the result serialized as JSON text (one serialization on the hot path). */
  render(input: unknown, bindings: Record<string, unknown>, deadline?: number): Promise<string>;
}

/**
 * Compiled templates by source text. A compiled expression keeps no state between evaluations (bindings
 * are passed to each one), so rules sharing a template — every rule built from a preset, generated rule
 * sets — share one AST: 1,000 rules sharing a template went from 28.7 to 5.0 MB of heap (docs/performance.md).
 */
const compiled = new LRUCache<string, Template>({ max: 10_000 });

/** compileTemplate parses a JSONata expression, or throws a TemplateError whose message points at the mistake. */
export function compileTemplate(source: string, options: TemplateOptions): Template {
  const key = `${options.timeoutMs}\u0000${options.maxOutputBytes}\u0000${options.sandbox?.id ?? ''}\u0000${source}`;
  let template = compiled.get(key);
  if (template === undefined) {
    template = compile(source, options);
    compiled.set(key, template);
  }
  return template;
}

/**
 * compileExpression compiles with the guards every evaluation needs — here and in the sandbox's workers,
 * which must compile exactly the same way. Throws a TemplateError.
 */
export function compileExpression(source: string, timeoutMs: number): jsonata.Expression {
  try {
    return jsonata(source, jsonataOptions(timeoutMs));
  } catch (err) {
    throw templateError(source, err);
  }
}

function compile(source: string, options: TemplateOptions): Template {
  const expression = compileExpression(source, options.timeoutMs);
  checkRegexLiterals(source, expression.ast());
  const fast = compileFastPath(expression.ast());
  const maxOutputBytes = options.maxOutputBytes ?? DEFAULT_MAX_OUTPUT_BYTES;
  const { sandbox } = options;
  if (!fast) sandbox?.start(); // before the first event needs it
  const render = async (input: unknown, bindings: Record<string, unknown>, deadline?: number) => {
    let result = fast ? fastResult(fast, input, bindings) : BAIL;
    if (result === BAIL) {
      if (sandbox) return sandbox.render(source, input, bindings, deadline);
      try {
        result = await expression.evaluate(input, bindings);
      } catch (err) {
        throw templateError(source, err);
      }
    }
    return toJsonText(result, maxOutputBytes);
  };
  return {
    source,
    uses: new Set(ENRICHMENT_FACTS.filter((fact) => new RegExp(`\\$${fact}\\b`).test(source))),
    render,
    evaluate: async (input, bindings, deadline) => JSON.parse(await render(input, bindings, deadline)) as unknown,
  };
}

/**
 * checkRegexLiterals compiles every regex literal for RE2 at load, so a back-reference or look-around is
 * reported with its line and column instead of failing on every event.
 */
export function checkRegexLiterals(source: string, ast: unknown): void {
  const seen = new Set<object>();
  const visit = (node: unknown): void => {
    if (node === null || typeof node !== 'object' || seen.has(node)) return;
    seen.add(node);
    const { type, value, position } = node as { type?: unknown; value?: unknown; position?: unknown };
    if (type === 'regex' && value instanceof RegExp) {
      try {
        new LinearRegExp(value);
      } catch (err) {
        if (!(err instanceof RegexSyntaxError)) throw err;
        // A regex node's position is just past its flags: `/pattern/flags`.
        const end = typeof position === 'number' ? position : source.length;
        const start = end - value.flags.replace('g', '').length - 1 - value.source.length;
        throw new TemplateError(
          `regex: ${err.reason} at ${pointAt(source, start + err.position)}`,
          'REGEX',
          start + err.position,
        );
      }
    }
    for (const child of Object.values(node)) visit(child);
  };
  visit(ast);
}

/** fastResult evaluates on the fast path; should it ever throw, JSONata gets the final word. */
function fastResult(
  fast: NonNullable<ReturnType<typeof compileFastPath>>,
  input: unknown,
  bindings: Record<string, unknown>,
): unknown {
  try {
    return fast(input, bindings);
  } catch {
    return BAIL;
  }
}

/**
 * toJsonText rejects results that are not JSON (functions, nothing at all) or larger than maxOutputBytes;
 * serializing also drops JSONata's null prototypes.
 */
export function toJsonText(result: unknown, maxOutputBytes: number): string {
  if (result === undefined)
    throw new TemplateError('template produced no value (an empty result: check the paths it reads)', EMPTY_RESULT);
  const text = JSON.stringify(result, (_key, value: unknown) => {
    if (typeof value === 'function') throw new TemplateError('template produced a function, not a JSON value');
    return value;
  });
  if (text.length > maxOutputBytes / 3 && Buffer.byteLength(text) > maxOutputBytes) {
    throw new TemplateError(
      `template produced ${Buffer.byteLength(text)} bytes of JSON, more than TEMPLATE_MAX_OUTPUT_BYTES (${maxOutputBytes})`,
      OUTPUT_TOO_LARGE,
    );
  }
  return text;
}

/** templateError wraps a JSONata error object (not an Error) into a TemplateError with code and position. */
export function templateError(source: string, err: unknown): TemplateError {
  if (err instanceof TemplateError) return err;
  const { code, position, token } = (err ?? {}) as { code?: string; position?: number; token?: unknown };
  const message = describeError(err);
  if (typeof position !== 'number' || code?.startsWith('D1012') || code === 'D1011' || code === 'D2015') {
    return new TemplateError(code ? `${code}: ${message}` : message, code, position);
  }
  // JSONata positions point just past the offending token; point at its start.
  const start = position - (typeof token === 'string' ? token.length : 1);
  return new TemplateError(`${code ?? 'error'}: ${message} at ${pointAt(source, start)}`, code, position);
}

/** pointAt describes a 0-based character index as "line L, column C" followed by the line and a caret under it. */
export function pointAt(source: string, position: number): string {
  const index = Math.max(0, Math.min(source.length, position));
  const before = source.slice(0, index);
  const line = before.split('\n').length;
  const lineStart = before.lastIndexOf('\n') + 1;
  const lineEnd = source.indexOf('\n', lineStart);
  const text = source.slice(lineStart, lineEnd < 0 ? undefined : lineEnd);
  const column = index - lineStart + 1;
  return `line ${line}, column ${column}\n    ${text}\n    ${' '.repeat(column - 1)}^`;
}
