/**
 * lineDiff: a readable diff of two texts (jsdiff's Myers diff: memory grows with the difference, not with
 * the product of the two lengths), only changed lines with a little context, hunks separated by "…".
 */
import { structuredPatch } from 'diff';

export function lineDiff(expected: string, actual: string, context = 2): string {
  const { hunks } = structuredPatch('expected', 'actual', `${expected}\n`, `${actual}\n`, '', '', { context });
  return hunks.map((hunk) => hunk.lines.map((line) => `${line[0]} ${line.slice(1)}`).join('\n')).join('\n  …\n');
}
