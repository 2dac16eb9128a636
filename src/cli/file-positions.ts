/**
 * withFilePositions rewrites the template errors of plain rule files so their line and column are the
 * file's (JSONata reports them within the expression), as `file:line:column: …` with the file's line and
 * a caret — what an editor jumps to. Other problems, and those of ConfigMap keys, are kept as they are.
 */
import { readFile } from 'node:fs/promises';
import { checkRuleText, type LocatedProblem } from '../rules/locate-problems.js';

const POSITION = / at line \d+, column \d+( of the file)?$/;
const key = (message: string) =>
  message
    .split('\n')[0]
    .replace(/^document \d+: /, '')
    .replace(POSITION, '');

export async function withFilePositions(statuses: { source: string; errors: string[] }[]): Promise<string[]> {
  const out: string[] = [];
  for (const { source, errors } of statuses) {
    let located: LocatedProblem[] | undefined;
    let text: string | undefined;
    for (const error of errors) {
      const own = error.startsWith(`${source}: `) || error.startsWith(`${source} (document `);
      if (!own || !POSITION.test(error.split('\n')[0])) {
        out.push(error);
        continue;
      }
      if (text === undefined) {
        text = await readFile(source, 'utf8').catch(() => '');
        located = text ? (await checkRuleText(text, { timeoutMs: 100 })).problems : [];
      }
      const rest = error
        .slice(source.length)
        .replace(/^ \(document \d+\)/, '')
        .replace(/^: /, '');
      const match = located!.find((p) => key(p.message) === key(rest));
      if (!match) {
        out.push(error);
        continue;
      }
      const line = text.split('\n')[match.line - 1] ?? '';
      out.push(
        `${source}:${match.line}:${match.column}: ${match.message}\n    ${line}\n    ${' '.repeat(match.column - 1)}^`,
      );
    }
  }
  return out;
}
