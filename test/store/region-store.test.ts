/**
 * The region stores hold to one contract, in memory and in Redis (Debian's redis-server): the first start
 * wins, the limits (REGION_MAX_OPEN, TEAM_MAX_OPEN_REGIONS), one claim at a time (and a claim that is never
 * cleared ends), clear and release by the claim's token only, and what the timeout sweep sees as due.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import {
  createMemoryRegionStore,
  type RegionLimits,
  type RegionStart,
  type RegionStore,
} from '../../src/store/region-store.js';
import { createRedisRegionStore } from '../../src/store/redis-region-store.js';
import { needs } from '../support/needs.js';
import { startRedis } from '../support/real-receivers.js';

const start = (rule: string, time: number, options: { scope?: string; expiresAt?: number } = {}): RegionStart => ({
  rule,
  ...(options.scope ? { scope: options.scope } : {}),
  key: JSON.stringify(rule),
  time,
  expiresAt: options.expiresAt ?? time + 60_000,
  occurrence: `${rule}/1`,
  cloudevent: { id: 'ce', type: 't', source: 's' },
  event: { reason: 'NodeNotReady' },
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function contract(
  name: string,
  make: (limits: RegionLimits) => Promise<RegionStore>,
  skip: false | string = false,
): void {
  describe(`${name} region store`, { skip }, () => {
    it('the first start wins; a claim is taken once at a time, cleared and released by its token only', async () => {
      const store = await make({ maxOpen: 100, maxOpenPerTeam: 10 });
      assert.equal(await store.open('a', start('r', 1000)), 'opened');
      assert.equal(await store.open('a', start('r', 2000)), 'open');
      assert.equal((await store.peek('a'))?.time, 1000);
      assert.deepEqual(await store.claim('nothing', 't0', 1000), { status: 'none' });
      const claim = await store.claim('a', 't1', 10_000);
      assert.equal(claim.status, 'taken');
      assert.equal(claim.status === 'taken' && claim.start.time, 1000);
      assert.deepEqual(await store.claim('a', 't2', 10_000), { status: 'claimed' });
      await store.clear('a', 't2', undefined); // not the holder: nothing happens
      await store.release('a', 't2');
      assert.deepEqual(await store.claim('a', 't3', 10_000), { status: 'claimed' });
      await store.release('a', 't1');
      assert.equal((await store.claim('a', 't4', 10_000)).status, 'taken');
      await store.clear('a', 't4', undefined);
      assert.equal(await store.peek('a'), undefined);
      assert.deepEqual(await store.claim('a', 't5', 10_000), { status: 'none' });
      assert.equal(await store.size(), 0);
    });

    it('a claim that is never cleared or released ends after its hold', async () => {
      const store = await make({ maxOpen: 100, maxOpenPerTeam: 10 });
      await store.open('b', start('r', 1000));
      assert.equal((await store.claim('b', 'crashed', 50)).status, 'taken');
      await sleep(120);
      assert.equal((await store.claim('b', 'next', 10_000)).status, 'taken');
    });

    it('REGION_MAX_OPEN for all, TEAM_MAX_OPEN_REGIONS per team namespace; a cleared region frees its place', async () => {
      const store = await make({ maxOpen: 3, maxOpenPerTeam: 1 });
      assert.equal(await store.open('c1', start('cluster-rule', 1)), 'opened');
      assert.equal(await store.open('t1', start('team-a/r', 1, { scope: 'team-a' })), 'opened');
      assert.equal(await store.open('t2', start('team-a/r', 2, { scope: 'team-a' })), 'team_full');
      assert.equal(await store.open('u1', start('team-b/r', 1, { scope: 'team-b' })), 'opened');
      assert.equal(await store.open('c2', start('cluster-rule', 2)), 'full');
      assert.equal(await store.size(), 3);
      assert.equal((await store.claim('t1', 'x', 10_000)).status, 'taken');
      await store.clear('t1', 'x', 'team-a');
      assert.equal(await store.open('t2', start('team-a/r', 2, { scope: 'team-a' })), 'opened');
    });

    it('due: past their timeout and not claimed; a release with a retry time comes back then, one without at its timeout', async () => {
      const store = await make({ maxOpen: 100, maxOpenPerTeam: 10 });
      const now = Date.now();
      await store.open('past', start('r1', now - 5000, { expiresAt: now - 1000 }));
      await store.open('future', start('r2', now, { expiresAt: now + 60_000 }));
      assert.deepEqual(await store.due(Date.now(), 10), ['past']);
      assert.equal((await store.claim('past', 'sweep', 10_000)).status, 'taken');
      assert.deepEqual(await store.due(Date.now(), 10), [], 'claimed: not due');
      await store.release('past', 'sweep', Date.now() + 60_000);
      assert.deepEqual(await store.due(Date.now(), 10), [], 'to be retried later');
      assert.equal((await store.claim('past', 'end', 10_000)).status, 'taken');
      await store.release('past', 'end'); // an end whose delivery failed: due again at its timeout
      assert.deepEqual(await store.due(Date.now(), 10), ['past']);
    });
  });
}

contract('memory', async (limits) => createMemoryRegionStore(limits));

describe('Redis', { skip: needs('redis-server') }, () => {
  let redis: Awaited<ReturnType<typeof startRedis>>;
  const clients: Redis[] = [];
  before(async () => {
    redis = await startRedis();
  });
  after(async () => {
    for (const client of clients) client.disconnect();
    await redis?.stop();
  });
  contract('Redis', async (limits) => {
    const client = new Redis(redis.url);
    clients.push(client);
    await client.flushall();
    return createRedisRegionStore(client, (command) => command(), limits);
  });
});
