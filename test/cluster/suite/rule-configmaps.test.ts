/**
 * Against a real kube-apiserver, with the service on a token of its own ServiceAccount and deploy/'s RBAC:
 * rule ConfigMaps created, edited and broken with kubectl are reloaded, a broken one gets a Warning Event
 * that kubectl shows, the RBAC is enough and no more (no Secret outside its namespace), and a restart of
 * the API server loses no edit.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { waitUntil } from '../../support/kube-fixtures.js';
import { startCluster, type TestCluster } from '../support/cluster.js';
import { accessOf } from '../support/deploy.js';
import { startServiceProcess, type ServiceProcess } from '../support/service-process.js';

const OWN = 'kube-event-rules';
const TEAM = 'team-a';

function ruleConfigMap(name: string, rules: { name: string; operator?: string }[]): string {
  const document = [
    'destinations: { hook: { url: "http://127.0.0.1:9/hook" } }',
    'rules:',
    ...rules.map(
      (r) =>
        `  - { name: ${r.name}, conditions: { all: [ { fact: event, path: $.reason, operator: ${r.operator ?? 'equal'}, value: BackOff } ] }, actions: [ { destination: hook } ] }`,
    ),
  ].join('\n');
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name, namespace: TEAM, labels: { 'kube-event-rules/rules': 'true' } },
    data: { 'rules.yaml': document },
  });
}

describe('rule ConfigMaps on a real API server, service on its own ServiceAccount', () => {
  let cluster: TestCluster;
  let service: ServiceProcess;
  let serviceKubeconfig: string;
  const rulesOf = async (configMap: string) =>
    (await service.status()).sources.find((s) => s.source === `configmap:${TEAM}/${configMap}/rules.yaml`);
  /** A team's rules are named after their namespace. */
  const teamRules = (...names: string[]) => names.map((name) => `${TEAM}/${name}`).join();

  before(async () => {
    cluster = await startCluster();
    // The default variant's access objects: the service's ServiceAccount, ClusterRole and Secrets Role.
    cluster.kubectl(['apply', '-f', '-'], { input: accessOf('deploy') });
    cluster.kubectl(['create', 'namespace', TEAM]);
    serviceKubeconfig = await cluster.serviceAccountKubeconfig(OWN, 'kube-event-rules');
    service = await startServiceProcess({ KUBECONFIG: serviceKubeconfig, POD_NAMESPACE: OWN });
  });

  after(async () => {
    await service?.stop();
    await cluster?.destroy();
  });

  it('runs as system:serviceaccount:kube-event-rules:kube-event-rules, not as an admin', async () => {
    const who = JSON.parse(cluster.kubectl(['auth', 'whoami', '-o', 'json'], { kubeconfig: serviceKubeconfig })) as {
      status: { userInfo: { username: string } };
    };
    assert.equal(who.status.userInfo.username, `system:serviceaccount:${OWN}:kube-event-rules`);
    assert.match(
      (await service.status()).cluster,
      new RegExp(`^Kubernetes API ${cluster.server.replace(/[.]/g, '\\.')} \\(kubeconfig`),
    );
  });

  it('a ConfigMap created with kubectl is loaded; an edit replaces its rules', async () => {
    cluster.kubectl(['apply', '-f', '-'], { input: ruleConfigMap('team-rules', [{ name: 'team-a-backoff' }]) });
    await waitUntil(
      'team-a-backoff is loaded',
      async () => (await rulesOf('team-rules'))?.rules.join() === teamRules('team-a-backoff'),
      30_000,
    );

    cluster.kubectl(['apply', '-f', '-'], {
      input: ruleConfigMap('team-rules', [{ name: 'team-a-backoff' }, { name: 'team-a-backoff-2' }]),
    });
    await waitUntil(
      'the edit is loaded',
      async () => (await rulesOf('team-rules'))?.rules.join() === teamRules('team-a-backoff', 'team-a-backoff-2'),
      30_000,
    );
    assert.deepEqual((await rulesOf('team-rules'))?.errors, []);
  });

  it('a broken edit keeps the last good rules and is reported as a Warning Event kubectl shows', async () => {
    cluster.kubectl(['apply', '-f', '-'], {
      input: ruleConfigMap('team-rules', [{ name: 'team-a-backoff', operator: 'equalz' }]),
    });
    await waitUntil(
      'the error is in /status',
      async () => ((await rulesOf('team-rules'))?.errors.length ?? 0) > 0,
      30_000,
    );
    const status = await rulesOf('team-rules');
    assert.equal(
      status?.rules.join(),
      teamRules('team-a-backoff', 'team-a-backoff-2'),
      'the last good version stays in force',
    );
    assert.match(status.errors.join('\n'), /equalz/);

    let events: { items: Record<string, any>[] } = { items: [] };
    await waitUntil(
      'a Warning InvalidRules Event on the ConfigMap',
      () => {
        events = JSON.parse(
          cluster.kubectl(['get', 'events', '-n', TEAM, '--field-selector', 'reason=InvalidRules', '-o', 'json']),
        ) as typeof events;
        return events.items.length > 0;
      },
      30_000,
    );
    assert.equal(events.items.length, 1, 'once per distinct error');
    const [event] = events.items;
    assert.equal(event.type, 'Warning');
    assert.deepEqual(
      [event.involvedObject.kind, event.involvedObject.namespace, event.involvedObject.name],
      ['ConfigMap', TEAM, 'team-rules'],
    );
    assert.match(event.message, /equalz/);
    // What an operator types: the Event shows in kubectl's table and in describe.
    assert.match(cluster.kubectl(['get', 'events', '-n', TEAM]), /Warning\s+InvalidRules\s+configmap\/team-rules/);
    assert.match(cluster.kubectl(['describe', 'configmap', 'team-rules', '-n', TEAM]), /Warning\s+InvalidRules/);
  });

  it('the RBAC is minimal: no Secret outside its own namespace, no writes to ConfigMaps, no listing Pods', () => {
    cluster.kubectl(['create', 'secret', 'generic', 'db', '-n', TEAM, '--from-literal=password=hunter2']);
    cluster.kubectl(['create', 'secret', 'generic', 'webhook', '-n', OWN, '--from-literal=url=http://127.0.0.1:9/']);
    const asService = (args: string[]) => cluster.tryKubectl(args, { kubeconfig: serviceKubeconfig });

    const foreign = asService(['get', 'secret', 'db', '-n', TEAM, '-o', 'json']);
    assert.notEqual(foreign.status, 0);
    assert.match(foreign.stderr, /Forbidden.*cannot get resource "secrets".*in the namespace "team-a"/);
    assert.doesNotMatch(foreign.stdout + foreign.stderr, /hunter2|aHVudGVyMg/);

    assert.equal(
      asService(['get', 'secret', 'webhook', '-n', OWN, '-o', 'name']).stdout.trim(),
      'secret/webhook',
      'its own namespace: allowed',
    );
    for (const [verb, resource, namespace] of [
      ['list', 'secrets', OWN],
      ['get', 'secrets', 'default'],
      ['update', 'configmaps', TEAM],
      ['delete', 'configmaps', TEAM],
      ['list', 'pods', TEAM],
      ['create', 'pods', TEAM],
      ['delete', 'events', TEAM],
    ]) {
      const answer = asService(['auth', 'can-i', verb, resource, '-n', namespace]);
      assert.equal(answer.stdout.trim(), 'no', `${verb} ${resource} in ${namespace}`);
    }
    for (const [verb, resource] of [
      ['watch', 'configmaps'],
      ['create', 'events'],
      ['get', 'horizontalpodautoscalers.autoscaling'],
      ['get', 'pods'],
    ]) {
      assert.equal(
        asService(['auth', 'can-i', verb, resource, '-n', TEAM]).stdout.trim(),
        'yes',
        `${verb} ${resource}`,
      );
    }
  });

  it('the API server restarted: rules stay in force while it is down, the informer resumes, no edit is lost', async () => {
    cluster.kubectl(['apply', '-f', '-'], { input: ruleConfigMap('team-rules', [{ name: 'before-restart' }]) });
    await waitUntil(
      'before-restart is loaded',
      async () => (await rulesOf('team-rules'))?.rules.join() === teamRules('before-restart'),
      30_000,
    );
    const restartsBefore = await service.metric('kube_event_rules_informer_restarts_total');

    await cluster.stop();
    assert.equal((await fetch(`${service.url}/readyz`)).status, 200, 'still ready with the API server gone');
    assert.equal((await rulesOf('team-rules'))?.rules.join(), teamRules('before-restart'));
    await cluster.start();

    // Edits right after the restart, before the service's watch is back: it must still see all of them.
    cluster.kubectl(['apply', '-f', '-'], { input: ruleConfigMap('team-rules', [{ name: 'after-restart' }]) });
    cluster.kubectl(['apply', '-f', '-'], { input: ruleConfigMap('second-rules', [{ name: 'second-after-restart' }]) });
    await waitUntil(
      'both edits are loaded',
      async () =>
        (await rulesOf('team-rules'))?.rules.join() === teamRules('after-restart') &&
        (await rulesOf('second-rules'))?.rules.join() === teamRules('second-after-restart'),
      120_000,
    );
    assert.ok(
      (await service.metric('kube_event_rules_informer_restarts_total')) > restartsBefore,
      'the informer was restarted, not left dead',
    );

    cluster.kubectl(['delete', 'configmap', 'second-rules', '-n', TEAM]);
    await waitUntil('the deletion is seen', async () => (await rulesOf('second-rules')) === undefined, 30_000);
  });
});
