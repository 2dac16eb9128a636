import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createMemoryThrottleStore, parseDuration } from '../../src/match/throttle.js';
import { startCaptureSink, type CaptureSink } from '../support/capture-sink.js';
import { loadFixture, withEvent } from '../support/fixtures.js';
import { seededRandom } from '../support/random.js';
import { startService, type RunningService } from '../support/running-service.js';

describe('throttle store', () => {
  it('admits max occurrences per window and key, re-admits the same occurrence, forgets after the window', async () => {
    let now = 0;
    const store = createMemoryThrottleStore(100, () => now);
    assert.equal(await store.admit('k', 'o1', 1000, 2), true);
    assert.equal(await store.admit('k', 'o2', 1000, 2), true);
    assert.equal(await store.admit('k', 'o3', 1000, 2), false);
    assert.equal(await store.admit('k', 'o1', 1000, 2), true, 'an admitted occurrence (redelivery) stays admitted');
    assert.equal(await store.admit('other', 'o3', 1000, 2), true, 'keys are independent');
    now = 1500;
    assert.equal(await store.admit('k', 'o3', 1000, 2), true, 'the window moved on');
    assert.equal(await store.admit('k', 'o4', 1000, 1, true), false, 'peek answers without recording');
  });

  it('agrees with a sliding-window model over random admissions, redeliveries, peeks and time', async () => {
    // The model: per key, the admitted occurrences and when (the store's first, Map-based version).
    const model = new Map<string, { occurrence: string; at: number }[]>();
    const modelAdmit = (key: string, occurrence: string, windowMs: number, max: number, peek: boolean, at: number) => {
      const inWindow = (model.get(key) ?? []).filter((entry) => entry.at > at - windowMs);
      if (inWindow.some((entry) => entry.occurrence === occurrence)) return true;
      if (inWindow.length >= max) return false;
      if (!peek) model.set(key, [...inWindow, { occurrence, at }]);
      return true;
    };
    const next = seededRandom(77);
    let now = 1_000_000;
    const store = createMemoryThrottleStore(100_000, () => now);
    let admittedCount = 0;
    let refused = 0;
    for (let step = 0; step < 20_000; step++) {
      now += Math.floor(next() * 40);
      const rule = Math.floor(next() * 3); // each rule has its own window and max, as in the service
      const key = `rule-${rule}|pod-${Math.floor(next() * 30)}`;
      const occurrence = `o-${Math.floor(next() * 8)}`;
      const peek = next() < 0.1;
      const [windowMs, max] = [
        [500, 1],
        [2000, 2],
        [5000, 3],
      ][rule];
      const expected = modelAdmit(key, occurrence, windowMs, max, peek, now);
      assert.equal(
        await store.admit(key, occurrence, windowMs, max, peek),
        expected,
        `step ${step}: ${key} ${occurrence}`,
      );
      if (expected) admittedCount++;
      else refused++;
    }
    assert.ok(
      admittedCount > 2000 && refused > 2000,
      `both answers were exercised (${admittedCount} admitted, ${refused} refused)`,
    );
  });

  it('parses durations', () => {
    assert.equal(parseDuration('90s'), 90_000);
    assert.equal(parseDuration('10m'), 600_000);
    assert.equal(parseDuration('1h'), 3_600_000);
    assert.equal(parseDuration(30), 30_000);
    assert.throws(() => parseDuration('soon'), /not a duration/);
  });
});

describe('a throttled rule in the service', () => {
  let sink: CaptureSink;
  let svc: RunningService;
  before(async () => {
    sink = await startCaptureSink();
    svc = await startService({
      rules: {
        'r.yaml': `
destinations: { chat: { url: "${sink.url}/chat" } }
rules:
  - name: backoff-once-per-10m
    throttle: { window: 10m, max: 1 }
    conditions: { all: [ { fact: event, path: $.reason, operator: equal, value: BackOff } ] }
    actions: [ { destination: chat, body: '{ "pod": involvedObject.name, "count": count }' } ]
`,
      },
    });
  });
  after(async () => {
    await svc.stop();
    await sink.close();
  });

  const occurrence = (pod: string, count: number) =>
    withEvent(loadFixture('pod-backoff-crashloop-resource-update'), (body, headers) => {
      body.involvedObject.name = pod;
      body.metadata.uid = `uid-${pod}`;
      body.count = count;
      headers['ce-id'] = `${pod}-${count}`;
    });

  it('sends the first occurrence per pod in the window, counts the rest as suppressed, and keeps a redelivery of the admitted one', async () => {
    sink.respond('/chat', 500, 500, 500); // the first occurrence fails in-request: the Broker will redeliver it
    assert.equal((await svc.post(occurrence('web-1', 7))).status, 503);
    assert.equal((await svc.post(occurrence('web-1', 8))).status, 204);
    assert.equal((await svc.post(occurrence('web-1', 9))).status, 204);
    assert.equal((await svc.post(occurrence('web-2', 3))).status, 204);
    assert.equal(
      (await svc.post(occurrence('web-1', 7))).status,
      204,
      'the redelivery of the admitted occurrence goes through',
    );
    const delivered = sink
      .received('/chat')
      .slice(3)
      .map((r) => r.json());
    assert.deepEqual(delivered, [
      { pod: 'web-2', count: 3 },
      { pod: 'web-1', count: 7 },
    ]);
    assert.equal(await svc.metric('kube_event_rules_suppressed_total', { rule: 'backoff-once-per-10m' }), 2);
    assert.ok(svc.logs.some((l) => l.msg === "suppressed by the rule's throttle"));
  });
});
