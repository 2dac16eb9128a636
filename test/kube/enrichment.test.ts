/**
 * Through the Kubernetes API (fake server, real client): enrichment facts with caching and a rate limit,
 * Reference mode, and hpa-sender compatibility with the seed's Wavefront Secret and annotation.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, beforeEach, describe, it } from 'node:test';
import { loadConfig } from '../../src/config.js';
import { startCaptureSink, type CaptureSink } from '../support/capture-sink.js';
import { startFakeKubeApi, type FakeKubeApi } from '../support/fake-kube-api.js';
import { loadFixture, withEvent } from '../support/fixtures.js';
import { connectionTo, secret } from '../support/kube-fixtures.js';
import { startService, type RunningService } from '../support/running-service.js';

const HPA_SENDER_RULES = readFileSync(new URL('../../rules/hpa-sender-compat.yaml', import.meta.url), 'utf8');

const enrichmentRules = (sinkUrl: string) => `
destinations:
  hook: { url: "${sinkUrl}/enriched" }
  not-prod: { url: "${sinkUrl}/not-prod" }
  gone: { url: "${sinkUrl}/gone" }
rules:
  - name: crashloop-outside-prod
    conditions:
      all:
        - { fact: event, path: $.reason, operator: equal, value: BackOff }
        - { fact: object, path: $.metadata.labels.env, operator: notEqual, value: prod }
    actions: [{ destination: not-prod, body: '$object.metadata.name' }]
  - name: crashloop-of-a-gone-pod
    conditions:
      all:
        - { fact: event, path: $.reason, operator: equal, value: BackOff }
        - { fact: object, operator: absent }
    actions: [{ destination: gone, body: 'involvedObject.name' }]
  - name: payments-crashloops
    conditions:
      all:
        - { fact: event, path: $.reason, operator: equal, value: BackOff }
        - { fact: owner, path: $.kind, operator: equal, value: Deployment }
        - { fact: namespace, path: $.labels.team, operator: equal, value: payments }
    actions:
      - destination: hook
        body: '{ "deployment": $owner.metadata.name, "team": $namespace.labels.team, "pod": $object.metadata.name, "node": $object.spec.nodeName }'
`;

/** The seed's Wavefront Secret (hpa-sender secret-wavefront.yaml), pointed at the capture server. */
const wavefrontSecret = (sinkUrl: string) =>
  secret('shop', 'wavefront-hpe', {
    url: `${sinkUrl}/api/v2/event\n`, // a trailing newline, as `|` blocks and --from-file leave it (it crashed hpa-sender)
    headers: '{"Authorization":"Bearer wavefront-api-token"}',
    body: '{"name":"HPA Scaling","annotations":{"severity":"info","type":"scaling","details":"_message_"},"tags":["Scale"],"startTime":0,"endTime":0}',
  });

const hpa = (name: string, annotation?: string) => ({
  apiVersion: 'autoscaling/v2',
  kind: 'HorizontalPodAutoscaler',
  metadata: { name, namespace: 'shop', ...(annotation ? { annotations: { 'hpa-event': annotation } } : {}) },
  spec: { minReplicas: 1, maxReplicas: 5 },
});

const hpaEvent = (
  hpaName: string,
  n: number,
  edit: (body: Record<string, any>) => void = () => undefined,
  verb = 'add',
) =>
  withEvent(loadFixture('hpa-successful-rescale-up-resource-add'), (body, headers) => {
    body.metadata.uid = `hpa-${hpaName}-${n}`;
    body.involvedObject.name = hpaName;
    headers['ce-id'] = `ce-${hpaName}-${n}-${verb}`;
    headers['ce-type'] = `dev.knative.apiserver.resource.${verb}`;
    edit(body);
  });

const podEvent = (pod: string, n: number) =>
  withEvent(loadFixture('pod-backoff-crashloop-resource-update'), (body, headers) => {
    body.metadata.uid = `pod-${pod}-${n}`;
    body.involvedObject.name = pod;
    body.involvedObject.uid = `${pod}-uid`;
    headers['ce-id'] = `ce-${pod}-${n}`;
  });

