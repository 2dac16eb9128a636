/**
 * URL templates: a destination `url: { jsonata }` written as a concatenation — `"https://hooks.example.com/"
 * & involvedObject.namespace & "?pod=" & involvedObject.name`. The literal parts stay as written; the value
 * of every other part is percent-encoded, so event data fills a path segment or a query value and nothing
 * more (`../../admin?x#` arrives as one encoded segment). Only the FIRST part may be an expression used as
 * is — it then chooses the scheme and host, which the tenancy policy allows for cluster rules only. A
 * resolved URL whose path has a `.` or `..` segment is refused: it would reach another path.
 */
import jsonata from 'jsonata';
import { ConfigurationError, TemplateError } from '../errors.js';
import { EMPTY_RESULT, compileTemplate, type Template, type TemplateOptions } from './template.js';

export type UrlPart = { literal: string } | { template: Template };

export interface UrlTemplate {
  kind: 'url';
  source: string;
  parts: UrlPart[];
}

/** compileUrlTemplate compiles the expression (errors point into the whole of it), then each part. */
export function compileUrlTemplate(source: string, options: TemplateOptions): UrlTemplate {
  compileTemplate(source, options);
  const parts: UrlPart[] = [];
  for (const part of concatenationParts(source)) {
    const literal = stringLiteral(part);
    const previous = parts.at(-1);
    if (literal !== undefined && previous && 'literal' in previous) previous.literal += literal;
    else parts.push(literal !== undefined ? { literal } : { template: compileTemplate(part, options) });
  }
  return { kind: 'url', source, parts };
}

/** literalPrefix: the literal text the URL starts with ('' when it starts with an expression). */
export function literalPrefix(template: Pick<UrlTemplate, 'parts'>): string {
  const first = template.parts[0];
  return first && 'literal' in first ? first.literal : '';
}

/** resolveUrlTemplate builds the URL of one event; undefined when no part gave a value. */
export async function resolveUrlTemplate(
  template: UrlTemplate,
  what: string,
  input: unknown,
  bindings: Record<string, unknown>,
  deadline?: number,
): Promise<string | undefined> {
  let url = '';
  let valued = false;
  for (const [index, part] of template.parts.entries()) {
    if ('literal' in part) {
      url += part.literal;
      valued = true;
      continue;
    }
    let value: unknown;
    try {
      value = await part.template.evaluate(input, bindings, deadline);
    } catch (err) {
      if (err instanceof TemplateError && err.code === EMPTY_RESULT) continue; // as JSONata's `&`: nothing adds nothing
      throw err;
    }
    if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') {
      throw new ConfigurationError(
        `${what}: the expression ${JSON.stringify(part.template.source)} must give a string, got ${JSON.stringify(value)}`,
      );
    }
    url += index === 0 ? String(value) : encodeURIComponent(String(value));
    valued = true;
  }
  if (!valued) return undefined;
  if (hasDotSegment(url))
    throw new ConfigurationError(
      `${what}: ${JSON.stringify(url)} has a "." or ".." path segment, which would send it to another path`,
    );
  return url;
}

/** hasDotSegment: a `.` or `..` segment (also percent-encoded, which URL parsers resolve the same) in the path. */
function hasDotSegment(url: string): boolean {
  const path = url.replace(/^[a-z][a-z0-9+.-]*:\/\/[^/?#]*/i, '').split(/[?#]/)[0];
  return path.split(/[/\\]/).some((segment) => /^(\.|%2e){1,2}$/i.test(segment));
}

/**
 * concatenationParts splits an expression at its top-level `&` operators — outside strings, names in
 * backticks, comments and brackets. JSONata's own parse tree must agree on the number of operands;
 * when it does not (a regex literal holding `&`), the whole expression is one part.
 */
function concatenationParts(source: string): string[] {
  const parts: string[] = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i < source.length; i++) {
    const c = source[i];
    if (c === '"' || c === "'" || c === '`') {
      for (i++; i < source.length && source[i] !== c; i++) if (source[i] === '\\' && c !== '`') i++;
    } else if (c === '/' && source[i + 1] === '*') {
      const end = source.indexOf('*/', i + 2);
      i = end < 0 ? source.length : end + 1;
    } else if ('([{'.includes(c)) depth++;
    else if (')]}'.includes(c)) depth--;
    else if (c === '&' && depth === 0) {
      parts.push(source.slice(start, i).trim());
      start = i + 1;
    }
  }
  parts.push(source.slice(start).trim());
  return parts.length === operandCount(jsonata(source).ast() as Node) ? parts : [source];
}

type Node = { type?: string; value?: unknown; lhs?: Node; rhs?: Node };

function operandCount(node: Node): number {
  return node.type === 'binary' && node.value === '&' ? operandCount(node.lhs ?? {}) + operandCount(node.rhs ?? {}) : 1;
}

/** stringLiteral: the value of a part that is a plain string literal (escapes resolved by JSONata). */
function stringLiteral(part: string): string | undefined {
  const node = jsonata(part).ast() as Node;
  return node.type === 'string' && typeof node.value === 'string' ? node.value : undefined;
}
