/**
 * Knative's real ApiServerSource receive adapter watches Events on a real kube-apiserver (with the
 * ServiceAccount and RBAC of deploy/knative) and posts its CloudEvents to the service (its own
 * ServiceAccount); the deliveries at the capture sink are exact, in Resource mode and in Reference mode
 * (where the service reads each Event back through the API).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startCaptureSink, type CaptureSink } from '../../support/capture-sink.js';
import { startAdapter, type Adapter } from '../support/adapter.js';
import { startCluster, type TestCluster } from '../support/cluster.js';
import { accessOf } from '../support/deploy.js';
import {
  deliveryRules,
  hpaRescaleEvent,
  NAMESPACE,
  podBackOffCoreEvent,
  podScheduledEvent,
  shopObjects,
} from '../support/objects.js';
import { startServiceProcess, type ServiceProcess } from '../support/service-process.js';

const OWN = 'kube-event-rules';
const BACKOFF = 'Back-off restarting failed container web in pod web-1_shop';

describe('Knative ApiServerSource adapter → service → destinations', () => {
  let cluster: TestCluster;
  let sink: CaptureSink;
  let service: ServiceProcess;
  let sourceKubeconfig: string;
  let adapter: Adapter | undefined;
  const create = (object: Record<string, any>) =>
    cluster.kubectl(['create', '-f', '-'], { input: JSON.stringify(object) });
  const replace = (object: Record<string, any>) =>
    cluster.kubectl(['replace', '-f', '-'], { input: JSON.stringify(object) });
  const received = (type: string) => service.metric('kube_event_rules_events_received_total', { type });

  /**
   * The adapter sends only what its watch sees: the objects of its first list are dropped (Knative's
   * delegate store ignores Replace). So a test first creates probe Events, which no rule matches, until
   * one reaches the service: from then on every change is sent.
   */
  let probes = 0;
  async function untilWatching(adapter: Adapter): Promise<void> {
    const total = () => service.metric('kube_event_rules_events_received_total');
    const before = await total();
    const started = Date.now();
    while ((await total()) === before) {
      if (Date.now() - started > 90_000)
        throw new Error(`the adapter sent nothing within 90 s; its log: ${adapter.log}`);
      create(podScheduledEvent(`probe-${++probes}`));
      await new Promise((r) => setTimeout(r, 1000));
    }
  }

  before(async () => {
    cluster = await startCluster();
    sink = await startCaptureSink();
    // deploy/ (the Knative variant): the service's RBAC and the source's ServiceAccount with get/list/watch on Events.
    cluster.kubectl(['apply', '-f', '-'], { input: accessOf('deploy') });
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
    service = await startServiceProcess({
      KUBECONFIG: await cluster.serviceAccountKubeconfig(OWN, 'kube-event-rules'),
      POD_NAMESPACE: OWN,
    });
    sourceKubeconfig = await cluster.serviceAccountKubeconfig(OWN, 'kube-events-source');
    const started = Date.now();
    while (
      (await service.status()).sources.find((s) => s.source === `configmap:${OWN}/delivery-rules/rules.yaml`)?.rules
        .length !== 2
    ) {
      if (Date.now() - started > 30_000) throw new Error(`rules not loaded: ${JSON.stringify(await service.status())}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  });

  after(async () => {
    await adapter?.stop();
    await service?.stop();
    await sink?.close();
    await cluster?.destroy();
  });

  it('Resource mode: an HPA Event and a repeated Pod Event are delivered once per occurrence', async () => {
    adapter = startAdapter({
      mode: 'Resource',
      sink: service.url,
      kubeconfig: sourceKubeconfig,
      namespace: OWN,
      name: 'kube-events',
      logDir: cluster.dir,
    });
    await untilWatching(adapter);
    const [adds, updates] = [
      await received('dev.knative.apiserver.resource.add'),
      await received('dev.knative.apiserver.resource.update'),
    ];
    create(
      hpaRescaleEvent(
        'web.rescale-1',
        'New size: 4; reason: cpu resource utilization (percentage of request) above target',
      ),
    );
    create(podBackOffCoreEvent('web-1.backoff', 1));
    await sink.waitFor('/pods', 1, 30_000);
    create(podScheduledEvent('web-1.scheduled'));
    replace(podBackOffCoreEvent('web-1.backoff', 2));
    await sink.waitFor('/pods', 2, 30_000);
    // A last HPA Event: once delivered, the adapter has sent everything created before it.
    create(hpaRescaleEvent('web.rescale-2', 'New size: 2; reason: All metrics below target'));
    await sink.waitFor('/hpa', 2, 30_000);

    assert.deepEqual(
      sink.received('/hpa').map((r) => r.json()),
      [
        {
          hpa: `${NAMESPACE}/web`,
          message: 'New size: 4; reason: cpu resource utilization (percentage of request) above target',
          maxReplicas: 7,
          change: 'add',
        },
        {
          hpa: `${NAMESPACE}/web`,
          message: 'New size: 2; reason: All metrics below target',
          maxReplicas: 7,
          change: 'add',
        },
      ],
    );
    assert.deepEqual(
      sink.received('/pods').map((r) => r.json()),
      [
        { pod: 'web-1', count: 1, message: BACKOFF, change: 'add' },
        { pod: 'web-1', count: 2, message: BACKOFF, change: 'update' },
      ],
    );
    assert.equal(
      (await received('dev.knative.apiserver.resource.add')) - adds,
      4,
      'one add CloudEvent per Event created',
    );
    assert.equal((await received('dev.knative.apiserver.resource.update')) - updates, 1);
    await adapter.stop();
  });

  it('Reference mode: the service reads each Event back and delivers new occurrences; what happened while no adapter ran is never sent', async () => {
    create(hpaRescaleEvent('web.rescale-missed', 'New size: 6; created while no adapter runs'));
    const before = sink.requests.length;
    adapter = startAdapter({
      mode: 'Reference',
      sink: service.url,
      kubeconfig: sourceKubeconfig,
      namespace: OWN,
      name: 'kube-events-ref',
      logDir: cluster.dir,
    });
    await untilWatching(adapter);
    const [adds, updates] = [
      await received('dev.knative.apiserver.ref.add'),
      await received('dev.knative.apiserver.ref.update'),
    ];
    replace(podBackOffCoreEvent('web-1.backoff', 3));
    await sink.waitFor('/pods', 3, 30_000);
    create(
      hpaRescaleEvent(
        'web.rescale-3',
        'New size: 5; reason: cpu resource utilization (percentage of request) above target',
      ),
    );
    await sink.waitFor('/hpa', 3, 30_000);

    assert.deepEqual(
      sink.requests.slice(before).map((r) => [r.path, r.json()]),
      [
        ['/pods', { pod: 'web-1', count: 3, message: BACKOFF, change: 'update' }],
        [
          '/hpa',
          {
            hpa: `${NAMESPACE}/web`,
            message: 'New size: 5; reason: cpu resource utilization (percentage of request) above target',
            maxReplicas: 7,
            change: 'add',
          },
        ],
      ],
    );
    assert.equal((await received('dev.knative.apiserver.ref.update')) - updates, 1);
    assert.equal((await received('dev.knative.apiserver.ref.add')) - adds, 1);
    assert.equal(
      await service.metric('kube_event_rules_events_received_total', { outcome: 'unresolved' }),
      0,
      'every referenced Event was read back',
    );
  });

  it('the API server restarted while the adapter was frozen: its watch resumes from its resourceVersion and the Event it missed is replayed', async () => {
    const before = sink.requests.length;
    adapter!.pause();
    await cluster.stop();
    await cluster.start();
    create(
      hpaRescaleEvent('web.rescale-missed-watch', 'New size: 3; created while the adapter was frozen over the restart'),
    );
    adapter!.resume();
    await untilWatching(adapter!);
    create(hpaRescaleEvent('web.rescale-4', 'New size: 3; created after the adapter watches again'));
    await sink.waitFor('/hpa', 5, 60_000).catch((error: Error) => {
      throw new Error(`${error.message}; adapter log: ${adapter!.log}`);
    });
    const hpa = (message: string) => ['/hpa', { hpa: `${NAMESPACE}/web`, message, maxReplicas: 7, change: 'add' }];
    assert.deepEqual(
      sink.requests.slice(before).map((r) => [r.path, r.json()]),
      [
        hpa('New size: 3; created while the adapter was frozen over the restart'),
        hpa('New size: 3; created after the adapter watches again'),
      ],
    );
  });
});
