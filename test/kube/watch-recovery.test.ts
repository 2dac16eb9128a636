/**
 * Watch recovery: a watch that keeps failing while the API is down keeps probing it every few seconds,
 * so a change made after the API comes back arrives within seconds — not after a backoff grown to a minute.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CoreV1Api, type V1ConfigMap } from '@kubernetes/client-node';
import { WATCH_BACKOFF, restartDelayMs, startResilientInformer } from '../../src/kube/resilient-informer.js';
import { startFakeKubeApi } from '../support/fake-kube-api.js';
import { connectionTo, ruleConfigMap, waitUntil } from '../support/kube-fixtures.js';
import { loadConfig } from '../../src/config.js';
import { startService } from '../support/running-service.js';
import { createMetrics, recordingLogger } from '../support/quiet.js';

describe('watch recovery', () => {
  it('restart delays are jittered and capped at a few seconds', () => {
    assert.equal(
      restartDelayMs(WATCH_BACKOFF.maxMs, () => 0),
      WATCH_BACKOFF.maxMs / 2,
    );
    assert.equal(
      restartDelayMs(WATCH_BACKOFF.maxMs, () => 0.999999),
      WATCH_BACKOFF.maxMs,
    );
    assert.ok(WATCH_BACKOFF.maxMs <= 5000);
  });

  it(
    'after a 16 s API outage, a change is seen within seconds of the API coming back',
    { timeout: 60_000 },
    async () => {
      const fake = await startFakeKubeApi();
      const kc = fake.kubeConfig();
      const core = kc.makeApiClient(CoreV1Api);
      const seen = new Set<string>();
      const metrics = createMetrics();
      const informer = startResilientInformer<V1ConfigMap>({
        name: 'configmaps',
        kc,
        path: '/api/v1/configmaps',
        list: () => core.listConfigMapForAllNamespaces(),
        onChange: (_type, cm) => void seen.add(cm.metadata?.name ?? ''),
        log: recordingLogger().log,
        metrics,
        relistAfterMs: 300_000,
      });
      try {
        await informer.synced;
        await fake.waitForWatchers(1);
        fake.down();
        await new Promise((r) => setTimeout(r, 16_000)); // long enough for the old 1 s → 60 s backoff to reach 16 s
        fake.up();
        const upAt = Date.now();
        fake.apply(ruleConfigMap('team-a', 'after-outage', {}));
        await waitUntil('the change after the outage is seen', () => seen.has('after-outage'), 15_000);
        const lagMs = Date.now() - upAt;
        assert.ok(lagMs <= WATCH_BACKOFF.maxMs + 2000, `seen ${lagMs} ms after the API came back`);
        const restarts =
          (await metrics.registry.getSingleMetric('kube_event_rules_informer_restarts_total')?.get())?.values.reduce(
            (a, v) => a + v.value,
            0,
          ) ?? 0;
        assert.ok(restarts >= 5, `kept probing during the outage: ${restarts} restarts`);
      } finally {
        await informer.stop();
        await fake.close();
      }
    },
  );

  it(
    'a rule ConfigMap list the API accepts and never answers is aborted and retried: ready within seconds, no socket left open',
    { timeout: 60_000 },
    async () => {
      const fake = await startFakeKubeApi();
      fake.apply(ruleConfigMap('observability', 'rules', { 'r.yaml': 'rules: []\n' }));
      fake.hang('GET', /^\/api\/v1\/configmaps\?labelSelector=[^&]*$/, 3); // the list, not the watch
      const started = Date.now();
      const svc = await startService({
        kube: connectionTo(fake),
        config: { kube: { ...loadConfig({}).kube, timeoutMs: 500 } },
      });
      try {
        const readyMs = Date.now() - started;
        assert.ok(readyMs < 10_000, `ready after ${readyMs} ms`);
        assert.ok(fake.count('GET', /^\/api\/v1\/configmaps$/) >= 4, 'three hung lists, then one that answered');
        await waitUntil('hung lists closed', async () => (await fake.openConnections()) <= 2, 3000);
      } finally {
        await svc.stop();
        await fake.close();
      }
    },
  );
});
