/**
 * Bounded work over real HTTP: a request whose events × matched actions pass MAX_ACTIONS_PER_REQUEST, or that
 * would pass MAX_ACTIONS_IN_FLIGHT while others are in flight, is answered 429 + Retry-After before any of
 * its actions starts, and counted; within the caps everything is delivered.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startCaptureSink, type CaptureSink } from '../support/capture-sink.js';
import { loadFixture, withEvent } from '../support/fixtures.js';
import { startService, type RunningService } from '../support/running-service.js';

const structured = (reason: string, n: number) => {
  const { headers, body } = withEvent(loadFixture('pod-backoff-crashloop-resource-update'), (b, h) => {
    b.reason = reason;
    b.metadata.uid = `${reason}-${n}`;
    h['ce-id'] = `${reason}-${n}`;
    h['ce-type'] = 'dev.knative.apiserver.resource.add';
  });
  const attributes = Object.fromEntries(
    Object.entries(headers)
      .filter(([k]) => k.startsWith('ce-'))
      .map(([k, v]) => [k.slice(3), v]),
  );
  return { ...attributes, datacontenttype: 'application/json', data: body };
};

describe('action capacity', () => {
  let sink: CaptureSink;
  let svc: RunningService;
  const batch = (reason: string, from: number, count: number) =>
    svc.postRaw(
      { 'content-type': 'application/cloudevents-batch+json' },
      JSON.stringify(Array.from({ length: count }, (_, i) => structured(reason, from + i))),
    );

  before(async () => {
    sink = await startCaptureSink();
    sink.always('/slow', { status: 200, delayMs: 3000 });
    svc = await startService({
      rules: {
        'r.yaml': `
destinations:
  a: { url: "${sink.url}/a" }
  b: { url: "${sink.url}/b" }
  slow: { url: "${sink.url}/slow", timeoutSeconds: 30 }
rules:
  - name: two-actions
    conditions: { all: [ { fact: event, path: $.reason, operator: equal, value: Fan } ] }
    actions: [ { destination: a }, { destination: b } ]
  - name: slow
    conditions: { all: [ { fact: event, path: $.reason, operator: equal, value: Slow } ] }
    actions: [ { destination: slow } ]
`,
      },
      config: { maxActionsPerRequest: 10, maxActionsInFlight: 12, deliveryAttempts: 1, deliveryDeadlineMs: 30_000 },
    });
  });
  after(async () => {
    await sink.close();
    await svc.stop();
  });

  it('delivers a batch within the per-request cap (5 events × 2 actions = 10)', async () => {
    const response = await batch('Fan', 0, 5);
    assert.equal(response.status, 204, response.text);
    assert.equal(sink.received('/a').length + sink.received('/b').length, 10);
  });

  it('refuses a batch over it with 429 + Retry-After before any action starts, and counts it', async () => {
    const response = await batch('Fan', 100, 6);
    assert.equal(response.status, 429);
    assert.equal(response.headers.get('retry-after'), '1');
    assert.match(response.text, /matched 12 actions, more than MAX_ACTIONS_PER_REQUEST \(10\)/);
    assert.equal(sink.received('/a').length + sink.received('/b').length, 10, 'nothing of it was sent');
    assert.equal(await svc.metric('kube_event_rules_events_received_total', { outcome: 'over_capacity' }), 6);
  });

  it('holds dry runs to the same caps: rendering is their work', async () => {
    const body = JSON.stringify(Array.from({ length: 6 }, (_, i) => structured('Fan', 500 + i)));
    const response = await fetch(`${svc.url}/dry-run`, {
      method: 'POST',
      headers: { 'content-type': 'application/cloudevents-batch+json' },
      body,
    });
    assert.equal(response.status, 429);
    assert.match(await response.text(), /MAX_ACTIONS_PER_REQUEST/);
    const within = await fetch(`${svc.url}/dry-run`, {
      method: 'POST',
      headers: { 'content-type': 'application/cloudevents-batch+json' },
      body: JSON.stringify([structured('Fan', 600)]),
    });
    assert.equal(within.status, 200);
    assert.equal(((await within.json()) as { events: { actions: unknown[] }[] }).events[0].actions.length, 2);
  });

  it('refuses a request that would pass the per-process cap while others are in flight, takes it once they are done', async () => {
    const slow = batch('Slow', 0, 8); // 8 actions held in flight by a destination that answers after 3 s
    await sink.waitFor('/slow', 8);
    assert.equal(await svc.metric('kube_event_rules_actions_in_flight'), 8);
    const refused = await batch('Fan', 200, 3); // 6 more: 14 > 12
    assert.equal(refused.status, 429);
    assert.match(refused.text, /8 actions in flight; 6 more would pass MAX_ACTIONS_IN_FLIGHT \(12\)/);
    const fits = await batch('Fan', 300, 2); // 4 more: 12
    assert.equal(fits.status, 204, fits.text);
    assert.equal((await slow).status, 204);
    assert.equal((await batch('Fan', 400, 3)).status, 204, 'taken once the others are done');
    assert.equal(await svc.metric('kube_event_rules_actions_in_flight'), 0);
  });
});

describe('action capacity per team namespace', () => {
  it('each namespace has its own share, teams together half the pool; the cluster scope keeps the rest', async () => {
    const { createActionCapacity } = await import('../../src/receive/action-capacity.js');
    const capacity = createActionCapacity({ perRequest: 100, perProcess: 100, perTeam: 30 });
    const a = capacity.reserve(30, new Map([['a', 30]]));
    assert.ok(a.ok);
    const again = capacity.reserve(1, new Map([['a', 1]]));
    assert.ok(!again.ok && /namespace a: 30 .* TEAM_MAX_ACTIONS_IN_FLIGHT \(30\)/.test(again.reason));
    assert.ok(capacity.reserve(20, new Map([['b', 20]])).ok);
    const c = capacity.reserve(5, new Map([['c', 5]]));
    assert.ok(!c.ok && /teams' half of MAX_ACTIONS_IN_FLIGHT \(50\)/.test(c.reason), 'teams together stop at half');
    assert.ok(capacity.reserve(50).ok, 'cluster rules still have their half');
    a.release();
    assert.ok(capacity.reserve(30, new Map([['a', 30]])).ok, 'a released is a namespace with its share back');
  });
});
