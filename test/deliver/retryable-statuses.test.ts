/**
 * Statuses HTTP defines as "try again" are not permanent rejections: 421 Misdirected Request (retry on another
 * connection, typical behind an HTTP/2 ingress), 423 Locked and 425 Too Early. Each is a failed delivery the
 * Broker redelivers, never a 204 for an action that was not delivered.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadFixture, withEvent } from '../support/fixtures.js';
import { serviceBehindSink } from '../support/service-behind-sink.js';
import { isRetryableStatus } from '../../src/deliver/retry-policy.js';

const event = (id: string) =>
  withEvent(loadFixture('pod-backoff-crashloop-resource-update'), (body, headers) => {
    body.metadata.uid = `uid-${id}`;
    headers['ce-id'] = id;
    headers['ce-type'] = 'dev.knative.apiserver.resource.add';
  });

describe('retryable 4xx statuses', () => {
  const t = serviceBehindSink(
    (sinkUrl) => ({
      'r.yaml': `
destinations:
  d: { url: "${sinkUrl}/d" }
rules:
  - name: r
    conditions: { all: [ { fact: event, path: $.reason, operator: equal, value: BackOff } ] }
    actions: [ { destination: d, body: '{ "uid": metadata.uid }' } ]
`,
    }),
    { deliveryAttempts: 1 },
  );

  for (const status of [421, 423, 425]) {
    it(`${status} once, then the destination is fine: answered 503, delivered on the redelivery`, async () => {
      t.sink.respond('/d', status);
      const first = await t.svc.post(event(`s${status}`));
      assert.equal(first.status, 503, `${status} answered ${first.status}: the action was never delivered`);
      const again = await t.svc.post(event(`s${status}`)); // the Broker's redelivery
      assert.equal(again.status, 204, again.text);
      assert.equal(
        t.sink.received('/d').filter((r) => (r.json() as { uid: string }).uid === `uid-s${status}`).length,
        2,
      );
    });
  }

  it('other 4xx stay permanent', () => {
    for (const status of [400, 401, 403, 404, 409, 410, 422])
      assert.equal(isRetryableStatus(status), false, String(status));
    for (const status of [408, 429, 500, 503]) assert.equal(isRetryableStatus(status), true, String(status));
  });
});
