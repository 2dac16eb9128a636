/** Reading through lru-cache with a fetchMethod: one load per key however many callers miss at once. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { LRUCache } from 'lru-cache';
import { Uncached, fetchShared } from '../../src/kube/fetch-shared.js';

type Answer = { ok: boolean; n: number };

function cacheWithLoads(ttl: number) {
  let loads = 0;
  let release: () => void = () => undefined;
  let gate = Promise.resolve();
  const cache = new LRUCache<string, Answer, { ok: boolean }>({
    max: 10,
    ttl,
    fetchMethod: async (_key, _stale, { context }) => {
      const n = ++loads;
      await gate;
      if (context.ok) return { ok: true, n };
      throw new Uncached({ ok: false, n });
    },
  });
  return {
    cache,
    loads: () => loads,
    hold: () => {
      gate = new Promise((r) => (release = r));
    },
    release: () => release(),
  };
}

describe('fetchShared (lru-cache with a fetchMethod)', () => {
  it('concurrent misses of one key make one load; later reads are answered from the cache', async () => {
    const c = cacheWithLoads(60_000);
    c.hold();
    const waiting = Array.from({ length: 5 }, () => fetchShared(c.cache, 'k', { ok: true }));
    c.release();
    const answers = await Promise.all(waiting);
    assert.equal(c.loads(), 1);
    assert.deepEqual(
      answers.map((a) => a.value.n),
      [1, 1, 1, 1, 1],
    );
    assert.deepEqual(
      answers.map((a) => a.cached),
      [false, true, true, true, true],
    );
    assert.deepEqual(await fetchShared(c.cache, 'k', { ok: true }), { value: { ok: true, n: 1 }, cached: true });
    assert.equal(c.loads(), 1);
  });

  it('a value that must not be kept reaches every waiting caller, then the key is loaded again', async () => {
    const c = cacheWithLoads(60_000);
    c.hold();
    const waiting = Array.from({ length: 3 }, () => fetchShared(c.cache, 'k', { ok: false }));
    c.release();
    const answers = await Promise.all(waiting);
    assert.equal(c.loads(), 1);
    assert.deepEqual(
      answers.map((a) => a.value),
      [
        { ok: false, n: 1 },
        { ok: false, n: 1 },
        { ok: false, n: 1 },
      ],
    );
    assert.equal(c.cache.has('k'), false);
    assert.deepEqual((await fetchShared(c.cache, 'k', { ok: false })).value, { ok: false, n: 2 });
  });

  it('an answer expires after its ttl', async () => {
    const c = cacheWithLoads(20);
    await fetchShared(c.cache, 'k', { ok: true });
    await sleep(60);
    const again = await fetchShared(c.cache, 'k', { ok: true });
    assert.deepEqual(again, { value: { ok: true, n: 2 }, cached: false });
  });
});
