import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HashedTable } from '../../src/store/hashed-table.js';

/**
 * The behaviour HashedTable must have, written the obvious way: a key is present while one of the last
 * `capacity` writes wrote it and no delete came after.
 */
class MapModel {
  private readonly lastWrite = new Map<string, { at: number; values: number[] }>();
  private writes = 0;
  constructor(
    private readonly capacity: number,
    private readonly fields: number,
  ) {}
  get(key: string): number[] | undefined {
    const entry = this.lastWrite.get(key);
    return entry && entry.at > this.writes - this.capacity ? entry.values : undefined;
  }
  write(key: string): number[] {
    const values = this.get(key) ?? new Array<number>(this.fields).fill(0);
    this.lastWrite.set(key, { at: ++this.writes, values });
    return values;
  }
  delete(key: string): void {
    this.lastWrite.delete(key);
  }
  get size(): number {
    return [...this.lastWrite.keys()].filter((key) => this.get(key)).length;
  }
}

/** A small seeded generator (mulberry32), so a failure can be replayed. */
function random(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('HashedTable', () => {
  for (const [capacity, keySpace] of [
    [1, 4],
    [7, 20],
    [64, 100],
    [1000, 3000],
  ] as const) {
    it(`agrees with a Map model over 20,000 random writes, reads and deletes (capacity ${capacity}, ${keySpace} keys)`, () => {
      const next = random(capacity * 7919 + keySpace);
      const table = new HashedTable(capacity, 2);
      const model = new MapModel(capacity, 2);
      for (let step = 0; step < 20_000; step++) {
        const key = `key-${Math.floor(next() * keySpace)}`;
        const op = next();
        if (op < 0.5) {
          const slot = table.write(key);
          const expected = model.write(key);
          assert.equal(table.get(slot, 0), expected[0], `step ${step}: write ${key} keeps field 0`);
          const value = Math.floor(next() * 1e12);
          table.set(slot, 0, value);
          table.set(slot, 1, -value);
          expected[0] = value;
          expected[1] = -value;
        } else if (op < 0.6) {
          table.delete(key);
          model.delete(key);
        } else {
          const slot = table.find(key);
          const expected = model.get(key);
          assert.equal(slot >= 0, expected !== undefined, `step ${step}: ${key} present`);
          if (expected)
            assert.deepEqual([table.get(slot, 0), table.get(slot, 1)], expected, `step ${step}: ${key} fields`);
        }
        assert.equal(table.size, model.size, `step ${step}: size`);
      }
      // Every key the model still holds is found with its fields, and no other key is.
      for (let k = 0; k < keySpace; k++) {
        const key = `key-${k}`;
        const slot = table.find(key);
        const expected = model.get(key);
        assert.equal(slot >= 0, expected !== undefined, `end: ${key} present`);
        if (expected) assert.deepEqual([table.get(slot, 0), table.get(slot, 1)], expected);
      }
    });
  }

  it('keeps the keys of its last `capacity` writes, the least recently written leaving first', () => {
    const table = new HashedTable(3, 0);
    for (const key of ['a', 'b', 'c']) table.write(key);
    table.write('a'); // the last three writes are b, c, a: b is now the least recently written
    assert.deepEqual(
      ['a', 'b', 'c'].filter((key) => table.find(key) >= 0),
      ['a', 'b', 'c'],
    );
    table.write('d');
    assert.deepEqual(
      ['a', 'b', 'c', 'd'].filter((key) => table.find(key) >= 0),
      ['a', 'c', 'd'],
    );
    assert.equal(table.size, 3);
  });

  it('tells apart 200,000 similar keys (no hash collisions among occurrence-shaped keys)', () => {
    const table = new HashedTable(200_000, 1);
    const key = (i: number) =>
      `2f0c8a4e-${(i % 1000).toString().padStart(4, '0')}-4b1c-9d0e-${Math.floor(i / 1000)
        .toString()
        .padStart(12, '0')}/${i % 7}|team-3-rule-42|0`;
    for (let i = 0; i < 200_000; i++) table.set(table.write(key(i)), 0, i);
    assert.equal(table.size, 200_000);
    for (let i = 0; i < 200_000; i++) assert.equal(table.get(table.find(key(i))), i);
    assert.equal(table.find(key(200_000)), -1);
  });
});
