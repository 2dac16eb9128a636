/**
 * Rules from ConfigMaps through the real @kubernetes/client-node against the fake API server:
 * hot reload, last-good retention, Warning Events, team scope, Secret isolation, watch faults.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { after, before, beforeEach, describe, it } from 'node:test';
import { loadConfig } from '../../src/config.js';
import { startCaptureSink, type CaptureSink } from '../support/capture-sink.js';
import { startFakeKubeApi, type FakeKubeApi } from '../support/fake-kube-api.js';
import { loadFixture, withEvent } from '../support/fixtures.js';
import { OWN_NAMESPACE, connectionTo, ruleConfigMap, secret, waitUntil } from '../support/kube-fixtures.js';
import { needs } from '../support/needs.js';
import { startService, type RunningService } from '../support/running-service.js';

const rule = (name: string, sinkUrl: string, reason = 'BackOff', extra = '') => `
destinations:
  hook:
    url: ${sinkUrl}/${name}
    headers:
      Authorization: { secretKeyRef: { name: hook-token, key: token }, prefix: "Bearer " }
rules:
  - name: ${name}
    conditions:
      all:
        - { fact: event, path: $.reason, operator: equal, value: ${reason} }${extra}
    actions:
      - destination: hook
        body: '{ "rule": $rule.name, "ns": involvedObject.namespace }'
`;

/** A BackOff event about a pod in `namespace`. */
const backoff = (namespace: string, n: number) =>
  withEvent(loadFixture('pod-backoff-crashloop-resource-update'), (body, headers) => {
    body.metadata.uid = `backoff-${namespace}-${n}`;
    body.metadata.namespace = namespace;
    body.involvedObject.namespace = namespace;
    headers['ce-id'] = `ce-${namespace}-${n}`;
  });

