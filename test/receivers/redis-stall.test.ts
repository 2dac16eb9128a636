/**
 * Redis as a helper, never a bottleneck (Debian's redis-server): a Redis that stalls without
 * disconnecting (SIGSTOP) or dies costs an event at most one short timeout, the client's queue stays
 * bounded, throttles keep limiting (per replica) meanwhile, one warning per outage and one line when it is
 * back; then the shared stores are used again.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { Redis } from 'ioredis';
import { startCaptureSink, type CaptureSink } from '../support/capture-sink.js';
import { loadFixture, withEvent } from '../support/fixtures.js';
import { needs } from '../support/needs.js';
import { startRedis } from '../support/real-receivers.js';
import { startService, type RunningService } from '../support/running-service.js';

const TIMEOUT_MS = 1000;
const rules = (sinkUrl: string) => ({
  'r.yaml': `
destinations:
  ok: { url: "${sinkUrl}/ok" }
  limited: { url: "${sinkUrl}/limited" }
rules:
  - name: every-backoff
    conditions: { all: [ { fact: event, path: $.reason, operator: equal, value: BackOff } ] }
    actions: [ { destination: ok, body: '{ "uid": metadata.uid }' } ]
  - name: throttled
    throttle: { window: 10m, max: 3 }
    conditions: { all: [ { fact: event, path: $.reason, operator: equal, value: Unhealthy } ] }
    actions: [ { destination: limited, body: '{ "object": involvedObject.name, "n": count }' } ]
`,
});

let serial = 0;
/** A new BackOff occurrence (its own Event), or the `count`-th occurrence of an Unhealthy Event about `object`. */
const backoff = () =>
  withEvent(loadFixture('pod-backoff-crashloop-resource-update'), (body, headers) => {
    body.metadata.uid = `stall-${++serial}`;
    headers['ce-id'] = `stall-ce-${serial}`;
  });
const unhealthy = (object: string, count: number) =>
  withEvent(loadFixture('pod-backoff-crashloop-resource-update'), (body, headers) => {
    body.reason = 'Unhealthy';
    body.involvedObject.name = object;
    body.metadata.uid = `unhealthy-${object}`;
    body.count = count;
    headers['ce-id'] = `unhealthy-${object}-${count}`;
  });

const warnings = (svc: RunningService, text: string) =>
  svc.logs.filter((l) => typeof l.msg === 'string' && l.msg.startsWith(text)).length;

