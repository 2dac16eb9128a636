/**
 * `kube-event-rules test --objects` and `--cluster`: rules that read the involved object, its owner and
 * its namespace are tested without a cluster (manifests), or against one through the kubeconfig (read-only).
 */
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { parse } from 'yaml';
import { describe as describeResult, runTests, testCommand, type TestOptions } from '../../src/cli/test-rules.js';
import { EXAMPLES_DIR } from '../support/fixtures.js';
import { startFakeKubeApi, type FakeKubeApi, type KubeObject } from '../support/fake-kube-api.js';

const EVENT = join(EXAMPLES_DIR, 'pod-backoff-crashloop-resource-update.json');

/**
 * A crash loop in a prod namespace: the payload names the team, the container's last exit reason and the Deployment.
 */
const RULES = `
destinations:
  out: { kind: log }
rules:
  - name: prod-crashloop
    conditions:
      all:
        - { fact: event, path: $.reason, operator: equal, value: BackOff }
        - { fact: namespace, path: $.labels.tier, operator: equal, value: prod }
    actions:
      - destination: out
        body: |
          {
            "team": $namespace.labels.team,
            "lastReason": $object.status.containerStatuses[name = "payment"].lastState.terminated.reason,
            "deployment": $owner.metadata.name
          }
`;

/** As \`kubectl get ns shop -o yaml\` and \`kubectl get pod,rs,deploy -n shop -o yaml\` print them. */
const NAMESPACE = `
apiVersion: v1
kind: Namespace
metadata:
  name: shop
  labels: { team: payments, tier: prod, kubernetes.io/metadata.name: shop }
`;
const WORKLOAD = `
apiVersion: v1
kind: List
items:
- apiVersion: v1
  kind: Pod
  metadata:
    name: payment-5c7d9b8f6-2m4rt
    namespace: shop
    creationTimestamp: "2024-05-14T08:50:00Z"
    ownerReferences:
    - { apiVersion: apps/v1, kind: ReplicaSet, name: payment-5c7d9b8f6, controller: true, uid: 1b5e }
  status:
    containerStatuses:
    - name: payment
      restartCount: 4
      lastState:
        terminated: { reason: OOMKilled, exitCode: 137, finishedAt: "2024-05-14T09:09:30Z" }
- apiVersion: apps/v1
  kind: ReplicaSet
  metadata:
    name: payment-5c7d9b8f6
    namespace: shop
    ownerReferences:
    - { apiVersion: apps/v1, kind: Deployment, name: payment, controller: true, uid: 9c3a }
- apiVersion: apps/v1
  kind: Deployment
  metadata: { name: payment, namespace: shop }
`;

let dir: string;
const path = (name: string) => join(dir, name);
const options = (extra: Partial<TestOptions>): TestOptions => ({
  rules: [path('rules.yaml')],
  secrets: [],
  objects: [],
  cluster: false,
  events: [EVENT],
  json: false,
  updateExpect: false,
  ...extra,
});

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'ker-objects-'));
  await writeFile(path('rules.yaml'), RULES);
  await writeFile(path('namespace.yaml'), NAMESPACE);
  await writeFile(path('workload.yaml'), WORKLOAD);
});

describe('kube-event-rules test --objects', () => {
  it('supplies the namespace labels, $object and $owner from manifests', async () => {
    const { results } = await runTests(
      options({ objects: [path('namespace.yaml'), path('workload.yaml')] }),
      async () => '',
    );
    const [result] = results;
    assert.ok('outcome' in result);
    assert.deepEqual(result.matched, ['prod-crashloop']);
    const decided = result.evaluated![0].conditions.find((c) => c.fact === 'namespace')!;
    assert.equal(decided.factValue, 'prod');
    assert.deepEqual(result.actions[0].request!.body, {
      team: 'payments',
      lastReason: 'OOMKilled',
      deployment: 'payment',
    });
  });

  it('without them the namespace fact is null and the rule does not match (what the author saw before)', async () => {
    const { results } = await runTests(options({}), async () => '');
    const [result] = results;
    assert.ok('outcome' in result);
    assert.deepEqual(result.matched, []);
    assert.equal(result.evaluated![0].conditions.find((c) => c.fact === 'namespace')!.factValue, null);
  });

  it('a namespace labelled otherwise does not match', async () => {
    await writeFile(path('staging.yaml'), NAMESPACE.replace('tier: prod', 'tier: staging'));
    const { results } = await runTests(
      options({ objects: [path('staging.yaml'), path('workload.yaml')] }),
      async () => '',
    );
    assert.ok('outcome' in results[0]);
    assert.deepEqual(results[0].matched, []);
  });

  it('a manifest that is not an object, or a missing file, is one line naming it', async () => {
    await writeFile(path('broken.yaml'), 'kind: Pod\nmetadata: {}\n');
    const lines: string[] = [];
    await assert.rejects(
      testCommand(
        ['--rules', path('rules.yaml'), '--objects', path('broken.yaml'), EVENT],
        (l) => lines.push(l),
        async () => '',
      ),
      /broken\.yaml \(document 1\): an object needs kind and metadata\.name/,
    );
    await assert.rejects(
      testCommand(
        ['--rules', path('rules.yaml'), '--objects', path('nope.yaml'), EVENT],
        (l) => lines.push(l),
        async () => '',
      ),
      /--objects .*nope\.yaml: no such file/,
    );
  });
});

describe('kube-event-rules test --cluster', () => {
  let fake: FakeKubeApi;
  let saved: string | undefined;
  before(async () => {
    fake = await startFakeKubeApi();
    fake.apply(parse(NAMESPACE) as KubeObject);
    for (const item of (parse(WORKLOAD) as { items: KubeObject[] }).items) fake.apply(item);
    saved = process.env.KUBECONFIG;
    process.env.KUBECONFIG = await fake.kubeconfigFile();
  });
  after(async () => {
    if (saved === undefined) delete process.env.KUBECONFIG;
    else process.env.KUBECONFIG = saved;
    await fake.close();
  });

  it('looks the objects up through the kubeconfig, read-only', async () => {
    const { results } = await runTests(options({ cluster: true }), async () => '');
    assert.ok('outcome' in results[0]);
    assert.deepEqual(results[0].actions[0].request!.body, {
      team: 'payments',
      lastReason: 'OOMKilled',
      deployment: 'payment',
    });
    assert.ok(fake.requests.length > 0);
    assert.deepEqual(
      fake.requests.filter((r) => r.method !== 'GET'),
      [],
    );
  });

  it('a lookup the API fails (500) is reported as not decided now or a failed action, never as "no match"', async () => {
    fake.fail('GET', /\/namespaces\/shop$/, 500, 1); // read by a condition
    const [undecided] = (await runTests(options({ cluster: true }), async () => '')).results;
    assert.ok('outcome' in undecided);
    assert.equal(undecided.outcome, 'retry');
    assert.match(describeResult(undecided), /not decided now .*API server answered 500/);
    fake.fail('GET', /\/pods\//, 500, 1); // read by the template only
    const [failed] = (await runTests(options({ cluster: true }), async () => '')).results;
    assert.ok('outcome' in failed);
    assert.equal(failed.actions[0].outcome, 'failed');
    assert.match(describeResult(failed), /✗ .*API server answered 500/);
  });

  it('--objects wins over the cluster for the objects it names', async () => {
    await writeFile(path('staging.yaml'), NAMESPACE.replace('tier: prod', 'tier: staging'));
    const { results } = await runTests(options({ cluster: true, objects: [path('staging.yaml')] }), async () => '');
    assert.ok('outcome' in results[0]);
    assert.deepEqual(results[0].matched, []);
  });
});
