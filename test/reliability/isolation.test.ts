/**
 * Isolation run: healthy traffic's latency alone, and again while one rule has a runaway template and
 * another's destination hangs. Prints both p99s (tracked in docs/reliability.md) and checks the
 * misbehaving parts stay contained: counted, and healthy events still answered 204 within bounds.
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

describe('isolation run', () => {
  let sink: CaptureSink;
  let svc: RunningService;
  before(async () => {
    sink = await startCaptureSink();
    sink.always('/stuck', 'hang');
    svc = await startService({
      rules: {
        'r.yaml': `
destinations:
  healthy: { url: "${sink.url}/healthy" }
  stuck: { url: "${sink.url}/stuck", timeoutSeconds: 0.5 }
rules:
  - name: healthy
    conditions: { all: [ { fact: event, path: $.reason, operator: equal, value: Healthy } ] }
    actions: [ { destination: healthy, body: '{ "n": metadata.uid }' } ]
  - name: runaway-template
    conditions: { all: [ { fact: event, path: $.reason, operator: equal, value: Runaway } ] }
    actions: [ { destination: healthy, body: '($f := function($x){ $f($x + 1) }; $f(0))' } ]
  - name: stuck-destination
    conditions: { all: [ { fact: event, path: $.reason, operator: equal, value: Stuck } ] }
    actions: [ { destination: stuck } ]
`,
      },
      config: { deliveryAttempts: 1, deliveryDeadlineMs: 1000 },
    });
  });
  after(async () => {
    await svc.stop();
    await sink.close();
  });

  async function healthyP99(count: number, offset: number): Promise<number> {
    const latencies: number[] = [];
    let next = 0;
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < count) {
          const i = next++;
          const started = performance.now();
          const response = await svc.post(event('Healthy', offset + i));
          latencies.push(performance.now() - started);
          assert.equal(response.status, 204, response.text);
        }
      }),
    );
    latencies.sort((a, b) => a - b);
    return latencies[Math.floor(latencies.length * 0.99)];
  }

  it('keeps healthy traffic going while a template runs away and a destination hangs', async () => {
    await healthyP99(100, 0); // warm-up
    const alone = await healthyP99(400, 1000);
    let stop = false;
    let misbehaving = 0;
    const pending: Promise<unknown>[] = [];
    const noise = (async () => {
      for (let i = 0; !stop; i++) {
        pending.push(svc.post(event('Runaway', i)), svc.post(event('Stuck', i))); // ≈ 20 misbehaving events/s
        misbehaving += 2;
        await new Promise((r) => setTimeout(r, 100));
      }
    })();
    const withNoise = await healthyP99(400, 2000);
    stop = true;
    await noise;
    await Promise.all(pending);
    console.log(
      `isolation run: healthy p99 ${alone.toFixed(1)} ms alone, ${withNoise.toFixed(1)} ms with a runaway template and a hanging destination (${misbehaving} misbehaving events)`,
    );
    assert.ok(
      (await svc.metric('kube_event_rules_template_errors_total', { rule: 'runaway-template' })) >= 2,
      'runaway template counted',
    );
    assert.ok(
      svc.logs.some((l) => l.rule === 'runaway-template' && /quarantined/.test(String(l.msg))),
      'and quarantined after repeated timeouts',
    );
    assert.ok(
      (await svc.metric('kube_event_rules_deliveries_total', { rule: 'stuck-destination', outcome: 'failed' })) >= 1,
      'hanging destination counted',
    );
    assert.ok(withNoise < 1000, `healthy p99 stays bounded (${withNoise.toFixed(1)} ms)`);
  });
});
