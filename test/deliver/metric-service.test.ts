/**
 * Events as metrics through the running service (real HTTP on 127.0.0.1): the documented examples
 * (docs/examples/event-metrics.yaml, shown whole in docs/rule-authoring.md) take sample events on POST /
 * and their counters and histogram appear on GET /metrics exactly; a redelivery and a dry run change
 * nothing; a team's metric always carries its own namespace; a removed document takes its metrics along.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { manifestCluster, parseManifests } from '../../src/enrich/manifest-cluster.js';
import { loadFixture, withEvent, type EventFixture } from '../support/fixtures.js';
import { startService, type RunningService } from '../support/running-service.js';
import { sample, samples } from '../support/metrics-text.js';

const EXAMPLE = readFileSync(new URL('../../docs/examples/event-metrics.yaml', import.meta.url), 'utf8');
const GUIDE = readFileSync(new URL('../../docs/rule-authoring.md', import.meta.url), 'utf8');
const USER = 'kube_event_rules_user_';

/**
 * The Pod of the crash-loop fixture, its app container's last run OOMKilled, owned by a ReplicaSet of Deployment
 * payment.
 */
const OBJECTS = `apiVersion: v1
kind: Pod
metadata:
  name: payment-5c7d9b8f6-2m4rt
  namespace: shop
  ownerReferences: [ { apiVersion: apps/v1, kind: ReplicaSet, name: payment-5c7d9b8f6, uid: rs-1, controller: true } ]
status:
  containerStatuses:
  - { name: proxy, restartCount: 0, lastState: {} }
  - { name: payment, restartCount: 4, lastState: { terminated: { reason: OOMKilled, exitCode: 137 } } }
---
apiVersion: apps/v1
kind: ReplicaSet
metadata:
  name: payment-5c7d9b8f6
  namespace: shop
  ownerReferences: [ { apiVersion: apps/v1, kind: Deployment, name: payment, uid: deploy-1, controller: true } ]
---
apiVersion: apps/v1
kind: Deployment
metadata: { name: payment, namespace: shop }
`;

const podEvent = loadFixture('pod-backoff-crashloop-resource-update');
/** A kubelet Event about the Pod of the fixture, with its own identity. */
const kubeletEvent = (id: string, edit: (body: Record<string, any>) => void): EventFixture =>
  withEvent(podEvent, (body, headers) => {
    headers['ce-id'] = `ce-${id}`;
    headers['ce-type'] = 'dev.knative.apiserver.resource.add';
    body.metadata.uid = `uid-${id}`;
    body.count = 1;
    edit(body);
  });
const started = kubeletEvent('started', (body) =>
  Object.assign(body, { reason: 'Started', type: 'Normal', message: 'Started container payment' }),
);
const pullFailed = (id: string, image: string) =>
  kubeletEvent(id, (body) =>
    Object.assign(body, {
      reason: 'Failed',
      message: `Failed to pull image "${image}": rpc error: code = NotFound desc = failed to pull and unpack image "${image}": not found`,
    }),
  );
const failedScheduling = withEvent(
  loadFixture('events-k8s-io-v1-hpa-successful-rescale-resource-add'),
  (body, headers) => {
    headers['ce-id'] = 'ce-scheduling';
    Object.assign(body, {
      reason: 'FailedScheduling',
      type: 'Warning',
      reportingController: 'default-scheduler',
      regarding: { kind: 'Pod', namespace: 'shop', name: 'checkout-7d9f5-x2x9k', uid: 'pod-2', apiVersion: 'v1' },
      note: '0/3 nodes are available: 1 node(s) had untolerated taint {node-role.kubernetes.io/control-plane: }, 2 Insufficient memory. preemption: 0/3 nodes are available: 3 Preemption is not helpful for scheduling.',
    });
    body.metadata.uid = 'uid-scheduling';
  },
);
const rescale = loadFixture('hpa-successful-rescale-up-resource-add'); // "New size: 4" in namespace shop

