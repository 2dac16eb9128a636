/**
 * lineDiff: what `test --expect` prints when a report differs from its golden file.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { lineDiff } from '../../src/cli/line-diff.js';

describe('line diff', () => {
  it('shows changed lines with two lines of context and separates distant changes', () => {
    const expected = Array.from({ length: 20 }, (_, i) => `line ${i}`);
    const actual = [...expected];
    actual[3] = 'line three';
    actual[16] = 'line sixteen';
    assert.equal(
      lineDiff(expected.join('\n'), actual.join('\n')),
      [
        '  line 1',
        '  line 2',
        '- line 3',
        '+ line three',
        '  line 4',
        '  line 5',
        '  …',
        '  line 14',
        '  line 15',
        '- line 16',
        '+ line sixteen',
        '  line 17',
        '  line 18',
      ].join('\n'),
    );
  });

  it('is empty for equal texts and stays small on two large reports', () => {
    assert.equal(lineDiff('a\nb', 'a\nb'), '');
    const big = Array.from({ length: 20_000 }, (_, i) => `  "field${i}": ${i},`).join('\n');
    const changed = big.replace('"field10000": 10000', '"field10000": 1');
    const diff = lineDiff(big, changed);
    assert.match(diff, /^- {3}"field10000": 10000,$/m);
    assert.match(diff, /^\+ {3}"field10000": 1,$/m);
    assert.equal(diff.split('\n').length, 6);
  });
});
