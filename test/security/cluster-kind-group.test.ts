/**
 * TEAM_CLUSTER_KINDS was matched on the kind alone: any cluster-scoped custom resource whose kind is `Node`
 * or `Namespace` (in another API group) was readable by every team through $object. The list is
 * group-qualified now (`Node` is core v1 Node; `Widget.example.io` names another group's kind).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../src/config.js';
import { startCaptureSink, type CaptureSink } from '../support/capture-sink.js';
import { startFakeKubeApi, type FakeKubeApi } from '../support/fake-kube-api.js';
import { loadFixture, withEvent } from '../support/fixtures.js';
import { connectionTo, ruleConfigMap, waitUntil } from '../support/kube-fixtures.js';
import { startService, type RunningService } from '../support/running-service.js';

describe('TEAM_CLUSTER_KINDS names group and kind', () => {
  let fake: FakeKubeApi;
  let sink: CaptureSink;
  let svc: RunningService;
  const lookUp = async (id: string, involvedObject: Record<string, string>) => {
    await svc.post(
      withEvent(loadFixture('pod-backoff-crashloop-resource-update'), (body, headers) => {
        body.metadata.namespace = 'aaa';
        body.metadata.uid = id;
        body.involvedObject = involvedObject;
        headers['ce-id'] = id;
        headers['ce-namespace'] = 'aaa';
      }),
    );
    return sink.received('/read').at(-1)?.body ?? '';
  };

  before(async () => {
    fake = await startFakeKubeApi({
      extraResources: [
        { group: 'vault.example.io', version: 'v1', plural: 'nodes', kind: 'Node', namespaced: false },
        { group: 'vault.example.io', version: 'v1', plural: 'namespaces', kind: 'Namespace', namespaced: false },
      ],
    });
    sink = await startCaptureSink();
    fake.apply({
      apiVersion: 'vault.example.io/v1',
      kind: 'Node',
      metadata: { name: 'vault-0', annotations: { unsealKey: 'UNSEAL-KEY-0123456789' } },
    });
    fake.apply({
      apiVersion: 'vault.example.io/v1',
      kind: 'Namespace',
      metadata: { name: 'aaa', annotations: { unsealKey: 'UNSEAL-KEY-NAMESPACE' } },
    });
    fake.apply({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'worker-1', labels: { zone: 'zone-a' } } });
    const defaults = loadConfig({});
    svc = await startService({
      kube: connectionTo(fake),
      config: { kube: { ...defaults.kube, relistAfterMs: 60_000 } },
    });
    fake.apply(
      ruleConfigMap('aaa', 'reader', {
        'r.yaml': `
destinations:
  hook: { url: ${sink.url}/read }
rules:
  - name: reader
    conditions: { all: [ { fact: event, path: $.reason, operator: equal, value: BackOff } ] }
    actions: [ { destination: hook, body: '{"object": $object}' } ]
`,
      }),
    );
    await waitUntil('loaded', () => svc.service.store.current.rules.some((r) => r.name === 'aaa/reader'));
  });
  after(async () => {
    await svc.stop();
    await sink.close();
    await fake.close();
  });

  it('a team cannot read a cluster-scoped custom resource of kind Node or Namespace in another group', async () => {
    const node = await lookUp('g1', { apiVersion: 'vault.example.io/v1', kind: 'Node', name: 'vault-0' });
    assert.ok(node !== '' && !node.includes('UNSEAL-KEY'), `team read a CR of another group: ${node.slice(0, 300)}`);
    const namespace = await lookUp('g2', { apiVersion: 'vault.example.io/v1', kind: 'Namespace', name: 'aaa' });
    assert.ok(
      namespace !== '' && !namespace.includes('UNSEAL-KEY'),
      `team read a CR named like its Namespace: ${namespace.slice(0, 300)}`,
    );
  });

  it('control: the core v1 Node is read', async () => {
    const node = await lookUp('g3', { apiVersion: 'v1', kind: 'Node', name: 'worker-1' });
    assert.match(node, /zone-a/);
  });
});
