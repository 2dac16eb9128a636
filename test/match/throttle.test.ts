import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createMemoryThrottleStore, parseDuration } from '../../src/match/throttle.js';
import { startCaptureSink, type CaptureSink } from '../support/capture-sink.js';
import { loadFixture, withEvent } from '../support/fixtures.js';
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
    assert.equal((await svc.post(occurrence('web-1', 7))).status, 204, 'the redelivery of the admitted occurrence goes through');
    const delivered = sink.received('/chat').slice(3).map((r) => r.json());
    assert.deepEqual(delivered, [{ pod: 'web-2', count: 3 }, { pod: 'web-1', count: 7 }]);
    assert.equal(await svc.metric('kube_event_rules_suppressed_total', { rule: 'backoff-once-per-10m' }), 2);
    assert.ok(svc.logs.some((l) => l.msg === "suppressed by the rule's throttle"));
  });
});