describe('rules from ConfigMaps', () => {
  let fake: FakeKubeApi;
  let sink: CaptureSink;
  let svc: RunningService;
  let n = 0;

  before(async () => {
    fake = await startFakeKubeApi();
    sink = await startCaptureSink();
    fake.apply(secret(OWN_NAMESPACE, 'hook-token', { token: 'cluster-token' }));
    fake.apply(secret('team-a', 'hook-token', { token: 'team-a-token' }));
    fake.apply(ruleConfigMap(OWN_NAMESPACE, 'platform-rules', { 'backoff.yaml': rule('platform-backoff', sink.url) }));
    fake.apply(ruleConfigMap('team-a', 'team-a-rules', { 'backoff.yaml': rule('team-a-backoff', sink.url) }));
    fake.apply(
      ruleConfigMap('team-b', 'unlabelled', { 'backoff.yaml': rule('ignored', sink.url) }, { app: 'other' } as never),
    );
    svc = await startService({
      kube: connectionTo(fake),
      config: { kube: { ...loadConfig({}).kube, secretTtlMs: 200, relistAfterMs: 60_000 } },
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

  it('loads labelled ConfigMaps from every namespace, and nothing else', async () => {
    const names = svc.service.store.current.rules.map((r) => r.name).sort();
    assert.deepEqual(names, ['platform-backoff', 'team-a/team-a-backoff']);
    await fake.waitForWatchers(1);
    assert.equal(fake.count('GET', /^\/api\/v1\/configmaps$/), 2, 'one list (labelSelector) + one watch');
    assert.ok(
      fake.requests.every(
        (r) => !r.path.includes('configmaps') || r.query.get('labelSelector') === 'kube-event-rules/rules=true',
      ),
    );
  });

  it('scopes team rules to their namespace; cluster rules see every event', async () => {
    assert.equal((await svc.post(backoff('shop', ++n))).status, 204);
    assert.deepEqual(
      sink.requests.map((r) => r.path),
      ['/platform-backoff'],
    );
    sink.requests.length = 0;
    assert.equal((await svc.post(backoff('team-a', ++n))).status, 204);
    assert.deepEqual(sink.requests.map((r) => r.path).sort(), ['/platform-backoff', '/team-a-backoff']);
  });

  it("reads Secrets in the rule owner's namespace: the cluster rule gets the cluster Secret, the team rule its own", async () => {
    await svc.post(backoff('team-a', ++n));
    const byPath = Object.fromEntries(sink.requests.map((r) => [r.path, r.headers.authorization]));
    assert.equal(byPath['/platform-backoff'], 'Bearer cluster-token');
    assert.equal(byPath['/team-a-backoff'], 'Bearer team-a-token');
  });

  it("a team cannot read another namespace's Secret", async () => {
    fake.apply(ruleConfigMap('team-c', 'team-c-rules', { 'r.yaml': rule('team-c-backoff', sink.url) }));
    await waitUntil('team-c rule loaded', () =>
      svc.service.store.current.rules.some((r) => r.name === 'team-c/team-c-backoff'),
    );
    await svc.post(backoff('team-c', ++n));
    assert.equal(sink.received('/team-c-backoff').length, 0);
    const failure = svc.logs.find(
      (l) => l.rule === 'team-c/team-c-backoff' && String(l.msg).startsWith('action not rendered'),
    );
    assert.match(String(failure?.error), /Secret team-c\/hook-token not found/);
    // Not found in its own namespace: redelivered (it may be created there), never read from another.
    assert.equal(
      await svc.metric('kube_event_rules_deliveries_total', { rule: 'team-c/team-c-backoff', outcome: 'failed' }),
      1,
    );
    fake.remove('v1', 'ConfigMap', 'team-c', 'team-c-rules');
    await waitUntil(
      'team-c rule removed',
      () => !svc.service.store.current.rules.some((r) => r.name === 'team-c/team-c-backoff'),
    );
  });

  it('hot-reloads within 2 s: add, edit, break (last good kept, Warning Event, /status, metric), fix, delete', async () => {
    fake.apply(ruleConfigMap(OWN_NAMESPACE, 'reload', { 'r.yaml': rule('reloaded', sink.url) }));
    const added = await waitUntil('added', () => svc.service.store.current.rules.some((r) => r.name === 'reloaded'));
    assert.ok(added < 2000);

    fake.apply(ruleConfigMap(OWN_NAMESPACE, 'reload', { 'r.yaml': rule('reloaded', sink.url, 'OOMKilling') }));
    await waitUntil('edited', () =>
      svc.service.store.current.rules.some(
        (r) => r.name === 'reloaded' && JSON.stringify(r.conditions).includes('OOMKilling'),
      ),
    );

    fake.apply(
      ruleConfigMap(OWN_NAMESPACE, 'reload', {
        'r.yaml': rule('reloaded', sink.url, 'OOMKilling').replace('operator: equal', 'operator: equalz'),
      }),
    );
    await waitUntil('Warning Event recorded', () =>
      fake.list('v1', 'Event').some((e) => (e.involvedObject as any)?.name === 'reload'),
    );
    const warning = fake.list('v1', 'Event').find((e) => (e.involvedObject as any)?.name === 'reload')!;
    assert.equal(warning.type, 'Warning');
    assert.equal(warning.reason, 'InvalidRules');
    assert.match(String(warning.message), /r\.yaml.*unknown operator "equalz"/);
    assert.ok(
      svc.service.store.current.rules.some(
        (r) => r.name === 'reloaded' && JSON.stringify(r.conditions).includes('OOMKilling'),
      ),
      'last good version in force',
    );
    const status = (await (await fetch(`${svc.url}/status`)).json()) as {
      sources: { source: string; errors: string[] }[];
    };
    assert.match(
      status.sources.find((s) => s.source === `configmap:${OWN_NAMESPACE}/reload/r.yaml`)!.errors[0],
      /equalz/,
    );
    assert.equal(
      await svc.metric('kube_event_rules_rule_load_errors', { source: `configmap:${OWN_NAMESPACE}/reload/r.yaml` }),
      1,
    );

    // The same error again (e.g. an unrelated label change) does not flood: still one Event.
    fake.apply({
      ...ruleConfigMap(OWN_NAMESPACE, 'reload', {
        'r.yaml': rule('reloaded', sink.url, 'OOMKilling').replace('operator: equal', 'operator: equalz'),
      }),
      metadata: {
        name: 'reload',
        namespace: OWN_NAMESPACE,
        labels: { 'kube-event-rules/rules': 'true', touched: 'yes' },
      },
    });
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(fake.list('v1', 'Event').filter((e) => (e.involvedObject as any)?.name === 'reload').length, 1);

    fake.apply(ruleConfigMap(OWN_NAMESPACE, 'reload', { 'r.yaml': rule('reloaded', sink.url) }));
    await waitUntil(
      'fixed',
      async () =>
        (await svc.metric('kube_event_rules_rule_load_errors', {
          source: `configmap:${OWN_NAMESPACE}/reload/r.yaml`,
        })) === 0,
    );

    fake.remove('v1', 'ConfigMap', OWN_NAMESPACE, 'reload');
    const removed = await waitUntil(
      'deleted',
      () => !svc.service.store.current.rules.some((r) => r.name === 'reloaded'),
    );
    assert.ok(removed < 2000);
  });

  it('an alias bomb or an oversized key in a ConfigMap is a rejected document of that key: /status, metric, Warning Event; the others load', async () => {
    const bomb = [
      'a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]',
      ...'bcdefgh'.split('').map((k, i) => `${k}: &${k} [${Array(9).fill(`*${'abcdefgh'[i]}`).join(', ')}]`),
    ].join('\n');
    fake.apply(
      ruleConfigMap(OWN_NAMESPACE, 'hostile', {
        'bomb.yaml': bomb,
        'huge.yaml': `# ${'x'.repeat(1024 * 1024)}`,
        'good.yaml': rule('beside-the-bomb', sink.url),
      }),
    );
    await waitUntil('Warning Event for the bomb', () =>
      fake
        .list('v1', 'Event')
        .some((e) => (e.involvedObject as any)?.name === 'hostile' && /bomb\.yaml/.test(String(e.message))),
    );
    const warnings = fake
      .list('v1', 'Event')
      .filter((e) => (e.involvedObject as any)?.name === 'hostile')
      .map((e) => String(e.message));
    assert.ok(
      warnings.some((m) => /bomb\.yaml.*alias/.test(m)),
      warnings.join(' | '),
    );
    await waitUntil('Warning Event for the oversized key', () =>
      fake
        .list('v1', 'Event')
        .some(
          (e) => (e.involvedObject as any)?.name === 'hostile' && /huge\.yaml.*over the limit/.test(String(e.message)),
        ),
    );
    const status = (await (await fetch(`${svc.url}/status`)).json()) as {
      sources: { source: string; errors: string[] }[];
    };
    assert.match(
      status.sources.find((s) => s.source === `configmap:${OWN_NAMESPACE}/hostile/bomb.yaml`)!.errors[0],
      /more than 100 alias expansions/,
    );
    assert.equal(
      await svc.metric('kube_event_rules_rule_load_errors', { source: `configmap:${OWN_NAMESPACE}/hostile/bomb.yaml` }),
      1,
    );
    assert.equal(
      await svc.metric('kube_event_rules_rule_load_errors', { source: `configmap:${OWN_NAMESPACE}/hostile/huge.yaml` }),
      1,
    );
    await waitUntil('the good key loaded', () =>
      svc.service.store.current.rules.some((r) => r.name === 'beside-the-bomb'),
    );
    assert.ok(!svc.logs.some((l) => l.msg === 'informer handler failed'), 'no handler failure');
    fake.remove('v1', 'ConfigMap', OWN_NAMESPACE, 'hostile');
    await waitUntil('removed', () => !svc.service.store.current.rules.some((r) => r.name === 'beside-the-bomb'));
  });

  it('picks up a rotated Secret without a restart', async () => {
    fake.apply(secret(OWN_NAMESPACE, 'hook-token', { token: 'rotated-token' }));
    await new Promise((r) => setTimeout(r, 300)); // SECRET_CACHE_SECONDS is 0.2 s here
    await svc.post(backoff('shop', ++n));
    assert.equal(sink.received('/platform-backoff')[0].headers.authorization, 'Bearer rotated-token');
  });

  it('survives watch faults: clean end, in-stream 410, HTTP 410, socket reset, 403 — and keeps the rules and readiness', async () => {
    const cases: [string, () => void][] = [
      ['clean end', () => fake.endWatches()],
      ['in-stream 410', () => fake.expireWatches()],
      ['HTTP 410 on the next watch', () => (fake.fail('GET', /configmaps\?.*watch=true/, 410), fake.endWatches())],
      ['socket reset', () => fake.resetWatches()],
      ['403 on the relist', () => (fake.fail('GET', /\/api\/v1\/configmaps/, 403), fake.resetWatches())],
    ];
    for (const [name, fault] of cases) {
      await fake.waitForWatchers(1, 5000);
      fault();
      assert.equal((await fetch(`${svc.url}/readyz`)).status, 200, `${name}: still ready`);
      assert.ok(
        svc.service.store.current.rules.some((r) => r.name === 'platform-backoff'),
        `${name}: rules kept`,
      );
      const cm = `after-${name.replace(/\W+/g, '-')}`;
      fake.apply(ruleConfigMap(OWN_NAMESPACE, cm, { 'r.yaml': rule(cm, sink.url) }));
      await waitUntil(
        `${name}: a change after the fault arrives`,
        () => svc.service.store.current.rules.some((r) => r.name === cm),
        8000,
      );
    }
    assert.ok((await svc.metric('kube_event_rules_informer_restarts_total')) >= 2, 'restarts counted');
  });

  it('real kubectl sees what the tests change (fidelity of the fake)', { skip: needs('kubectl') }, async () => {
    const kubeconfig = await fake.kubeconfigFile();
    const listed = await new Promise<string>((resolve) =>
      execFile(
        'kubectl',
        ['--kubeconfig', kubeconfig, 'get', 'configmaps', '-A', '-l', 'kube-event-rules/rules=true', '-o', 'name'],
        (_e, out, err) => resolve(out + err),
      ),
    );
    assert.match(listed, /configmap\/platform-rules/);
    assert.match(listed, /configmap\/team-a-rules/);
    assert.doesNotMatch(listed, /unlabelled/);
    const watch = spawn('kubectl', [
      '--kubeconfig',
      kubeconfig,
      'get',
      'configmaps',
      '-n',
      OWN_NAMESPACE,
      '-w',
      '-o',
      'name',
    ]);
    let seen = '';
    watch.stdout.on('data', (d: Buffer) => (seen += d.toString()));
    await waitUntil('kubectl watch listed', () => seen.includes('platform-rules'), 5000);
    fake.apply(ruleConfigMap(OWN_NAMESPACE, 'seen-by-kubectl', { 'r.yaml': rule('seen-by-kubectl', sink.url) }));
    await waitUntil('kubectl watch saw the new ConfigMap', () => seen.includes('configmap/seen-by-kubectl'), 5000);
    watch.kill();
    const described = await new Promise<string>((resolve) =>
      execFile(
        'kubectl',
        ['--kubeconfig', kubeconfig, 'get', 'events', '-n', OWN_NAMESPACE, '-o', 'jsonpath={.items[*].reason}'],
        (_e, out, err) => resolve(out + err),
      ),
    );
    assert.match(described, /InvalidRules/, 'the Warning Event written by the service is visible to kubectl');
  });
});
