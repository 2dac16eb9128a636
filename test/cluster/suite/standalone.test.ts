/**
 * Standalone mode against a real kube-apiserver: the service (own ServiceAccount, deploy/standalone's RBAC)
 * watches the real Events API; Events created through the API about an HPA and a Pod reach the capture
 * sink exactly once per occurrence, rendered with the live objects the service reads.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startCaptureSink, type CaptureSink } from '../../support/capture-sink.js';
import { startCluster, type TestCluster } from '../support/cluster.js';
import { accessOf, render, toYaml } from '../support/deploy.js';
import {
  deliveryRules,
  hpaRescaleEvent,
  NAMESPACE,
  podBackOffEvent,
  podFailedMountEvent,
  podScheduledEvent,
  shopObjects,
  teamSecretRules,
} from '../support/objects.js';
import { startServiceProcess, type ServiceProcess } from '../support/service-process.js';

const OWN = 'kube-event-rules';

describe('standalone mode watching a real API server', () => {
  let cluster: TestCluster;
  let sink: CaptureSink;
  let service: ServiceProcess;
  const create = (object: Record<string, any>) =>
    cluster.kubectl(['create', '-f', '-'], { input: JSON.stringify(object) });

  before(async () => {
    cluster = await startCluster();
    sink = await startCaptureSink();
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
    const kubeconfig = await cluster.serviceAccountKubeconfig(OWN, 'kube-event-rules');
    service = await startServiceProcess({ KUBECONFIG: kubeconfig, POD_NAMESPACE: OWN, STANDALONE: 'true' });
    const loaded = async () =>
      (await service.status()).sources.find((s) => s.source === `configmap:${OWN}/delivery-rules/rules.yaml`)?.rules
        .length === 2;
    const started = Date.now();
    while (!(await loaded())) {
      if (Date.now() - started > 30_000) throw new Error(`rules not loaded: ${JSON.stringify(await service.status())}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  });

  after(async () => {
    await service?.stop();
    await sink?.close();
    await cluster?.destroy();
  });

  it('an HPA Event (core/v1) is delivered once, with the HPA read from the API', async () => {
    create(
      hpaRescaleEvent(
        'web.rescale-1',
        'New size: 4; reason: cpu resource utilization (percentage of request) above target',
      ),
    );
    const [delivery] = await sink.waitFor('/hpa', 1, 30_000);
    assert.deepEqual(delivery.json(), {
      hpa: `${NAMESPACE}/web`,
      message: 'New size: 4; reason: cpu resource utilization (percentage of request) above target',
      maxReplicas: 7,
      change: 'add',
    });
  });

  it('a Pod Event (events.k8s.io/v1) is delivered per occurrence: a repeat again, a no-op update and a non-matching Event not', async () => {
    create(podBackOffEvent('web-1.backoff', 1));
    await sink.waitFor('/pods', 1, 30_000);
    create(podScheduledEvent('web-1.scheduled'));
    // A label change is an update that is no new occurrence; the series count 2 is a real repeat.
    cluster.kubectl(['label', 'events.v1.events.k8s.io', 'web-1.backoff', '-n', NAMESPACE, 'seen=yes']);
    // As the event recorder does: the series is patched, eventTime (immutable) stays.
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
    await sink.waitFor('/pods', 2, 30_000);

    // A last HPA Event: once it is delivered, the watch has passed everything created before it.
    create(hpaRescaleEvent('web.rescale-2', 'New size: 2; reason: All metrics below target'));
    await sink.waitFor('/hpa', 2, 30_000);

    const message = 'Back-off restarting failed container web in pod web-1_shop';
    assert.deepEqual(
      sink.received('/pods').map((r) => r.json()),
      [
        { pod: 'web-1', count: 1, message, change: 'add' },
        { pod: 'web-1', count: 2, message, change: 'update' },
      ],
    );
    assert.equal(sink.received('/hpa').length, 2);
    assert.equal(await service.metric('kube_event_rules_deliveries_total', { outcome: 'delivered' }), 4);
  });

  it("a team's secretKeyRef: refused by the API until the team grants deploy/'s Secrets Role in its namespace, then delivered; the value is never printed", async () => {
    const token = 'team-shop-token-5b1f9c';
    cluster.kubectl(['create', 'secret', 'generic', 'hook-token', '-n', NAMESPACE, `--from-literal=token=${token}`]);
    cluster.kubectl([
      'create',
      'configmap',
      'team-rules',
      '-n',
      NAMESPACE,
      `--from-literal=rules.yaml=${teamSecretRules(sink.url)}`,
    ]);
    cluster.kubectl(['label', 'configmap', 'team-rules', '-n', NAMESPACE, 'kube-event-rules/rules=true']);
    const source = `configmap:${NAMESPACE}/team-rules/rules.yaml`;
    const started = Date.now();
    while ((await service.status()).sources.find((s) => s.source === source)?.rules.length !== 1) {
      if (Date.now() - started > 30_000)
        throw new Error(`team rules not loaded: ${JSON.stringify(await service.status())}`);
      await new Promise((r) => setTimeout(r, 100));
    }
    const forbidden = () =>
      service.metric('kube_event_rules_kube_requests_total', { kind: 'Secret', outcome: 'forbidden' });

    create(podFailedMountEvent('web-1.failedmount-1'));
    while ((await forbidden()) === 0) {
      if (Date.now() - started > 60_000) throw new Error('the Secret read was never refused');
      await new Promise((r) => setTimeout(r, 100));
    }

    // README "Team-owned rules": the team applies the Role and RoleBinding kube-event-rules-secrets in its namespace.
    const grant = render('deploy').filter(
      (o) => ['Role', 'RoleBinding'].includes(o.kind) && o.metadata.name === 'kube-event-rules-secrets',
    );
    assert.equal(grant.length, 2);
    cluster.kubectl(['apply', '-n', NAMESPACE, '-f', '-'], {
      input: toYaml(grant.map((o) => ({ ...o, metadata: { ...o.metadata, namespace: NAMESPACE } }))),
    });
    create(podFailedMountEvent('web-1.failedmount-2'));
    const [delivery] = await sink.waitFor('/team', 1, 30_000);
    assert.equal(delivery.headers.authorization, `Bearer ${token}`);
    assert.deepEqual(delivery.json(), { event: 'web-1.failedmount-2' });

    create(hpaRescaleEvent('web.rescale-3', 'New size: 3; a last Event'));
    await sink.waitFor('/hpa', 3, 30_000);
    assert.equal(sink.received('/team').length, 1, 'the refused occurrence is not delivered later');
    assert.ok(!JSON.stringify(service.logs).includes(token), 'the Secret value is in no log line');
    assert.ok(!JSON.stringify(await service.status()).includes(token));
  });
});
