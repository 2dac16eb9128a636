/**
 * The Secret store on a controlled clock: fresh values cached for the TTL; while the API fails, the last
 * good value is served stale (bounded, counted, logged once) and the API asked again no sooner than its
 * Retry-After; a Secret that is gone is never served stale.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { LookupFailedError } from '../../src/enrich/lookup-failed.js';
import { createSecretStore } from '../../src/enrich/secret-store.js';
import { ConfigurationError } from '../../src/errors.js';
import { recordingLogger } from '../support/quiet.js';

function harness() {
  let time = 1_000_000;
  let answer: () => Record<string, string> = () => ({ token: 'v1' });
  const counts: Record<string, number> = {};
  const loads: number[] = [];
  const { log, records } = recordingLogger();
  const store = createSecretStore({
    ttlMs: 30_000,
    staleMs: 60_000,
    count: (outcome) => void (counts[outcome] = (counts[outcome] ?? 0) + 1),
    log,
    now: () => time,
    async load() {
      loads.push(time);
      return answer();
    },
  });
  return {
    store,
    counts,
    loads,
    records,
    advance: (ms: number) => void (time += ms),
    answer: (fn: () => Record<string, string>) => void (answer = fn),
  };
}

const settle = () => new Promise((r) => setImmediate(r));

describe('secret store', () => {
  it('caches for the TTL, then reads again (a rotation is picked up)', async () => {
    const h = harness();
    assert.equal(await h.store.read('s', 'token'), 'v1');
    h.advance(29_000);
    assert.equal(await h.store.read('s', 'token'), 'v1');
    assert.equal(h.loads.length, 1);
    h.answer(() => ({ token: 'v2' }));
    h.advance(2_000);
    assert.equal(await h.store.read('s', 'token'), 'v2');
    assert.equal(h.loads.length, 2);
  });

  it('serves the last good value while the API fails, asks again only after Retry-After, recovers', async () => {
    const h = harness();
    await h.store.read('s', 'token');
    h.advance(31_000);
    h.answer(() => {
      throw new LookupFailedError('API server answered 429', 5_000);
    });
    assert.equal(await h.store.read('s', 'token'), 'v1', 'stale, not an error');
    assert.equal(h.counts.stale, 1);
    for (let i = 0; i < 10; i++) {
      h.advance(400);
      assert.equal(await h.store.read('s', 'token'), 'v1');
    }
    assert.equal(h.loads.length, 2, 'no API read during its Retry-After');
    h.advance(2_000); // 6 s after the failure: one background read, still failing
    await h.store.read('s', 'token');
    await settle();
    assert.equal(h.loads.length, 3);
    assert.equal(
      h.records.filter((r) => String(r.msg).startsWith('Secret unreadable')).length,
      1,
      'one warning per outage',
    );
    h.answer(() => ({ token: 'v2' }));
    h.advance(6_000);
    assert.equal(await h.store.read('s', 'token'), 'v1', 'served stale while the background read runs');
    await settle();
    assert.equal(await h.store.read('s', 'token'), 'v2', 'fresh again once the API answers');
    assert.equal(h.counts.stale, 13);
  });

  it('is bounded: past TTL + SECRET_STALE_SECONDS the failure is the answer', async () => {
    const h = harness();
    await h.store.read('s', 'token');
    h.answer(() => {
      throw new LookupFailedError('API server answered 500');
    });
    h.advance(89_000);
    assert.equal(await h.store.read('s', 'token'), 'v1');
    h.advance(2_000);
    await assert.rejects(h.store.read('s', 'token'), LookupFailedError);
  });

  it('never serves stale a Secret that is gone (404) or forbidden (403)', async () => {
    const h = harness();
    await h.store.read('s', 'token');
    h.advance(31_000);
    h.answer(() => {
      throw new ConfigurationError('Secret observability/s not found');
    });
    await assert.rejects(h.store.read('s', 'token'), ConfigurationError);
    assert.equal(h.counts.stale, undefined);
  });

  it('a failure without a known value is passed on (the event is redelivered)', async () => {
    const h = harness();
    h.answer(() => {
      throw new LookupFailedError('no answer within 5000 ms');
    });
    await assert.rejects(h.store.read('s', 'token'), LookupFailedError);
  });
});
