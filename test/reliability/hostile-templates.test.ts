/**
 * Hostile templates beside a good rule, over real HTTP with real JSONata and real template workers: a
 * tail-recursive loop, `$pad("", 100000000)` (a heap out of memory) and a huge range. The process survives,
 * the good rule's events are delivered, the hostile actions are answered 503 (never 204), a quarantined
 * rule is answered 503 too — and 1,000-event batches through the wavefront-event preset and through a template
 * outside the fast path (template workers) are delivered whole.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startCaptureSink, type CaptureSink } from '../support/capture-sink.js';
import { loadFixture, withEvent } from '../support/fixtures.js';
import { startService, type RunningService } from '../support/running-service.js';

const event = (reason: string, n: number) =>
  withEvent(loadFixture('pod-backoff-crashloop-resource-update'), (body, headers) => {
    body.reason = reason;
    body.metadata.uid = `${reason}-${n}`;
    headers['ce-id'] = `${reason}-${n}`;
    headers['ce-type'] = 'dev.knative.apiserver.resource.add';
  });

/** The structured form of an event, for a batch. */
const structured = (reason: string, n: number) => {
  const { headers, body } = event(reason, n);
  const attributes = Object.fromEntries(
    Object.entries(headers)
      .filter(([k]) => k.startsWith('ce-'))
      .map(([k, v]) => [k.slice(3), v]),
  );
  return { ...attributes, datacontenttype: 'application/json', data: body };
};

