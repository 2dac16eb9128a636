/**
 * parseRuleText reads a YAML or JSON file (JSON is YAML) that may hold several documents (`---`).
 * Syntax errors name the line and column.
 */
import { parseAllDocuments } from 'yaml';

export interface ParsedDocuments {
  documents: unknown[];
  problems: string[];
}

export function parseRuleText(text: string): ParsedDocuments {
  const problems: string[] = [];
  const documents: unknown[] = [];
  for (const [i, doc] of parseAllDocuments(text, { prettyErrors: true }).entries()) {
    // The first error is the cause; the ones after it are usually its consequences.
    const error = doc.errors[0];
    if (error) {
      const at = error.linePos?.[0];
      const message = error.message.split('\n')[0].replace(/ at line \d+, column \d+:?$/, '');
      problems.push(`document ${i + 1}: YAML ${at ? `line ${at.line}, column ${at.col}` : ''}: ${message}`);
    }
    const value = doc.errors.length === 0 ? (doc.toJS({ maxAliasCount: 100 }) as unknown) : undefined;
    if (value !== null && value !== undefined) documents.push(value);
  }
  return { documents, problems };
}
