/**
 * Occurrences across replicas sharing Redis: an older count that failed on one replica and is redelivered
 * to another that already delivered a newer count is still delivered — never answered 2xx unsent.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { redisBehindSink } from '../support/redis-behind-sink.js';
import { loadFixture, withEvent } from '../support/fixtures.js';
import { needs } from '../support/needs.js';
import { startService } from '../support/running-service.js';

const rules = (sinkUrl: string) => ({
  'r.yaml': `
destinations:
  sink: { url: "${sinkUrl}/sink" }
rules:
  - name: backoff
    conditions: { all: [ { fact: event, path: $.reason, operator: equal, value: BackOff } ] }
    actions: [ { destination: sink, body: '{ "occurrence": $occurrence }' } ]
`,
});

const occurrence = (count: number) =>
  withEvent(loadFixture('pod-backoff-crashloop-resource-update'), (body, headers) => {
    body.count = count;
    headers['ce-id'] = `ce-${count}`;
  });

describe('late occurrences across replicas', { skip: needs('redis-server') }, () => {
  const setup = redisBehindSink();

  it('count 3 fails on A, B delivers count 4, the Broker redelivers count 3 to B: delivered', async () => {
    const [a, b] = await Promise.all(
      [0, 1].map(() =>
        startService({ rules: rules(setup.sink.url), config: { redisUrl: setup.redis.url, deliveryAttempts: 1 } }),
      ),
    );
    try {
      setup.sink.always('/sink', 500);
      assert.equal((await a.post(occurrence(3))).status, 503);
      setup.sink.always('/sink', undefined);
      assert.equal((await b.post(occurrence(4))).status, 204);
      assert.equal((await b.post(occurrence(3))).status, 204);
      const sent = setup.sink
        .received('/sink')
        .map((r) => (r.json() as { occurrence: string }).occurrence.split('/').pop());
      assert.deepEqual(sent, ['3', '4', '3'], 'A tried count 3 (500), B sent 4, then B sent the redelivered 3');
      assert.equal(await b.metric('kube_event_rules_deliveries_total', { outcome: 'delivered' }), 2);
      // A no-op update of count 4 (a new CloudEvent, same occurrence) is still not an occurrence on B.
      const noop = withEvent(occurrence(4), (_body, headers) => (headers['ce-id'] = 'ce-4-noop'));
      assert.equal((await b.post(noop)).status, 204);
      assert.equal(await b.metric('kube_event_rules_deliveries_total', { outcome: 'delivered' }), 2);
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  });
});
