/**
 * The answer to the Broker over real HTTP: 2xx only when every matched action was delivered or can never be.
 * A template guard trip, a quarantined rule and a service that is not ready ask for a redelivery (503 +
 * Retry-After); a deterministic template error does not. Every answer is counted.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadFixture, withEvent } from '../support/fixtures.js';
import { serviceBehindSink } from '../support/service-behind-sink.js';

const event = (reason: string, n: number) =>
  withEvent(loadFixture('pod-backoff-crashloop-resource-update'), (body, headers) => {
    body.reason = reason;
    body.metadata.uid = `${reason}-${n}`;
    headers['ce-id'] = `${reason}-${n}`;
    headers['ce-type'] = 'dev.knative.apiserver.resource.add';
  });

describe('honest answers', () => {
  const t = serviceBehindSink(
    (sinkUrl) => ({
      'r.yaml': `
destinations:
  good: { url: "${sinkUrl}/good" }
  other: { url: "${sinkUrl}/other" }
rules:
  - name: good
    conditions: { any: [ { fact: event, path: $.reason, operator: in, value: [Huge, TypeError] } ] }
    actions: [ { destination: good, body: '{ "uid": metadata.uid }' } ]
  - name: huge-sequence
    conditions: { all: [ { fact: event, path: $.reason, operator: equal, value: Huge } ] }
    actions: [ { destination: other, body: '{ "n": $count([1..10000000]) }' } ]
  - name: type-error
    conditions: { all: [ { fact: event, path: $.reason, operator: equal, value: TypeError } ] }
    actions: [ { destination: other, body: '{ "n": reason + 1 }' } ]
`,
    }),
    { deliveryAttempts: 1 },
  );

  it('a guard trip asks for a redelivery (503 + Retry-After); the good rule beside it is delivered', async () => {
    const response = await t.svc.post(event('Huge', 1));
    assert.equal(response.status, 503, response.text);
    assert.ok(Number(response.headers.get('retry-after')) >= 1);
    assert.match(response.text, /huge-sequence → destination other: .*D2015/);
    assert.equal(t.sink.received('/good').length, 1);
    assert.equal(t.sink.received('/other').length, 0);
    assert.equal(
      await t.svc.metric('kube_event_rules_deliveries_total', { rule: 'huge-sequence', outcome: 'failed' }),
      1,
    );
    assert.equal(await t.svc.metric('kube_event_rules_events_received_total', { outcome: 'retry' }), 1);
  });

  it('a quarantined rule asks for a redelivery after the quarantine, not 204', async () => {
    assert.equal((await t.svc.post(event('Huge', 2))).status, 503, 'second trip: quarantined');
    const held = await t.svc.post(event('Huge', 3));
    assert.equal(held.status, 503);
    assert.match(held.text, /quarantined until/);
    const wait = Number(held.headers.get('retry-after'));
    assert.ok(wait > 30 && wait <= 60, `Retry-After ${wait} s: the rest of the quarantine`);
    assert.equal(t.sink.received('/good').length, 3, 'the good rule kept delivering');
    assert.equal(
      await t.svc.metric('kube_event_rules_deliveries_total', { rule: 'huge-sequence', outcome: 'failed' }),
      3,
    );
  });

  it('a deterministic template error is permanent: counted, answered 204', async () => {
    const response = await t.svc.post(event('TypeError', 1));
    assert.equal(response.status, 204);
    assert.equal(await t.svc.metric('kube_event_rules_deliveries_total', { rule: 'type-error', outcome: 'error' }), 1);
    assert.equal(await t.svc.metric('kube_event_rules_template_errors_total', { rule: 'type-error' }), 1);
  });

  it('not ready: 503 + Retry-After, and counted', async () => {
    t.svc.service.drain();
    const response = await t.svc.post(event('TypeError', 2));
    assert.equal(response.status, 503);
    assert.equal(response.headers.get('retry-after'), '1');
    assert.equal(await t.svc.metric('kube_event_rules_events_received_total', { outcome: 'not_ready' }), 1);
  });
});
