/**
 * parseRuleText reads a YAML or JSON file (JSON is YAML) that may hold several documents (`---`).
 * Syntax errors name the line and column. Nothing in a text can make it throw: an alias bomb (a
 * billion-laughs document), a nesting too deep for the stack or any other parser failure is a problem of
 * that text, reported like a syntax error.
 */
import { parseAllDocuments } from 'yaml';

export interface ParsedDocuments {
  documents: unknown[];
  problems: string[];
}

/** Aliases a document may expand: plenty for anchors reused in real rules, far below a billion laughs. */
const MAX_ALIAS_COUNT = 100;

/**
 * Values a document may hold once its aliases are expanded. A 1 MiB text holds at most ≈ 500,000; 100
 * aliases of a large anchor would hold 100 times that, and every later step (serializing it out of the
 * parser thread, the schema check) walks them all.
 */
const MAX_VALUES = 1_000_000;

export function parseRuleText(text: string): ParsedDocuments {
  const problems: string[] = [];
  const documents: unknown[] = [];
  try {
    for (const [i, doc] of parseAllDocuments(text, { prettyErrors: true }).entries()) {
      // The first error is the cause; the ones after it are usually its consequences.
      const error = doc.errors[0];
      if (error) {
        const at = error.linePos?.[0];
        const message = error.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
        problems.push(`document ${i + 1}: YAML ${at ? `line ${at.line}, column ${at.col}` : ''}: ${message}`);
        continue;
      }
      let value: unknown;
      try {
        value = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
      } catch (err) {
        problems.push(`document ${i + 1}: ${describeParseFailure(err)}`);
        continue;
      }
      if (countValues(value, MAX_VALUES) > MAX_VALUES) {
        problems.push(`document ${i + 1}: more than ${MAX_VALUES} values once its aliases are expanded`);
        continue;
      }
      if (value !== null && value !== undefined) documents.push(value);
    }
  } catch (err) {
    problems.push(`YAML: ${describeParseFailure(err)}`);
  }
  return { documents, problems };
}

/** countValues counts the values of a parsed document (shared alias targets once per reference), up to `limit` + 1. */
function countValues(value: unknown, limit: number): number {
  let count = 0;
  const pending: unknown[] = [value];
  while (pending.length > 0 && count <= limit) {
    const node = pending.pop();
    count++;
    if (node !== null && typeof node === 'object') for (const child of Object.values(node)) pending.push(child);
  }
  return count;
}

function describeParseFailure(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  if (/alias count/i.test(message))
    return `more than ${MAX_ALIAS_COUNT} alias expansions (a YAML alias bomb?): ${message}`;
  if (err instanceof RangeError) return `nested too deeply to read (${message})`;
  return message;
}