describe('metric destinations in the running service', () => {
  let running: RunningService;
  const metricsText = async () => (await fetch(`${running.url}/metrics`)).text();
  const post = async (fixture: EventFixture) => assert.equal((await running.post(fixture)).status, 204);

  before(async () => {
    const { objects, problems } = parseManifests([{ label: 'objects', text: OBJECTS }]);
    assert.deepEqual(problems, []);
    running = await startService({ rules: { 'event-metrics.yaml': EXAMPLE }, cluster: manifestCluster(objects) });
  });
  after(() => running.stop());

  it('the guide shows the example file whole, and it loads', () => {
    assert.ok(
      GUIDE.includes(EXAMPLE.trimEnd()),
      'docs/rule-authoring.md includes docs/examples/event-metrics.yaml verbatim',
    );
    assert.deepEqual(
      running.service.store.status().flatMap((s) => s.errors),
      [],
    );
  });

  it('each documented example counts its sample events, as /metrics shows them', async () => {
    assert.match(
      await metricsText(),
      /^# TYPE kube_event_rules_user_container_oom_kills_total counter$/m,
      'declared at load, before any event',
    );
    for (const fixture of [
      started,
      failedScheduling,
      pullFailed('pull-1', 'registry.example.com:5000/shop/payment:1.4.2'),
      pullFailed('pull-2', 'nginx:1.27'),
      pullFailed('pull-3', 'registry.example.com:5000/shop/cart:2.0'),
      rescale,
    ])
      await post(fixture);
    const text = await metricsText();
    assert.deepEqual(samples(text, `${USER}container_oom_kills_total`), [
      { labels: { namespace: 'shop', workload: 'Deployment/payment' }, value: 1 },
    ]);
    assert.deepEqual(samples(text, `${USER}scheduling_failures_total`), [
      { labels: { namespace: 'shop', reason: 'insufficient_memory' }, value: 1 },
    ]);
    assert.deepEqual(samples(text, `${USER}image_pull_failures_total`), [
      { labels: { namespace: 'shop', registry: 'registry.example.com:5000' }, value: 2 },
      { labels: { namespace: 'shop', registry: 'default' }, value: 1 },
    ]);
    assert.equal(sample(text, `${USER}hpa_rescale_replicas_bucket`, { namespace: 'shop', le: '2' }), 0);
    assert.equal(sample(text, `${USER}hpa_rescale_replicas_bucket`, { namespace: 'shop', le: '5' }), 1);
    assert.equal(sample(text, `${USER}hpa_rescale_replicas_sum`, { namespace: 'shop' }), 4);
    assert.equal(sample(text, `${USER}hpa_rescale_replicas_count`, { namespace: 'shop' }), 1);
    assert.equal(
      sample(text, 'kube_event_rules_deliveries_total', {
        rule: 'count-oom-kills',
        destination: 'oom-kills',
        outcome: 'delivered',
      }),
      1,
    );
  });

  it('a Broker redelivery of a counted occurrence does not count it again', async () => {
    await post(started);
    const text = await metricsText();
    assert.equal(
      sample(text, `${USER}container_oom_kills_total`, { namespace: 'shop', workload: 'Deployment/payment' }),
      1,
    );
    assert.equal(
      sample(text, 'kube_event_rules_deliveries_total', {
        rule: 'count-oom-kills',
        destination: 'oom-kills',
        outcome: 'skipped_duplicate',
      }),
      1,
    );
  });

  it('a dry run shows the observation and changes no metric', async () => {
    const before = await metricsText();
    const fixture = pullFailed('pull-dry', 'quay.example.org/team/x:1');
    const response = await fetch(`${running.url}/dry-run`, {
      method: 'POST',
      headers: fixture.headers,
      body: JSON.stringify(fixture.body),
    });
    assert.equal(response.status, 200);
    const { events } = (await response.json()) as {
      events: { actions: { outcome: string; request: { method: string; url: string; body: unknown } }[] }[];
    };
    assert.deepEqual(
      events[0].actions.map((a) => [a.outcome, a.request]),
      [
        [
          'rendered',
          {
            method: 'INC',
            url: `${USER}image_pull_failures_total`,
            headers: {},
            body: {
              metric: `${USER}image_pull_failures_total`,
              type: 'counter',
              labels: { namespace: 'shop', registry: 'quay.example.org' },
            },
          },
        ],
      ],
    );
    const after = await metricsText();
    assert.deepEqual(
      samples(after, `${USER}image_pull_failures_total`),
      samples(before, `${USER}image_pull_failures_total`),
    );
  });

  it('the playground evaluates a draft with metrics and changes no metric of the service', async () => {
    const before = await metricsText();
    const fixture = pullFailed('pull-playground', 'registry.example.com:5000/shop/payment:1.4.2');
    const draft = EXAMPLE.replace(/name: image_pull_failures_total/, 'name: draft_pull_failures_total');
    const response = await fetch(`${running.url}/playground/api/evaluate`, {
      method: 'POST',
      body: JSON.stringify({
        document: draft,
        event: JSON.stringify({ headers: fixture.headers, body: fixture.body }),
      }),
    });
    assert.equal(response.status, 200);
    const { problems, results } = (await response.json()) as {
      problems: unknown[];
      results: { actions: { outcome: string; request: { method: string; url: string } }[] }[];
    };
    assert.deepEqual(problems, []);
    assert.deepEqual(
      results[0].actions.map((a) => [a.outcome, a.request.method, a.request.url]),
      [['rendered', 'INC', `${USER}draft_pull_failures_total`]],
    );
    const after = await metricsText();
    assert.doesNotMatch(after, /draft_pull_failures_total/, "a draft's metrics are never registered on the service");
    assert.deepEqual(
      samples(after, `${USER}image_pull_failures_total`),
      samples(before, `${USER}image_pull_failures_total`),
    );
  });

  it("a team's metric always carries the team's namespace, and the team cannot declare it", async () => {
    const team = `destinations:
  warnings:
    kind: metric
    metric: { name: team_warnings_total, type: counter, help: Warnings in my namespace., labels: { reason: reason } }
rules:
  - name: my-warnings
    conditions: { all: [ { fact: event, path: $.type, operator: equal, value: Warning } ] }
    actions: [ { destination: warnings } ]
`;
    assert.deepEqual(running.service.store.update('configmap:team-a/rules/metrics.yaml', team, 'team-a'), []);
    const forged = team.replace('labels: { reason: reason }', `labels: { reason: reason, namespace: '"kube-system"' }`);
    assert.match(
      running.service.store.update('configmap:team-b/rules/metrics.yaml', forged, 'team-b').join('\n'),
      /destinations\.warnings\.metric\.labels\.namespace: a team's metrics always carry namespace="team-b"/,
    );
    const inTeamA = (id: string) =>
      withEvent(podEvent, (body, headers) => {
        headers['ce-id'] = `ce-${id}`;
        body.metadata = { ...body.metadata, uid: `uid-${id}`, namespace: 'team-a' };
        body.involvedObject = { ...body.involvedObject, namespace: 'team-a' };
      });
    await post(inTeamA('team-1'));
    await post(podEvent); // a Warning in shop: not the team's
    assert.deepEqual(samples(await metricsText(), `${USER}team_warnings_total`), [
      { labels: { reason: 'BackOff', namespace: 'team-a' }, value: 1 },
    ]);
    running.service.store.remove('configmap:team-a/rules/metrics.yaml');
    running.service.store.remove('configmap:team-b/rules/metrics.yaml');
  });

  it('removing the document unregisters its metrics and their series', async () => {
    await rm(join(running.rulesDir, 'event-metrics.yaml'));
    await running.service.rules.reload();
    const text = await metricsText();
    assert.doesNotMatch(text, /kube_event_rules_user_/);
    assert.match(text, /^kube_event_rules_rules_loaded 0$/m);
  });
});
