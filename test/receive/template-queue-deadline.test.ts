/**
 * Template evaluations wait for a worker only until their request's deadline: a batch of slow (in-budget)
 * templates does not hold a good event's evaluation past its deadline, and evaluations of requests already
 * answered are dropped, not run for nobody. Those dropped are failed with Retry-After (429), redelivered.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadFixture, withEvent } from '../support/fixtures.js';
import { serviceBehindSink } from '../support/service-behind-sink.js';

const event = (reason: string, id: string) =>
  withEvent(loadFixture('pod-backoff-crashloop-resource-update'), (body, headers) => {
    body.metadata.uid = `uid-${id}`;
    body.reason = reason;
    headers['ce-id'] = id;
    headers['ce-type'] = 'dev.knative.apiserver.resource.add';
  });

describe('template evaluations past their deadline', () => {
  const t = serviceBehindSink(
    (sinkUrl) => ({
      'r.yaml': `
destinations:
  slow: { url: "${sinkUrl}/slow" }
  good: { url: "${sinkUrl}/good" }
rules:
  - name: slow
    conditions: { all: [ { fact: event, path: $.reason, operator: equal, value: Slow } ] }
    actions: [ { destination: slow, body: '{ "n": $count([1..60000].$string($)) }' } ]
  - name: good
    conditions: { all: [ { fact: event, path: $.reason, operator: equal, value: Good } ] }
    actions: [ { destination: good, body: '{ "r": $join([reason, "x"], ",") }' } ]
`,
    }),
    { templateTimeoutMs: 1000, deliveryDeadlineMs: 3000 },
  );

  it('a good event is answered by its deadline while slow templates are queued; queued work of answered requests is dropped', async () => {
    assert.equal((await t.svc.post(event('Slow', 'warm'))).status, 204); // workers started
    const batch = Array.from({ length: 60 }, (_, i) => ({
      specversion: '1.0',
      id: `slow-${i}`,
      source: 'test',
      type: 'dev.knative.apiserver.resource.add',
      datacontenttype: 'application/json',
      data: { ...(event('Slow', `slow-${i}`).body as object) },
    }));
    const slow = t.svc.postRaw({ 'content-type': 'application/cloudevents-batch+json' }, JSON.stringify(batch));
    await new Promise((r) => setTimeout(r, 200));
    const started = performance.now();
    const good = await t.svc.post(event('Good', 'good-1'));
    const waited = performance.now() - started;
    const answered = await slow;
    // Before: 204 after ≈ 9 s (60 × 0.3 s of CPU on 2 workers), every evaluation run. A wide margin: a loaded box is
    // slow.
    assert.ok(
      waited < 3000 + 2500,
      `the good event waited ${waited.toFixed(0)} ms behind slow templates (deadline 3000 ms)`,
    );
    assert.ok(good.status === 204 || good.status === 429, `${good.status} ${good.text}`);
    assert.equal(answered.status, 429, answered.text);
    assert.match(answered.text, /waited \d+ ms for a template worker/);
    await new Promise((r) => setTimeout(r, 500));
    assert.ok(
      t.sink.received('/slow').length < 60,
      `${t.sink.received('/slow').length} slow evaluations delivered: queued work was not dropped`,
    );
  });
});
