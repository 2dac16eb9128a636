/**
 * A request whose delivery throws unexpectedly (a store or sender bug) is answered with that error only once its
 * other deliveries are done: until then it holds its share of MAX_ACTIONS_IN_FLIGHT, so a failure cannot let
 * more work run than the caps allow.
 */
import assert from 'node:assert/strict';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, it } from 'node:test';
import { loadConfig } from '../../src/config.js';
import { createMemoryDeliveredStore } from '../../src/deliver/delivered-store.js';
import type { Sender } from '../../src/deliver/destination.js';
import { NO_CLUSTER } from '../../src/enrich/cluster.js';
import { createMemoryThrottleStore } from '../../src/match/throttle.js';
import { OccurrenceTracker } from '../../src/normalize/occurrence.js';
import { createPipeline } from '../../src/pipeline.js';
import { parseCloudEvents } from '../../src/receive/parse-cloudevents.js';
import { RuleStore } from '../../src/rules/rule-store.js';
import { bodyOf, loadFixture, withEvent } from '../support/fixtures.js';
import { createMetrics, recordingLogger } from '../support/quiet.js';

const RULES = `
destinations:
  slow: { url: "http://127.0.0.1:9/slow" }
  broken: { url: "http://127.0.0.1:9/broken" }
rules:
  - name: two-actions
    conditions: { all: [ { fact: event, path: $.reason, operator: equal, value: BackOff } ] }
    actions: [ { destination: slow }, { destination: broken } ]
  - name: another-rule
    conditions: { all: [ { fact: event, path: $.reason, operator: equal, value: BackOff } ] }
    actions: [ { destination: slow } ]
`;

describe('a request with a delivery that throws', () => {
  it('settles after its other deliveries, then fails with the error', async () => {
    const metrics = createMetrics();
    const { log } = recordingLogger();
    const store = new RuleStore({ timeoutMs: 100 }, metrics, log);
    assert.deepEqual(store.update('file:rules.yaml', RULES), []);
    const finished: string[] = [];
    const http: Sender = {
      async send(request) {
        if (request.url.endsWith('/broken')) throw new Error('sender bug');
        await sleep(150);
        finished.push(request.url);
        return { outcome: 'delivered', attempts: 1, status: 200 };
      },
    };
    const pipeline = createPipeline({
      config: loadConfig({}),
      rules: () => store.current,
      tracker: new OccurrenceTracker(1000),
      cluster: NO_CLUSTER,
      senders: { http },
      delivered: createMemoryDeliveredStore(60_000),
      throttle: createMemoryThrottleStore(),
      metrics,
      log,
      env: {},
    });
    const fixture = withEvent(loadFixture('pod-backoff-crashloop-resource-update'), (body) => {
      body.reason = 'BackOff';
    });
    const events = parseCloudEvents(fixture.headers, bodyOf(fixture));
    await assert.rejects(pipeline.process(events, Date.now() + 5000), /sender bug/);
    assert.equal(finished.length, 2, 'both slow deliveries were done before the request failed');
  });
});