describe('hostile templates beside a good rule', () => {
  let sink: CaptureSink;
  let svc: RunningService;
  before(async () => {
    sink = await startCaptureSink();
    svc = await startService({
      rules: {
        'r.yaml': `
destinations:
  good: { url: "${sink.url}/good" }
  wavefront: { url: "${sink.url}/wavefront" }
  hostile: { url: "${sink.url}/hostile" }
  joined: { url: "${sink.url}/joined" }
  headed: { url: "${sink.url}/headed", headers: { X-Name: { jsonata: '$pad("", 100000000)' } } }
rules:
  - name: good
    conditions: { all: [ { fact: event, path: $.reason, operator: in, value: [Loop, Pad, Range] } ] }
    actions: [ { destination: good, body: '{ "uid": metadata.uid }' } ]
  - name: loop
    conditions: { all: [ { fact: event, path: $.reason, operator: equal, value: Loop } ] }
    actions: [ { destination: hostile, body: '($f := function($x){ $f($x + 1) }; $f(0))' } ]
  - name: pad
    conditions: { all: [ { fact: event, path: $.reason, operator: equal, value: Pad } ] }
    actions: [ { destination: hostile, body: '{ "text": $pad("", 100000000) }' } ]
  - name: range
    conditions: { all: [ { fact: event, path: $.reason, operator: equal, value: Range } ] }
    actions: [ { destination: hostile, body: '{ "n": $count([1..10000000]) }' } ]
  - name: hostile-throttle-key
    conditions: { all: [ { fact: event, path: $.reason, operator: equal, value: KeyPad } ] }
    throttle: { key: '$pad("", 100000000)', window: 10m, max: 1 }
    actions: [ { destination: good, body: '{ "uid": metadata.uid }' } ]
  - name: hostile-header
    conditions: { all: [ { fact: event, path: $.reason, operator: equal, value: HeaderPad } ] }
    actions: [ { destination: headed, body: '{ "uid": metadata.uid }' } ]
  - name: wavefront
    conditions: { all: [ { fact: event, path: $.reason, operator: equal, value: Burst } ] }
    actions: [ { destination: wavefront, preset: wavefront-event } ]
  - name: joined
    conditions: { all: [ { fact: event, path: $.reason, operator: equal, value: Joined } ] }
    actions: [ { destination: joined, body: '{ "name": $join([reason, involvedObject.kind, involvedObject.name], " "), "uid": metadata.uid }' } ]
`,
      },
      // A destination queue that takes a whole batch, and time for this (shared, busy) machine: the
      // subject here is the templates, not the destination's bulkhead.
      config: {
        deliveryAttempts: 1,
        maxBodyBytes: 8 * 1024 * 1024,
        deliveryDeadlineMs: 30_000,
        deliveryTimeoutMs: 10_000,
        destinations: { maxConcurrent: 32, maxQueued: 2000, failureThreshold: 5, openMs: 10_000 },
      },
    });
  });
  after(async () => {
    await svc.stop();
    await sink.close();
  });

  for (const [reason, guard] of [
    ['Loop', /CPU budget/],
    ['Pad', /heap of its worker|still running/],
    ['Range', /D2015/],
  ] as const) {
    it(`${reason}: the hostile action is answered 503, the good rule's event delivered`, async () => {
      const before = sink.received('/good').length;
      const response = await svc.post(event(reason, 1));
      assert.equal(response.status, 503, response.text);
      assert.ok(Number(response.headers.get('retry-after')) >= 1);
      assert.match(response.text, guard);
      assert.equal(sink.received('/good').length, before + 1);
      assert.equal(sink.received('/hostile').length, 0);
    });
  }

  it('a rule that trips again is quarantined, and answered 503 while it is', async () => {
    assert.equal((await svc.post(event('Pad', 2))).status, 503, 'second heap trip: quarantined');
    const held = await svc.post(event('Pad', 3));
    assert.equal(held.status, 503);
    assert.match(held.text, /quarantined until/);
    assert.equal(await svc.metric('kube_event_rules_deliveries_total', { rule: 'pad', outcome: 'failed' }), 3);
    assert.equal(
      await svc.metric('kube_event_rules_template_quarantines_total', { rule: 'pad' }),
      1,
      'quarantined once, counted once',
    );
    assert.equal(sink.received('/good').length, 5, 'every good action delivered');
  });

  it('throttle keys and {jsonata} header values run in the workers too: the process survives them', async () => {
    const before = sink.received('/good').length;
    const keyed = await svc.post(event('KeyPad', 1));
    assert.equal(keyed.status, 204, 'a throttle key that fails admits: delivered, never lost');
    assert.equal(sink.received('/good').length, before + 1);
    assert.ok(
      svc.logs.some((l) => l.rule === 'hostile-throttle-key' && /throttle key/.test(String(l.error))),
      'and the failure is logged',
    );
    const headed = await svc.post(event('HeaderPad', 1));
    assert.equal(headed.status, 503, headed.text);
    assert.match(headed.text, /heap of its worker|still running/);
    assert.equal(sink.received('/headed').length, 0);
  });

  it('delivers all 1,000 events of a batch through a template outside the fast path (template workers)', async () => {
    const batch = Array.from({ length: 1000 }, (_, i) => structured('Joined', i));
    const response = await svc.postRaw({ 'content-type': 'application/cloudevents-batch+json' }, JSON.stringify(batch));
    assert.equal(response.status, 204, response.text.slice(0, 500));
    const received = sink.received('/joined');
    assert.equal(received.length, 1000);
    assert.equal(
      new Set(received.map((r) => (r.json() as { uid: string }).uid)).size,
      1000,
      'each event its own payload',
    );
    assert.match((received[0].json() as { name: string }).name, /^Joined Pod /);
    assert.equal(await svc.metric('kube_event_rules_template_errors_total', { rule: 'joined' }), 0);
  });

  it('delivers all 1,000 events of a batch through the wavefront-event preset', async () => {
    const batch = Array.from({ length: 1000 }, (_, i) => structured('Burst', i));
    const response = await svc.postRaw({ 'content-type': 'application/cloudevents-batch+json' }, JSON.stringify(batch));
    assert.equal(response.status, 204, response.text.slice(0, 500));
    assert.equal(sink.received('/wavefront').length, 1000);
    assert.equal(await svc.metric('kube_event_rules_template_errors_total', { rule: 'wavefront' }), 0);
    const first = sink.received('/wavefront')[0].json() as { startTime: number; endTime: number; tags: string[] };
    assert.equal(first.endTime, first.startTime + 1, 'rendered by the preset');
    assert.ok(first.tags.includes('reason:Burst'));
  });
});
