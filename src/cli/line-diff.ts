/**
 * lineDiff: a readable unified-style diff of two texts (longest common subsequence over lines),
 * showing only changed lines with a little context.
 */
export function lineDiff(expected: string, actual: string, context = 2): string {
  const a = expected.split('\n');
  const b = actual.split('\n');
  const lcs = Array.from({ length: a.length + 1 }, () => new Uint32Array(b.length + 1));
  for (let i = a.length - 1; i >= 0; i--) {
    for (let j = b.length - 1; j >= 0; j--) lcs[i][j] = a[i] === b[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
  }
  const ops: { kind: ' ' | '-' | '+'; text: string }[] = [];
  let i = 0;
  let j = 0;
  while (i < a.length || j < b.length) {
    if (i < a.length && j < b.length && a[i] === b[j]) (ops.push({ kind: ' ', text: a[i] }), i++, j++);
    else if (j < b.length && (i === a.length || lcs[i][j + 1] >= lcs[i + 1][j])) ops.push({ kind: '+', text: b[j++] });
    else ops.push({ kind: '-', text: a[i++] });
  }
  const keep = ops.map((op, k) => op.kind !== ' ' || ops.slice(Math.max(0, k - context), k + context + 1).some((o) => o.kind !== ' '));
  const lines: string[] = [];
  ops.forEach((op, k) => {
    if (keep[k]) lines.push(`${op.kind} ${op.text}`);
    else if (keep[k - 1]) lines.push('  …');
  });
  return lines.join('\n');
}
