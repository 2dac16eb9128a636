/**
 * Standalone mode: the service watches Events itself (fake API server, real client) and applies the
 * same occurrence semantics as with ApiServerSource.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../src/config.js';
import { startCaptureSink, type CaptureSink } from '../support/capture-sink.js';
import { startFakeKubeApi, type FakeKubeApi, type KubeObject } from '../support/fake-kube-api.js';
import { connectionTo, waitUntil } from '../support/kube-fixtures.js';
import { startService, type RunningService } from '../support/running-service.js';

const rules = (sinkUrl: string) => `
destinations: { hook: { url: "${sinkUrl}/hook" } }
rules:
  - name: scheduling-trouble
    conditions: { all: [ { fact: event, path: $.reason, operator: equal, value: FailedScheduling } ] }
    actions: [ { destination: hook, body: '{ "pod": involvedObject.name, "count": count, "message": message }' } ]
`;

const iso = (msAgo: number) => new Date(Date.now() - msAgo).toISOString();

/** A scheduler Event as events.k8s.io/v1 stores it. */
function schedulerEvent(
  name: string,
  count: number | undefined,
  lastMsAgo: number,
  apiVersion = 'events.k8s.io/v1',
): KubeObject {
  const common = {
    metadata: { name: `${name}.1`, namespace: 'shop', uid: `uid-${name}` },
    reason: 'FailedScheduling',
    type: 'Warning',
  };
  if (apiVersion === 'v1') {
    return {
      apiVersion,
      kind: 'Event',
      ...common,
      involvedObject: { kind: 'Pod', namespace: 'shop', name },
      message: '0/3 nodes are available',
      lastTimestamp: iso(lastMsAgo),
      count: count ?? 1,
      source: { component: 'default-scheduler' },
    };
  }
  return {
    apiVersion,
    kind: 'Event',
    ...common,
    eventTime: iso(lastMsAgo),
    ...(count ? { series: { count, lastObservedTime: iso(lastMsAgo) } } : {}),
    reportingController: 'default-scheduler',
    reportingInstance: 'default-scheduler-node1',
    action: 'Scheduling',
    regarding: { kind: 'Pod', namespace: 'shop', name },
    note: '0/3 nodes are available: 3 Insufficient cpu.',
  };
}

describe('standalone mode', () => {
  let fake: FakeKubeApi;
  let sink: CaptureSink;
  let svc: RunningService;
  const pods = () => sink.received('/hook').map((r) => r.json() as { pod: string; count: number });

  before(async () => {
    fake = await startFakeKubeApi();
    sink = await startCaptureSink();
    fake.apply(schedulerEvent('old-pod', undefined, 3600_000));
    fake.apply(schedulerEvent('recent-pod', undefined, 5_000));
    svc = await startService({
      rules: { 'r.yaml': rules(sink.url) },
      kube: connectionTo(fake),
      config: {
        kube: { ...loadConfig({}).kube, rulesSelector: '' },
        standalone: { enabled: true, maxAgeMs: 300_000, retries: 3 },
      },
    });
    await svc.service.standalone!.synced;
  });
  after(async () => {
    await svc.stop();
    await sink.close();
    await fake.close();
  });

  it('watches events.k8s.io/v1 and does not resend Events older than the max age on start', async () => {
    assert.equal(await svc.service.standalone!.api, 'events.k8s.io/v1');
    await waitUntil('the recent Event delivered', () => pods().length === 1);
    assert.deepEqual(
      pods().map((p) => p.pod),
      ['recent-pod'],
    );
  });

  it('delivers new Events and real repeats, not no-op updates or deletes', async () => {
    await fake.waitForWatchers(1);
    fake.apply(schedulerEvent('new-pod', undefined, 0));
    await waitUntil('new Event delivered', () => pods().some((p) => p.pod === 'new-pod'));
    fake.apply(schedulerEvent('new-pod', 2, 0)); // the scheduler saw it again: series.count 2
    await waitUntil('repeat delivered', () => pods().filter((p) => p.pod === 'new-pod').length === 2);
    fake.apply({
      ...schedulerEvent('new-pod', 2, 0),
      metadata: { name: 'new-pod.1', namespace: 'shop', uid: 'uid-new-pod', labels: { touched: 'yes' } },
    });
    fake.remove('events.k8s.io/v1', 'Event', 'shop', 'new-pod.1');
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(pods().filter((p) => p.pod === 'new-pod').length, 2);
    assert.ok(
      (await svc.metric('kube_event_rules_events_received_total', {
        type: 'dev.knative.apiserver.resource.delete',
        outcome: 'no_match',
      })) >= 1,
    );
  });

  it('retries a failed delivery in-process (no Broker to redeliver)', async () => {
    sink.respond('/hook', 500, 500, 500); // the three in-request attempts fail
    fake.apply(schedulerEvent('retried-pod', undefined, 0));
    const attempts = () => pods().filter((p) => p.pod === 'retried-pod').length;
    await waitUntil(
      'delivered on the in-process retry (3 failed attempts, then one that succeeds)',
      () => attempts() === 4,
      5000,
    );
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(attempts(), 4, 'nothing sent after the success');
    assert.equal(
      await svc.metric('kube_event_rules_deliveries_total', { rule: 'scheduling-trouble', outcome: 'failed' }),
      1,
    );
  });

  it('falls back to core/v1 Events where events.k8s.io/v1 is missing', async () => {
    const other = await startFakeKubeApi();
    other.fail('GET', /^\/apis\/events\.k8s\.io\/v1\/events/, 404, 1);
    other.apply(schedulerEvent('core-pod', 1, 1000, 'v1'));
    const standalone = await startService({
      rules: { 'r.yaml': rules(sink.url) },
      kube: connectionTo(other),
      config: {
        kube: { ...loadConfig({}).kube, rulesSelector: '' },
        standalone: { enabled: true, maxAgeMs: 300_000, retries: 0 },
      },
    });
    try {
      assert.equal(await standalone.service.standalone!.api, 'v1');
      await waitUntil('core/v1 Event delivered', () => pods().some((p) => p.pod === 'core-pod'));
    } finally {
      await standalone.stop();
      await other.close();
    }
  });
});