async function until(condition: () => boolean, what: string, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > end) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('Redis stalls and outages', { skip: needs('redis-server') }, () => {
  let redis: Awaited<ReturnType<typeof startRedis>>;
  let sink: CaptureSink;
  let svc: RunningService;
  before(async () => {
    redis = await startRedis();
    sink = await startCaptureSink();
    svc = await startService({ rules: rules(sink.url), config: { redisUrl: redis.url, redisTimeoutMs: TIMEOUT_MS } });
  });
  after(async () => {
    await svc?.stop();
    await sink.close();
    await redis.stop();
  });

  it('SIGSTOP under load: one short timeout at most, a bounded queue, throttles still limit; SIGCONT: back to Redis', async () => {
    assert.equal((await svc.post(backoff())).status, 204);
    const stores = svc.service.redis!;
    assert.equal(stores.available(), true);
    for (let n = 2; n <= 3; n++) assert.equal((await svc.post(unhealthy('across-stall', n))).status, 204); // 2 of its 3 used in Redis

    redis.pause();
    const latencies: number[] = [];
    let maxPending = 0;
    const sampler = setInterval(() => (maxPending = Math.max(maxPending, stores.pendingCommands())), 10);
    const answers: Promise<number>[] = [];
    const stalledEvent = backoff(); // the first event of the stall: waits one timeout at most, then recorded in memory
    for (let i = 0; i < 100; i++) {
      // ≈ 50 events/s for 2 s, not waiting for the answers
      answers.push(
        (async () => {
          const started = performance.now();
          const { status } = await svc.post(i === 0 ? stalledEvent : backoff());
          latencies.push(performance.now() - started);
          return status;
        })(),
      );
      await new Promise((r) => setTimeout(r, 20));
    }
    const throttled: number[] = [];
    for (let n = 2; n <= 11; n++) throttled.push((await svc.post(unhealthy('during-stall', n))).status);
    for (let n = 4; n <= 8; n++) throttled.push((await svc.post(unhealthy('across-stall', n))).status);
    const statuses = await Promise.all(answers);
    clearInterval(sampler);

    assert.ok(
      statuses.every((s) => s === 204),
      'every event answered (the stores fail open, nothing is lost)',
    );
    assert.ok(throttled.every((s) => s === 204));
    const sent = (object: string) =>
      sink.received('/limited').filter((r) => (r.json() as { object: string }).object === object).length;
    assert.equal(sent('during-stall'), 3, 'the throttle (max 3) still limits, per replica, while Redis is stalled');
    assert.equal(sent('across-stall'), 3, 'a window begun in Redis goes on in memory: one more, not three');
    latencies.sort((a, b) => a - b);
    const p50 = latencies[Math.floor(latencies.length / 2)];
    console.log(
      `redis SIGSTOP: p50 ${p50.toFixed(0)} ms, max ${latencies[latencies.length - 1].toFixed(0)} ms, most commands pending ${maxPending}`,
    );
    assert.ok(p50 < TIMEOUT_MS, `most events do not wait for Redis at all (p50 ${p50.toFixed(0)} ms)`);
    assert.ok(
      latencies[latencies.length - 1] < 2 * TIMEOUT_MS,
      `no event waited for two Redis timeouts (max ${latencies[latencies.length - 1].toFixed(0)} ms)`,
    );
    // Only commands sent before the first timeout (≈ one timeout's worth of events) and the probes wait.
    assert.ok(
      maxPending <= TIMEOUT_MS / 20 + 10,
      `the client's queue stays bounded (${maxPending} pending at most for 110 events)`,
    );
    assert.equal(stores.available(), false);
    assert.equal(warnings(svc, 'redis unavailable'), 1, 'one warning for the outage, not one per event');

    redis.resume();
    await until(() => stores.available(), 'Redis used again after SIGCONT');
    assert.equal(warnings(svc, 'redis is back'), 1);
    await until(() => stores.pendingCommands() === 0, 'the stalled commands answered and dropped');
    // An event delivered while Redis was stalled and redelivered by the Broker now: still not sent again.
    const before = sink.received('/ok').length;
    assert.equal((await svc.post(stalledEvent)).status, 204);
    assert.equal(sink.received('/ok').length, before, 'recorded in memory during the stall, still known after it');
    const probe = new Redis(redis.url);
    try {
      assert.equal((await svc.post(unhealthy('after-stall', 2))).status, 204);
      const keys = await probe.keys('kube-event-rules:throttle:*after-stall*');
      assert.equal(keys.length, 1, 'the throttle window lives in Redis again');
    } finally {
      probe.disconnect();
    }
  });

  it('Redis killed: throttles hold per replica, one warning; restarted: shared again', async () => {
    const stores = svc.service.redis!;
    const port = redis.port;
    await redis.stop();
    await until(() => !stores.available(), 'the closed connection noticed');
    const before = sink.received('/limited').length;
    for (let n = 2; n <= 11; n++) assert.equal((await svc.post(unhealthy('while-killed', n))).status, 204);
    assert.equal(sink.received('/limited').length - before, 3, 'throttled per replica instead of switched off');
    assert.equal(warnings(svc, 'redis unavailable'), 2, 'one more warning for this outage');

    redis = await startRedis(port);
    await until(() => stores.available(), 'reconnected');
    assert.equal(warnings(svc, 'redis is back'), 2);
    assert.equal((await svc.post(backoff())).status, 204);
  });
});