describe('Kubernetes enrichment, Reference mode and hpa-sender compatibility', () => {
  let fake: FakeKubeApi;
  let sink: CaptureSink;
  let svc: RunningService;

  before(async () => {
    fake = await startFakeKubeApi();
    sink = await startCaptureSink();
    fake.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop', labels: { team: 'payments' } } });
    fake.apply({ apiVersion: 'apps/v1', kind: 'Deployment', metadata: { name: 'payment', namespace: 'shop' } });
    const deployment = fake.get('apps/v1', 'Deployment', 'shop', 'payment')!;
    fake.apply({
      apiVersion: 'apps/v1',
      kind: 'ReplicaSet',
      metadata: {
        name: 'payment-5c7d9b8f6',
        namespace: 'shop',
        ownerReferences: [
          {
            apiVersion: 'apps/v1',
            kind: 'Deployment',
            name: 'payment',
            uid: deployment.metadata.uid,
            controller: true,
          },
        ],
      },
    });
    for (let i = 0; i < 50; i++) {
      fake.apply({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: {
          name: `payment-5c7d9b8f6-${i}`,
          uid: `payment-5c7d9b8f6-${i}-uid`,
          namespace: 'shop',
          ownerReferences: [{ apiVersion: 'apps/v1', kind: 'ReplicaSet', name: 'payment-5c7d9b8f6', controller: true }],
        },
        spec: { nodeName: `node-${i % 3}` },
      });
    }
    fake.apply({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'labelled-dev', namespace: 'shop', labels: { env: 'dev' } },
    });
    fake.apply({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'labelled-prod', namespace: 'shop', labels: { env: 'prod' } },
    });
    fake.apply(wavefrontSecret(sink.url));
    fake.apply(hpa('checkout', 'shop/wavefront-hpe'));
    fake.apply(hpa('no-slash', 'wavefront-hpe'));
    fake.apply(hpa('missing-secret', 'shop/nope'));
    fake.apply(hpa('other-namespace', 'default/wavefront-hpe'));
    fake.apply(hpa('plain'));
    const event = loadFixture('hpa-successful-rescale-up-resource-add').body as Record<string, any>;
    fake.apply({ ...event, metadata: { name: event.metadata.name, namespace: 'shop', uid: event.metadata.uid } });
    svc = await startService({
      rules: { 'hpa-sender-compat.yaml': HPA_SENDER_RULES, 'enrichment.yaml': enrichmentRules(sink.url) },
      kube: connectionTo(fake),
      config: { kube: { ...loadConfig({}).kube, rulesSelector: '', requestsPerSecond: 20, burst: 40 } },
    });
  });
  after(async () => {
    await svc.stop();
    await sink.close();
    await fake.close();
  });
  beforeEach(() => {
    sink.requests.length = 0;
  });

  it('serves an old hpa-sender setup unchanged: annotated HPA + the seed Wavefront Secret', async () => {
    assert.equal((await svc.post(hpaEvent('checkout', 1))).status, 204);
    const [request] = sink.received('/api/v2/event');
    assert.equal(request.method, 'POST');
    assert.equal(request.headers.authorization, 'Bearer wavefront-api-token');
    assert.equal(request.headers['content-type'], 'application/json');
    assert.deepEqual(request.json(), {
      name: 'HPA Scaling',
      annotations: {
        severity: 'info',
        type: 'scaling',
        details: 'New size: 4; reason: cpu resource utilization (percentage of request) above target',
      },
      tags: ['Scale'],
      startTime: 0,
      endTime: 0,
    });
  });

  it('fixes hpa-sender: quotes, backslashes and newlines stay valid JSON, and a _time_ inside the message is not rewritten', async () => {
    const message =
      'unable to get external metric shop/q/&LabelSelector{"queue": "orders"} \\d _time_ and _message_\nnext line';
    await svc.post(hpaEvent('checkout', 2, (body) => (body.message = message)));
    const [request] = sink.received('/api/v2/event');
    assert.equal((request.json() as { annotations: { details: string } }).annotations.details, message);
  });

  it('fires on real occurrences only: not on a no-op update or the TTL delete', async () => {
    await svc.post(hpaEvent('checkout', 3));
    await svc.post(hpaEvent('checkout', 3, () => undefined, 'update'));
    await svc.post(hpaEvent('checkout', 3, () => undefined, 'delete'));
    assert.equal(sink.received('/api/v2/event').length, 1);
    await svc.post(hpaEvent('checkout', 3, (body) => (body.count = 2), 'update'));
    assert.equal(sink.received('/api/v2/event').length, 2, 'the repeat (count 2) fires');
  });

  it('counts a bad annotation and a Secret in another namespace as errors, a missing Secret as a redelivery; never crashes', async () => {
    for (const [name, error, status] of [
      ['no-slash', /annotation hpa-event="wavefront-hpe" must be <namespace>\/<secret>/, 204],
      // A rollout may still create it: redelivered by the Broker (dead-lettered in the end), not acknowledged.
      ['missing-secret', /Secret shop\/nope not found/, 503],
      ['other-namespace', /outside the HPA's namespace; allow it with HPA_SENDER_SECRET_NAMESPACES/, 204],
    ] as const) {
      assert.equal((await svc.post(hpaEvent(name, 1))).status, status, name);
      const logged = svc.logs
        .filter((l) => String(l.msg).startsWith('action not rendered'))
        .map((l) => String(l.error));
      assert.ok(
        logged.some((e) => error.test(e)),
        `${name}: ${logged.join(' | ')}`,
      );
    }
    assert.equal(
      await svc.metric('kube_event_rules_deliveries_total', { rule: 'hpa-sender-compat', outcome: 'error' }),
      2,
    );
    assert.equal(
      await svc.metric('kube_event_rules_deliveries_total', { rule: 'hpa-sender-compat', outcome: 'failed' }),
      1,
    );
    await svc.post(hpaEvent('plain', 1));
    assert.equal(sink.requests.length, 0, 'an HPA without the annotation does not match');
  });

  it('fails over to the Broker when the webhook is unreachable (503), and delivers on redelivery', async () => {
    sink.always('/api/v2/event', 503);
    const first = await svc.post(hpaEvent('checkout', 4));
    assert.equal(first.status, 503);
    sink.always('/api/v2/event', undefined);
    assert.equal((await svc.post(hpaEvent('checkout', 4))).status, 204);
  });

  it('enriches with object, top owner and namespace labels', async () => {
    await svc.post(podEvent('payment-5c7d9b8f6-7', 1));
    assert.deepEqual(
      sink.received('/enriched').map((r) => r.json()),
      [{ deployment: 'payment', team: 'payments', pod: 'payment-5c7d9b8f6-7', node: 'node-1' }],
    );
  });

  it('a missing object (404) or a forbidden one (403) is a null fact, counted', async () => {
    await svc.post(podEvent('does-not-exist', 1));
    fake.fail('GET', /\/pods\/payment-5c7d9b8f6-49$/, 403);
    await svc.post(podEvent('payment-5c7d9b8f6-49', 1));
    assert.equal(sink.received('/enriched').length, 0);
    assert.ok((await svc.metric('kube_event_rules_kube_requests_total', { kind: 'Pod', outcome: 'not_found' })) >= 1);
    assert.equal(await svc.metric('kube_event_rules_kube_requests_total', { kind: 'Pod', outcome: 'forbidden' }), 1);
  });

  it('an object that is gone (404) is absent: notEqual on it is false, the absent operator true', async () => {
    for (const pod of ['vanished-pod', 'labelled-dev', 'labelled-prod', 'payment-5c7d9b8f6-3'])
      await svc.post(podEvent(pod, 1));
    assert.deepEqual(
      sink.received('/not-prod').map((r) => r.json()),
      ['labelled-dev'],
      'only a present label that is not prod',
    );
    assert.deepEqual(
      sink.received('/gone').map((r) => r.json()),
      ['vanished-pod'],
    );
  });

  it('under a storm of 1,000 events about 50 objects, caches and rate-limits its API calls', async () => {
    const before = fake.count('GET', /\/(pods|replicasets|deployments|namespaces)\//);
    const started = Date.now();
    // Like the Broker: an event refused by the rate limit (429 + Retry-After) is redelivered after the wait.
    const deliver = async (i: number): Promise<number> => {
      for (let attempt = 0; ; attempt++) {
        const response = await svc.post(podEvent(`payment-5c7d9b8f6-${i % 50}`, 100 + i));
        if (response.status !== 429 || attempt >= 10) return response.status;
        await new Promise((r) => setTimeout(r, Number(response.headers.get('retry-after')) * 1000));
      }
    };
    const statuses = await Promise.all(Array.from({ length: 1000 }, (_, i) => deliver(i)));
    const seconds = (Date.now() - started) / 1000;
    assert.ok(
      statuses.every((s) => s === 204),
      `statuses: ${[...new Set(statuses)].join(', ')}`,
    );
    const calls = fake.count('GET', /\/(pods|replicasets|deployments|namespaces)\//) - before;
    assert.ok(calls <= 40 + 20 * seconds + 1, `${calls} API calls in ${seconds.toFixed(1)} s exceed the rate limit`);
    assert.ok(calls <= 50, `at most one GET per pod (the owner chain and namespace are cached): ${calls}`);
    assert.ok((await svc.metric('kube_event_rules_kube_requests_total', { outcome: 'cached' })) > 1000);
  });

  it('resolves Reference-mode events through the API, and counts a vanished Event as unresolved', async () => {
    const reference = loadFixture('hpa-successful-rescale-up-reference-add');
    assert.equal((await svc.post(reference)).status, 204);
    assert.equal(sink.received('/api/v2/event').length, 1, 'resolved, matched and delivered');
    const gone = withEvent(reference, (body, headers) => {
      body.name = 'checkout.gone';
      headers['ce-id'] = 'ref-gone';
    });
    assert.equal((await svc.post(gone)).status, 204);
    assert.equal(
      await svc.metric('kube_event_rules_events_received_total', {
        type: 'dev.knative.apiserver.ref.add',
        outcome: 'unresolved',
      }),
      1,
    );
    assert.ok(fake.count('GET', /\/api\/v1\/namespaces\/shop\/events\/checkout\.gone$/) === 1);
  });
});
