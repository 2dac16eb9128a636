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
      if (value !== null && value !== undefined) documents.push(value);
    }
  } catch (err) {
    problems.push(`YAML: ${describeParseFailure(err)}`);
  }
  return { documents, problems };
}

function describeParseFailure(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  if (/alias count/i.test(message)) return `more than ${MAX_ALIAS_COUNT} alias expansions (a YAML alias bomb?): ${message}`;
  if (err instanceof RangeError) return `nested too deeply to read (${message})`;
  return message;
}
