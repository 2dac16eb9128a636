/**
 * Standalone mode across a restart, with the watch position kept in Redis: the new process handles what
 * changed while it was down and nothing else; a change still retrying at shutdown is handed over, not lost.
 * Without a saved position the start window applies and what it sends is counted as possible duplicates.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../src/config.js';
import { startCaptureSink, type CaptureSink } from '../support/capture-sink.js';
import { startFakeKubeApi, type FakeKubeApi, type KubeObject } from '../support/fake-kube-api.js';
import { connectionTo, waitUntil } from '../support/kube-fixtures.js';
import { needs } from '../support/needs.js';
import { startRedis } from '../support/real-receivers.js';
import { startService } from '../support/running-service.js';

const rules = (sinkUrl: string) => `
destinations: { hook: { url: "${sinkUrl}/hook" } }
rules:
  - name: scheduling-trouble
    conditions: { all: [ { fact: event, path: $.reason, operator: equal, value: FailedScheduling } ] }
    actions: [ { destination: hook, body: '{ "pod": involvedObject.name, "count": count }' } ]
`;

function schedulerEvent(name: string, count?: number): KubeObject {
  const now = new Date().toISOString();
  return {
    apiVersion: 'events.k8s.io/v1',
    kind: 'Event',
    metadata: { name: `${name}.1`, namespace: 'shop', uid: `uid-${name}` },
    reason: 'FailedScheduling',
    type: 'Warning',
    eventTime: now,
    ...(count ? { series: { count, lastObservedTime: now } } : {}),
    reportingController: 'default-scheduler',
    reportingInstance: 'default-scheduler-node1',
    action: 'Scheduling',
    regarding: { kind: 'Pod', namespace: 'shop', name },
    note: '0/3 nodes are available',
  };
}

describe('standalone restart', { skip: needs('redis-server') }, () => {
  let redis: Awaited<ReturnType<typeof startRedis>>;
  let fake: FakeKubeApi;
  let sink: CaptureSink;
  before(async () => {
    redis = await startRedis();
    fake = await startFakeKubeApi();
    sink = await startCaptureSink();
  });
  after(async () => {
    await sink.close();
    await fake.close();
    await redis.stop();
  });
  const sent = () => sink.received('/hook').map((r) => r.json() as { pod: string; count: number });
  const start = (redisUrl?: string) =>
    startService({
      rules: { 'r.yaml': rules(sink.url) },
      kube: connectionTo(fake),
      config: {
        kube: { ...loadConfig({}).kube, rulesSelector: '' },
        standalone: { enabled: true, maxAgeMs: 300_000, retries: 5 },
        deliveryAttempts: 1,
        ...(redisUrl ? { redisUrl } : {}),
      },
    });

  it(
    'resumes from the saved position: what changed while down is sent, nothing else; a change still retrying is handed over',
    { timeout: 60_000 },
    async () => {
      fake.apply(schedulerEvent('a'));
      fake.apply(schedulerEvent('b'));
      const first = await start(redis.url);
      try {
        await first.service.standalone!.synced;
        await waitUntil('a and b delivered', () => sent().length === 2, 5000);
        assert.equal(
          await first.metric('kube_event_rules_standalone_resent_total'),
          2,
          'no saved position yet: counted as possible duplicates',
        );
        await fake.waitForWatchers(1);
        sink.always('/hook', 500);
        fake.apply(schedulerEvent('c')); // fails, and is still being retried in-process at shutdown
        await waitUntil('c tried', () => sent().some((p) => p.pod === 'c'), 5000);
        await new Promise((r) => setTimeout(r, 1200)); // a periodic save happens meanwhile: it must stay before c
      } finally {
        await first.stop();
      }
      sink.always('/hook', undefined);
      sink.requests.length = 0;

      fake.apply(schedulerEvent('b', 2)); // repeated while the service was down
      fake.apply(schedulerEvent('d')); // new while the service was down
      const second = await start(redis.url);
      try {
        await second.service.standalone!.synced;
        await waitUntil('c, b (count 2) and d delivered', () => sent().length >= 3, 5000);
        await new Promise((r) => setTimeout(r, 300));
        assert.deepEqual(
          sent()
            .map((p) => `${p.pod}/${p.count}`)
            .sort(),
          ['b/2', 'c/1', 'd/1'],
        );
        assert.equal(await second.metric('kube_event_rules_standalone_resent_total'), 0);
        assert.equal(
          await second.metric('kube_event_rules_deliveries_total', { outcome: 'skipped_duplicate' }),
          0,
          'a was not even looked at again',
        );
      } finally {
        await second.stop();
      }
    },
  );

  it('without a saved position (no REDIS_URL) a restart sends the start window again, counted as possible duplicates', async () => {
    sink.requests.length = 0;
    const svc = await start();
    try {
      await svc.service.standalone!.synced;
      await waitUntil('the window sent again', () => sent().length === 4, 5000);
      assert.equal(await svc.metric('kube_event_rules_standalone_resent_total'), 4);
    } finally {
      await svc.stop();
    }
  });
});
