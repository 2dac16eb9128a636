/**
 * checkRuleText compiles a rule file exactly as the service loads it and gives each problem its place
 * in the file: the character range of the field it names, and for a JSONata or regex error inside a
 * template, the exact line and column in the file (not in the expression). The playground underlines
 * these ranges as the author types.
 */
import { isMap, isPair, isScalar, isSeq, parseAllDocuments, type Document, type Node } from 'yaml';
import type { TemplateOptions } from '../render/template.js';
import { compileDocumentSteps, type CompileResult, type CompiledRule } from './compile-document.js';

export interface LocatedProblem {
  /** The problem without its location prefix, e.g. `rules[0] (crash).actions[0].body: S0201: …`. */
  message: string;
  /** Character range in the file (0-based, end exclusive). */
  from: number;
  to: number;
  /** 1-based line and column of `from`. */
  line: number;
  column: number;
}

/**
 * Compile in slices of this long, then let the event loop serve others (the service answers while a large draft
 * compiles).
 */
const SLICE_MS = 5;

async function compileSliced(document: unknown, source: string, options: TemplateOptions): Promise<CompileResult> {
  const steps = compileDocumentSteps(document, source, options);
  let sliceStart = performance.now();
  for (let step = steps.next(); ; step = steps.next()) {
    if (step.done) return step.value;
    if (performance.now() - sliceStart > SLICE_MS) {
      await new Promise((resolve) => setImmediate(resolve));
      sliceStart = performance.now();
    }
  }
}

export async function checkRuleText(
  text: string,
  options: TemplateOptions,
): Promise<{ rules: CompiledRule[]; problems: LocatedProblem[] }> {
  const problems: LocatedProblem[] = [];
  const rules: CompiledRule[] = [];
  const at = (message: string, from: number, to: number): LocatedProblem => ({
    message,
    from,
    to: Math.max(to, from + 1),
    ...lineColumn(text, from),
  });
  const documents = parseAllDocuments(text, { prettyErrors: false });
  for (const [i, doc] of documents.entries()) {
    const prefix = documents.length > 1 ? `document ${i + 1}: ` : '';
    const error = doc.errors[0];
    if (error) {
      problems.push(at(`${prefix}YAML: ${error.message.split('\n')[0]}`, error.pos[0], error.pos[1]));
      continue;
    }
    const value = doc.toJS({ maxAliasCount: 100 }) as unknown;
    if (value === null || value === undefined) continue;
    const { compiled, problems: found } = await compileSliced(value, 'playground', options);
    if (compiled) rules.push(...compiled.rules);
    for (const problem of found) {
      const { from, to, message } = locate(doc, text, problem);
      problems.push(at(`${prefix}${message}`, from, to));
    }
  }
  if (problems.length === 0 && rules.length === 0 && documents.every((d) => d.contents === null)) {
    problems.push(at('no rule document: write "destinations:" and "rules:"', 0, Math.min(1, text.length)));
  }
  return { rules, problems };
}

function lineColumn(text: string, offset: number): { line: number; column: number } {
  const before = text.slice(0, offset);
  return { line: before.split('\n').length, column: offset - before.lastIndexOf('\n') };
}

/**
 * locate follows the problem's path (`rules[0] (name).actions[1].fields.payload.severity: …`) through the
 * YAML nodes as far as it exists, and narrows the range to the field, the unknown key, or the
 * template position the message names.
 */
function locate(doc: Document, text: string, problem: string): { from: number; to: number; message: string } {
  let node: unknown = doc.contents;
  let rest = problem;
  let keyNode: Node | undefined;
  for (;;) {
    const index = /^\[(\d+)\](?: \((?:[^()]|\([^()]*\))*\))?/.exec(rest);
    if (index && isSeq(node) && node.items[Number(index[1])] !== undefined) {
      node = node.items[Number(index[1])];
      keyNode = undefined;
      rest = rest.slice(index[0].length);
      continue;
    }
    const field = /^\.?([^.[:\s]+(?:\.[^.[:\s]+)*)/.exec(rest);
    if (field && isMap(node) && (rest.startsWith('.') || node === doc.contents)) {
      const map = node;
      // A key may hold dots (a field path "payload.severity", a host): try the longest candidate first.
      const parts = field[1].split('.');
      let matched = false;
      for (let n = parts.length; n > 0 && !matched; n--) {
        const candidate = parts.slice(0, n).join('.');
        const pair = map.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === candidate);
        if (pair) {
          node = pair.value;
          keyNode = pair.key as Node;
          rest = rest.slice((rest.startsWith('.') ? 1 : 0) + candidate.length);
          matched = true;
        }
      }
      if (matched) continue;
    }
    break;
  }
  const detail = rest.replace(/^ preset \S+/, '').replace(/^:\s*/, '');
  const unknown = /^unknown field "([^"]+)"/.exec(detail);
  if (unknown && isMap(node)) {
    const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === unknown[1]);
    if (pair && isScalar(pair.key) && pair.key.range)
      return { from: pair.key.range[0], to: pair.key.range[1], message: problem };
  }
  const target = (node ?? keyNode) as Node | undefined;
  const range = target?.range ?? keyNode?.range ?? [0, 0, 0];
  const position = /at line (\d+), column (\d+)/.exec(detail);
  if (position && isScalar(target)) {
    const offset = offsetInScalar(text, target, Number(position[1]), Number(position[2]));
    if (offset !== undefined) {
      const where = lineColumn(text, offset);
      // The expression-relative position and its caret snippet become the file's line and column.
      const message = problem
        .split('\n')[0]
        .replace(/at line \d+, column \d+/, `at line ${where.line}, column ${where.column} of the file`);
      return { from: offset, to: offset + 1, message };
    }
  }
  // A map or list: its first line, not the whole block.
  const end = isScalar(target)
    ? range[1]
    : Math.min(range[1], text.indexOf('\n', range[0]) < 0 ? range[1] : text.indexOf('\n', range[0]));
  return { from: range[0], to: Math.max(end, range[0] + 1), message: problem.split('\n')[0] };
}

/** offsetInScalar maps a line/column inside a scalar's value to the file, where the scalar's style lets us. */
function offsetInScalar(
  text: string,
  scalar: Node & { type?: string },
  line: number,
  column: number,
): number | undefined {
  const [start, end] = scalar.range!;
  if (scalar.type === 'BLOCK_LITERAL' || scalar.type === 'BLOCK_FOLDED') {
    const lines = text.slice(start, end).split('\n');
    const content = lines.slice(1);
    const indent = Math.min(...content.filter((l) => l.trim() !== '').map((l) => l.length - l.trimStart().length));
    if (line > content.length || !Number.isFinite(indent)) return undefined;
    let offset = start + lines[0].length + 1;
    for (let i = 0; i < line - 1; i++) offset += content[i].length + 1;
    return offset + indent + column - 1;
  }
  const source = text.slice(start, end);
  if (line !== 1 || source.includes('\n')) return undefined;
  const quoted = scalar.type === 'QUOTE_DOUBLE' || scalar.type === 'QUOTE_SINGLE';
  if (scalar.type === 'QUOTE_DOUBLE' && source.includes('\\')) return undefined;
  if (scalar.type === 'QUOTE_SINGLE' && source.slice(1, -1).includes("''")) return undefined;
  return start + (quoted ? 1 : 0) + column - 1;
}
