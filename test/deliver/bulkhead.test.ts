/**
 * Isolation between destinations: a hanging destination fills its own slots and queue and then refuses
 * at once, while another destination keeps its latency; a failing destination opens its breaker.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../src/config.js';
import { createBulkheads } from '../../src/deliver/bulkhead.js';
import { createMetrics } from '../../src/metrics.js';
import { startCaptureSink, type CaptureSink } from '../support/capture-sink.js';
import { loadFixture, withEvent } from '../support/fixtures.js';
import { waitUntil } from '../support/kube-fixtures.js';
import { startService, type RunningService } from '../support/running-service.js';

const event = (reason: string, n: number) =>
  withEvent(loadFixture('pod-backoff-crashloop-resource-update'), (body, headers) => {
    body.reason = reason;
    body.metadata.uid = `${reason}-${n}`;
    headers['ce-id'] = `${reason}-${n}`;
  });

describe('per-destination bulkheads and circuit breakers', () => {
  let sink: CaptureSink;
  let svc: RunningService;
  before(async () => {
    sink = await startCaptureSink();
    const rule = (name: string, reason: string) => `
  - name: ${name}
    conditions: { all: [ { fact: event, path: $.reason, operator: equal, value: ${reason} } ] }
    actions: [ { destination: ${name}, body: '{ "n": metadata.uid }' } ]`;
    svc = await startService({
      rules: {
        'r.yaml': `
destinations:
  slow: { url: "${sink.url}/slow", timeoutSeconds: 2.5 }
  fast: { url: "${sink.url}/fast" }
  broken: { url: "${sink.url}/broken" }
rules:${rule('slow', 'Slow')}${rule('fast', 'Fast')}${rule('broken', 'Broken')}
`,
      },
      config: {
        deliveryAttempts: 1,
        deliveryTimeoutMs: 2500,
        deliveryDeadlineMs: 6000,
        destinations: {
          ...loadConfig({}).destinations,
          maxConcurrent: 2,
          maxQueued: 2,
          failureThreshold: 3,
          openMs: 400,
        },
      },
    });
  });
  after(async () => {
    await svc.stop();
    await sink.close();
  });

  it('a hanging destination refuses beyond its slots and queue, while another stays fast', async () => {
    // The slow destination holds every request until released: what happens meanwhile does not depend
    // on how fast this machine is.
    sink.always('/slow', 'hang');
    let slowSettled = 0;
    const slow = Array.from({ length: 6 }, (_, i) => svc.post(event('Slow', i)).finally(() => slowSettled++));
    await waitUntil(
      '2 in flight and 2 queued',
      async () =>
        (await svc.metric('kube_event_rules_destination_in_flight', { destination: 'slow' })) === 2 &&
        (await svc.metric('kube_event_rules_destination_queued', { destination: 'slow' })) === 2,
      5000,
    );
    // The fast destination has the same small bulkhead: 4 at a time (2 in flight, 2 queued) always fit.
    const fast: { status: number }[] = [];
    for (let i = 0; i < 20; i += 4)
      fast.push(...(await Promise.all([0, 1, 2, 3].map((j) => svc.post(event('Fast', i + j))))));
    assert.deepEqual(
      fast.map((r) => r.status),
      fast.map(() => 204),
    );
    assert.equal(
      slowSettled,
      2,
      'the healthy destination answered while the slow one still held its 4 deliveries (only the 2 refused ones settled)',
    );
    sink.always('/slow', 200);
    sink.release('/slow');
    const statuses = (await Promise.all(slow)).map((r) => r.status).sort();
    assert.deepEqual(
      statuses,
      [204, 204, 204, 204, 429, 429],
      '4 delivered (2 at once, 2 queued), 2 refused with Retry-After',
    );
    sink.always('/slow', undefined);
  });

  it('opens the breaker after consecutive failures, fails fast while open, and closes after a good probe', async () => {
    sink.always('/broken', 500);
    for (let i = 0; i < 3; i++) assert.equal((await svc.post(event('Broken', i))).status, 503);
    const reached = sink.received('/broken').length;
    const refused = await svc.post(event('Broken', 10));
    assert.equal(refused.status, 429, 'open: refused without contacting the destination');
    assert.ok(Number(refused.headers.get('retry-after')) >= 1);
    assert.match(JSON.parse(refused.text).detail as string, /circuit open: 3 consecutive failures/);
    assert.equal(sink.received('/broken').length, reached);
    assert.equal(await svc.metric('kube_event_rules_destination_circuit_state', { destination: 'broken' }), 1);

    sink.always('/broken', undefined);
    await new Promise((r) => setTimeout(r, 450));
    assert.equal((await svc.post(event('Broken', 11))).status, 204, 'the probe succeeds');
    assert.equal(await svc.metric('kube_event_rules_destination_circuit_state', { destination: 'broken' }), 0);
    assert.equal((await svc.post(event('Broken', 12))).status, 204);
  });
});

describe('destination gauges', () => {
  it('read at scrape time: lanes of two documents sharing a destination name add up, the breaker shows the worst state', async () => {
    const metrics = createMetrics();
    let now = 0;
    const bulkheads = createBulkheads(
      { maxConcurrent: 1, maxQueued: 5, failureThreshold: 1, openMs: 1000 },
      metrics,
      () => now,
    );
    const gauge = async (name: string) =>
      (await metrics.registry.getSingleMetric(name)!.get()).values
        .filter((v) => v.labels.destination === 'chat')
        .map((v) => v.value);
    const first = await bulkheads.acquire('team-a.yaml#chat', 'chat');
    const second = await bulkheads.acquire('team-b.yaml#chat', 'chat');
    const queued = bulkheads.acquire('team-a.yaml#chat', 'chat'); // waits for team-a's only slot
    assert.deepEqual(await gauge('kube_event_rules_destination_in_flight'), [2]);
    assert.deepEqual(await gauge('kube_event_rules_destination_queued'), [1]);
    assert.deepEqual(await gauge('kube_event_rules_destination_circuit_state'), [0]);
    if (!first.ok || !second.ok) throw new Error('both lanes had a free slot');
    second.release(true); // team-b's breaker opens; team-a's stays closed
    assert.deepEqual(await gauge('kube_event_rules_destination_circuit_state'), [1]);
    first.release(false);
    const third = await queued;
    if (third.ok) third.release(false);
    assert.deepEqual(await gauge('kube_event_rules_destination_in_flight'), [0]);
    now = 500;
    const fourth = await bulkheads.acquire('team-c.yaml#chat', 'chat');
    if (fourth.ok) fourth.release(true); // team-c opens until 1500
    now = 1200; // team-b half-open (its open period is over), team-c still open: open is worse
    assert.deepEqual(await gauge('kube_event_rules_destination_circuit_state'), [1]);
    now = 2000; // both half-open until a probe succeeds
    assert.deepEqual(await gauge('kube_event_rules_destination_circuit_state'), [2]);
  });
});
