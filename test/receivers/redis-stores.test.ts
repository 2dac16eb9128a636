/**
 * The Redis store (Debian's redis-server): redeliveries are not resent by another replica or after a
 * restart, throttles are shared, and a Redis outage fails open (sends, counts the store error).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { redisBehindSink } from '../support/redis-behind-sink.js';
import { startRedis } from '../support/real-receivers.js';
import { loadFixture, withEvent } from '../support/fixtures.js';
import { needs } from '../support/needs.js';
import { startService } from '../support/running-service.js';
import { closedPort } from '../support/ports.js';

const rules = (sinkUrl: string) => ({
  'r.yaml': `
destinations:
  ok: { url: "${sinkUrl}/ok" }
  flaky: { url: "${sinkUrl}/flaky" }
rules:
  - name: two-actions
    conditions: { all: [ { fact: event, path: $.reason, operator: equal, value: BackOff } ] }
    actions: [ { destination: ok, body: '{ "n": count }' }, { destination: flaky, body: '{ "n": count }' } ]
  - name: throttled
    throttle: { window: 10m, max: 1 }
    conditions: { all: [ { fact: event, path: $.reason, operator: equal, value: Unhealthy } ] }
    actions: [ { destination: ok, body: '{ "unhealthy": count }' } ]
`,
});

const occurrence = (reason: string, count: number) =>
  withEvent(loadFixture('pod-backoff-crashloop-resource-update'), (body, headers) => {
    body.reason = reason;
    body.count = count;
    headers['ce-id'] = `${reason}-${count}`;
  });

describe('Redis store', { skip: needs('redis-server') }, () => {
  const setup = redisBehindSink();

  it('a redelivery reaching another replica, or a restarted one, does not resend what was delivered', async () => {
    const first = await startService({ rules: rules(setup.sink.url), config: { redisUrl: setup.redis.url } });
    setup.sink.always('/flaky', 500);
    assert.equal((await first.post(occurrence('BackOff', 3))).status, 503);
    await first.stop(); // the replica goes away (a restart, or the Broker's next attempt lands elsewhere)
    setup.sink.always('/flaky', undefined);
    const second = await startService({ rules: rules(setup.sink.url), config: { redisUrl: setup.redis.url } });
    try {
      assert.equal((await second.post(occurrence('BackOff', 3))).status, 204);
      assert.equal(setup.sink.received('/ok').length, 1, 'the delivered action was not sent again');
      assert.equal(setup.sink.received('/flaky').filter((r) => r.method === 'POST').length, 3 + 1);
      assert.equal(
        await second.metric('kube_event_rules_deliveries_total', { destination: 'ok', outcome: 'skipped_duplicate' }),
        1,
      );
    } finally {
      await second.stop();
    }
  });

  it('throttle windows are shared by replicas', async () => {
    const [a, b] = await Promise.all([
      startService({ rules: rules(setup.sink.url), config: { redisUrl: setup.redis.url } }),
      startService({ rules: rules(setup.sink.url), config: { redisUrl: setup.redis.url } }),
    ]);
    try {
      const before = setup.sink.received('/ok').length;
      await a.post(occurrence('Unhealthy', 2)); // updates with count > 1: new occurrences
      await b.post(occurrence('Unhealthy', 3));
      assert.equal(setup.sink.received('/ok').length - before, 1);
      assert.equal(await b.metric('kube_event_rules_suppressed_total', { rule: 'throttled' }), 1);
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  });

  it('start-up waits for the first Redis connection, so no event fails open before it', async () => {
    const port = await closedPort();
    let ready = false;
    const starting = startService({ rules: rules(setup.sink.url), config: { redisUrl: `redis://127.0.0.1:${port}` } });
    void starting.then(
      () => (ready = true),
      () => undefined,
    );
    await new Promise((r) => setTimeout(r, 700));
    const readyWithoutRedis = ready;
    const late = await startRedis(port);
    const svc = await starting; // ioredis reconnects well within the 5 s start-up wait
    try {
      assert.equal(readyWithoutRedis, false, 'not ready while Redis is unreachable');
      assert.equal((await svc.post(occurrence('Unhealthy', 7))).status, 204);
      assert.equal(await svc.metric('kube_event_rules_store_errors_total'), 0, 'nothing failed open');
    } finally {
      await svc.stop();
      await late.stop();
    }
  });

  it('fails open when Redis is down: the action is sent and the store error counted', async () => {
    const down = await startRedis();
    const url = down.url;
    await down.stop();
    const svc = await startService({ rules: rules(setup.sink.url), config: { redisUrl: url } });
    try {
      const before = setup.sink.received('/ok').length;
      assert.equal((await svc.post(occurrence('BackOff', 50))).status, 204);
      assert.equal(setup.sink.received('/ok').length - before, 1);
      assert.ok((await svc.metric('kube_event_rules_store_errors_total')) >= 1);
    } finally {
      await svc.stop();
    }
  });
});
