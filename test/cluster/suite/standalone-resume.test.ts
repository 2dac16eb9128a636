/**
 * Standalone mode restarted against a real kube-apiserver: the watch position (etcd revisions as the real
 * API server hands them out) kept in Redis lets the new process deliver exactly what changed while the
 * service was down — a repeat and a new Event — and resend nothing else.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startCaptureSink, type CaptureSink } from '../../support/capture-sink.js';
import { startRedis } from '../../support/real-receivers.js';
import { startCluster, type TestCluster } from '../support/cluster.js';
import { accessOf } from '../support/deploy.js';
import { deliveryRules, hpaRescaleEvent, NAMESPACE, podBackOffEvent, shopObjects } from '../support/objects.js';
import { startServiceProcess, type ServiceProcess } from '../support/service-process.js';

const OWN = 'kube-event-rules';
const BACKOFF = 'Back-off restarting failed container web in pod web-1_shop';

describe('standalone mode restarted: resumes from its watch position on a real API server', () => {
  let cluster: TestCluster;
  let sink: CaptureSink;
  let redis: Awaited<ReturnType<typeof startRedis>>;
  let service: ServiceProcess | undefined;
  let kubeconfig: string;
  const create = (object: Record<string, any>) =>
    cluster.kubectl(['create', '-f', '-'], { input: JSON.stringify(object) });
  const start = async () => {
    service = await startServiceProcess({
      KUBECONFIG: kubeconfig,
      POD_NAMESPACE: OWN,
      STANDALONE: 'true',
      REDIS_URL: `redis://127.0.0.1:${redis.port}`,
    });
    const started = Date.now();
    while (
      (await service.status()).sources.find((s) => s.source === `configmap:${OWN}/delivery-rules/rules.yaml`)?.rules
        .length !== 2
    ) {
      if (Date.now() - started > 30_000) throw new Error(`rules not loaded: ${JSON.stringify(await service.status())}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  };

  before(async () => {
    cluster = await startCluster();
    sink = await startCaptureSink();
    redis = await startRedis();
    cluster.kubectl(['apply', '-f', '-'], { input: accessOf('deploy/standalone') });
    cluster.kubectl(['create', 'namespace', NAMESPACE]);
    cluster.kubectl(['apply', '-f', '-'], { input: shopObjects() });
    cluster.kubectl([
      'create',
      'configmap',
      'delivery-rules',
      '-n',
      OWN,
      `--from-literal=rules.yaml=${deliveryRules(sink.url)}`,
    ]);
    cluster.kubectl(['label', 'configmap', 'delivery-rules', '-n', OWN, 'kube-event-rules/rules=true']);
    kubeconfig = await cluster.serviceAccountKubeconfig(OWN, 'kube-event-rules');
  });

  after(async () => {
    await service?.stop();
    await redis?.stop();
    await sink?.close();
    await cluster?.destroy();
  });

  it('what changed while the service was down is delivered once; nothing else is sent again', async () => {
    await start();
    create(podBackOffEvent('web-1.backoff', 1));
    create(hpaRescaleEvent('web.rescale-1', 'New size: 4; before the restart'));
    await sink.waitFor('/pods', 1, 30_000);
    await sink.waitFor('/hpa', 1, 30_000);
    await service!.stop(); // saves the watch position on the way out

    // While it is down: a repeat of the Pod's back-off, a new HPA Event, and a change that is no new occurrence.
    const series = { series: { count: 2, lastObservedTime: new Date().toISOString().replace('Z', '000Z') } };
    cluster.kubectl([
      'patch',
      'events.v1.events.k8s.io',
      'web-1.backoff',
      '-n',
      NAMESPACE,
      '--type=merge',
      '-p',
      JSON.stringify(series),
    ]);
    create(hpaRescaleEvent('web.rescale-2', 'New size: 2; while the service was down'));
    cluster.kubectl(['label', 'events.v1.events.k8s.io', 'web.rescale-1', '-n', NAMESPACE, 'seen=yes']);

    await start();
    await sink.waitFor('/pods', 2, 30_000);
    await sink.waitFor('/hpa', 2, 30_000);
    create(hpaRescaleEvent('web.rescale-3', 'New size: 3; after the restart'));
    await sink.waitFor('/hpa', 3, 30_000);

    // The repeat comes from the new process's first list, which reports it as `add` (the occurrence
    // tracker is in memory): delivered once with its count, whatever a rule's `on:` would make of it.
    assert.deepEqual(
      sink
        .received('/pods')
        .map((r) => r.json() as Record<string, unknown>)
        .map(({ change, ...rest }) => rest),
      [
        { pod: 'web-1', count: 1, message: BACKOFF },
        { pod: 'web-1', count: 2, message: BACKOFF },
      ],
    );
    assert.deepEqual(
      sink.received('/hpa').map((r) => (r.json() as { message: string }).message),
      ['New size: 4; before the restart', 'New size: 2; while the service was down', 'New size: 3; after the restart'],
    );
    assert.equal(
      await service!.metric('kube_event_rules_standalone_resent_total'),
      0,
      'resumed from the saved position, not the start window',
    );
    assert.ok(!service!.logs.some((l) => /no saved watch position/.test(String(l.msg))));
  });
});
