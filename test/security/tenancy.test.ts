/**
 * Adversarial tenancy suite: a hostile team owns one labelled ConfigMap in its namespace `aaa` (which
 * sorts before every other namespace and before `file:`) and tries every attack on the rules side of
 * the trust boundary. Each attack is refused with a clear message on the offender (log, /status, metric,
 * Warning Event on its ConfigMap), and the platform's rules, another team's rules and the bundled
 * hpa-sender-compat rule keep firing. Real service, real client-node against the fake API, real sinks.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, beforeEach, describe, it } from 'node:test';
import { loadConfig } from '../../src/config.js';
import { startCaptureSink, type CaptureSink } from '../support/capture-sink.js';
import { startFakeKubeApi, type FakeKubeApi, type KubeObject } from '../support/fake-kube-api.js';
import { loadFixture, withEvent } from '../support/fixtures.js';
import { OWN_NAMESPACE, connectionTo, ruleConfigMap, secret, waitUntil } from '../support/kube-fixtures.js';
import { startService, type RunningService } from '../support/running-service.js';

const HPA_SENDER_RULES = readFileSync(new URL('../../rules/hpa-sender-compat.yaml', import.meta.url), 'utf8');
const ATTACKER = 'aaa';
/** A value that must reach no attacker: in the service's env, its Secrets, objects of other namespaces. */
const SERVICE_SECRET = 'service-secret-7f3a';

/** A rule document: one rule on BackOff events, sending to `url` with an optional header and body. */
const backoffRule = (
  name: string,
  url: string,
  { header = '', body = `'{ "rule": $rule.name, "ns": involvedObject.namespace }'` } = {},
) => `
destinations:
  hook:
    url: ${url}${header ? `\n    headers:\n      X-Stolen: ${header}` : ''}
rules:
  - name: ${name}
    conditions:
      all:
        - { fact: event, path: $.reason, operator: equal, value: BackOff }
    actions:
      - destination: hook
        body: ${body}
`;

let n = 0;
/** A BackOff event about a pod in `namespace`; `edit` shapes the rest (hostile pod creators can). */
const backoff = (namespace: string, edit: (body: Record<string, any>) => void = () => undefined) =>
  withEvent(loadFixture('pod-backoff-crashloop-resource-update'), (body, headers) => {
    n++;
    body.metadata.uid = `backoff-${namespace}-${n}`;
    body.metadata.namespace = namespace;
    body.involvedObject.namespace = namespace;
    headers['ce-id'] = `ce-${namespace}-${n}`;
    edit(body);
  });

const hpaEvent = (namespace = 'shop', name = 'checkout') =>
  withEvent(loadFixture('hpa-successful-rescale-up-resource-add'), (body, headers) => {
    n++;
    body.metadata.uid = `hpa-${n}`;
    body.metadata.namespace = namespace;
    body.involvedObject.name = name;
    body.involvedObject.namespace = namespace;
    headers['ce-id'] = `ce-hpa-${n}`;
    headers['ce-namespace'] = namespace;
  });

/** An event in the attacker's namespace about `involved` (an Event's involvedObject is whatever its creator wrote). */
const aboutObject = (involved: Record<string, unknown>) =>
  backoff(ATTACKER, (body) => {
    body.involvedObject = involved;
  });

/** Reads everything enrichment gives a rule and sends it to the sink. */
const READ_ALL = `'{ "object": $object, "owner": $owner, "namespace": $namespace }'`;

describe('tenancy: a hostile team in a namespace that sorts first', () => {
  let fake: FakeKubeApi;
  let sink: CaptureSink;
  let svc: RunningService;

  /** applyAttack puts one attack document into the attacker's ConfigMap and waits until it was judged. */
  async function applyAttack(key: string, text: string): Promise<void> {
    const source = `configmap:${ATTACKER}/team-rules/${key}`;
    fake.apply(
      ruleConfigMap(ATTACKER, 'team-rules', {
        ...((fake.get('v1', 'ConfigMap', ATTACKER, 'team-rules')?.data as Record<string, string>) ?? {}),
        [key]: text,
      }),
    );
    await waitUntil(`${source} judged`, () => svc.service.store.status().some((s) => s.source === source));
  }

  /** refusedOnOffender: the attacker's source has the error in /status, the metric, the log and a Warning Event. */
  async function refusedOnOffender(key: string, why: RegExp): Promise<void> {
    const source = `configmap:${ATTACKER}/team-rules/${key}`;
    const status = (await (await fetch(`${svc.url}/status`)).json()) as {
      sources: { source: string; errors: string[] }[];
    };
    const errors = status.sources.find((s) => s.source === source)?.errors ?? [];
    assert.ok(
      errors.some((e) => why.test(e)),
      `/status of ${source}: ${errors.join(' | ')}`,
    );
    assert.equal(
      await svc.metric('kube_event_rules_rule_load_errors', { source }),
      1,
      'rule_load_errors of the offender',
    );
    assert.ok(
      svc.logs.some((l) => l.source === source && why.test(String(l.problem))),
      'a log line names the offender',
    );
    await waitUntil('Warning Event on the offender', () =>
      fake
        .list('v1', 'Event')
        .some(
          (e) =>
            (e.involvedObject as KubeObject['metadata'])?.name === 'team-rules' &&
            e.metadata.namespace === ATTACKER &&
            why.test(String(e.message)),
        ),
    );
    for (const victim of ['platform', 'team-b-rules']) {
      assert.ok(
        !fake.list('v1', 'Event').some((e) => (e.involvedObject as KubeObject['metadata'])?.name === victim),
        `no Warning Event on the victim ${victim}`,
      );
    }
  }

  /** stillFiring: the platform's rule, team-b's rule and the bundled hpa-sender rule deliver as before. */
  async function stillFiring(): Promise<void> {
    sink.requests.length = 0;
    assert.equal((await svc.post(backoff('team-b'))).status, 204);
    assert.equal((await svc.post(hpaEvent())).status, 204);
    assert.deepEqual(sink.requests.map((r) => r.path).sort(), ['/api/v2/event', '/platform', '/team-b']);
    assert.equal(sink.received('/api/v2/event')[0].headers.authorization, 'Bearer wavefront-api-token');
    sink.requests.length = 0;
  }

  before(async () => {
    fake = await startFakeKubeApi();
    sink = await startCaptureSink();
    fake.apply(
      secret('shop', 'wavefront-hpe', {
        url: `${sink.url}/api/v2/event`,
        headers: '{"Authorization":"Bearer wavefront-api-token"}',
        body: '{"name":"HPA Scaling","details":"_message_"}',
      }),
    );
    fake.apply({
      apiVersion: 'autoscaling/v2',
      kind: 'HorizontalPodAutoscaler',
      metadata: { name: 'checkout', namespace: 'shop', annotations: { 'hpa-event': 'shop/wavefront-hpe' } },
    });
    fake.apply(
      ruleConfigMap('team-b', 'team-b-rules', { 'backoff.yaml': backoffRule('team-b-backoff', `${sink.url}/team-b`) }),
    );
    svc = await startService({
      rules: {
        'hpa-sender-compat.yaml': HPA_SENDER_RULES,
        'platform.yaml': backoffRule('platform-backoff', `${sink.url}/platform`),
      },
      kube: connectionTo(fake),
      config: { kube: { ...loadConfig({}).kube, relistAfterMs: 60_000 } },
    });
    await stillFiring();
  });
  after(async () => {
    await svc.stop();
    await sink.close();
    await fake.close();
  });
  beforeEach(() => {
    sink.requests.length = 0;
  });

  it('1. shadowing a platform rule or the bundled hpa-sender-compat rule is refused on the offender', async () => {
    await applyAttack('shadow-platform.yaml', backoffRule('platform-backoff', `${sink.url}/attacker`));
    await refusedOnOffender(
      'shadow-platform.yaml',
      /rule "platform-backoff" has the name of a cluster rule \(file:platform\.yaml\); a team's rule cannot replace it/,
    );
    await applyAttack('shadow-hpa.yaml', HPA_SENDER_RULES);
    await refusedOnOffender(
      'shadow-hpa.yaml',
      /rule "hpa-sender-compat" has the name of a cluster rule \(file:hpa-sender-compat\.yaml\)/,
    );
    await stillFiring();
    assert.equal(sink.received('/attacker').length, 0);
  });

  it("1. a rule named like another team's rule is the attacker's own rule: it never sees the other team's events", async () => {
    await applyAttack('shadow-team-b.yaml', backoffRule('team-b-backoff', `${sink.url}/attacker`));
    assert.ok(
      svc.service.store.current.rules.some((r) => r.name === `${ATTACKER}/team-b-backoff`),
      'in force under its own identity',
    );
    await stillFiring();
    assert.equal(sink.received('/attacker').length, 0);
    assert.ok(
      (await svc.metric('kube_event_rules_rule_matches_total', { rule: 'team-b/team-b-backoff' })) >= 1,
      "team-b's series is its own",
    );
    assert.equal(await svc.metric('kube_event_rules_rule_matches_total', { rule: `${ATTACKER}/team-b-backoff` }), 0);
    assert.ok(
      (await svc.metric('kube_event_rules_delivery_attempts_total', { destination: 'team-b/hook' })) >= 1,
      "a team's destination series is its own",
    );
    assert.equal(
      (await svc.metric('kube_event_rules_delivery_attempts_total', { destination: 'hook' })) > 0,
      true,
      'the platform\'s "hook" is another series',
    );
  });

  it("4. quotas: a document, a rule's actions or a template over the limit is refused on the offender", async () => {
    const base = backoffRule('quota', `${sink.url}/quota`);
    await applyAttack('huge.yaml', `${base}\n# ${'x'.repeat(70_000)}\n`);
    await refusedOnOffender(
      'huge.yaml',
      /the document has \d+ bytes; a team's rule document may have at most 65536 \(TEAM_MAX_DOCUMENT_BYTES\)/,
    );
    await applyAttack(
      'actions.yaml',
      base.replace(/ {6}- destination: hook\n {8}body: .*\n/, (action) => action.repeat(6)),
    );
    await refusedOnOffender(
      'actions.yaml',
      /rules\[0\] \(quota\)\.actions: 6 actions; a team's rule may have at most 5 \(TEAM_MAX_ACTIONS_PER_RULE\)/,
    );
    await applyAttack(
      'template.yaml',
      backoffRule('quota', `${sink.url}/quota`, { body: `'{ "pad": "${'y'.repeat(5000)}" }'` }),
    );
    await refusedOnOffender(
      'template.yaml',
      /rules\[0\] \(quota\)\.actions\[0\]\.body: the expression has \d+ bytes; a team's may have at most 4096 \(TEAM_MAX_TEMPLATE_BYTES\)/,
    );
    await stillFiring();
  });
});

describe('tenancy: what a team document may read', () => {
  let fake: FakeKubeApi;
  let sink: CaptureSink;
  let svc: RunningService;
  const status = async (source: string) =>
    (
      (await (await fetch(`${svc.url}/status`)).json()) as { sources: { source: string; errors: string[] }[] }
    ).sources.find((s) => s.source === source)?.errors ?? [];
  const load = async (key: string, text: string) => {
    fake.apply(ruleConfigMap(ATTACKER, `read-${key}`, { 'r.yaml': text }));
    await waitUntil(`${key} judged`, () =>
      svc.service.store.status().some((s) => s.source === `configmap:${ATTACKER}/read-${key}/r.yaml`),
    );
    return status(`configmap:${ATTACKER}/read-${key}/r.yaml`);
  };
  /** The attacker's reading rule, on BackOff events of its namespace, sending what it read to /read. */
  const reader = () => backoffRule('reader', `${sink.url}/read`, { body: READ_ALL });

  before(async () => {
    fake = await startFakeKubeApi();
    sink = await startCaptureSink();
    fake.apply(secret(OWN_NAMESPACE, 'service-token', { token: SERVICE_SECRET }));
    fake.apply(secret(ATTACKER, 'own-token', { token: 'own-value' }));
    fake.apply({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'service-pod', namespace: OWN_NAMESPACE, annotations: { token: SERVICE_SECRET } },
    });
    fake.apply({ apiVersion: 'v1', kind: 'Pod', metadata: { name: 'own-pod', namespace: ATTACKER } });
    fake.apply({ apiVersion: 'v1', kind: 'Node', metadata: { name: 'node-1', labels: { zone: 'a' } } });
    for (const ns of [ATTACKER, 'team-b', OWN_NAMESPACE])
      fake.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns, labels: { owner: ns } } });
    fake.apply(
      secret('shop', 'wavefront-hpe', {
        url: `${sink.url}/api/v2/event`,
        headers: '{"Authorization":"Bearer wavefront-api-token"}',
        body: '{"details":"_message_"}',
      }),
    );
    fake.apply(secret(ATTACKER, 'own-hook', { url: `${sink.url}/own-hpa`, body: '{"details":"_message_"}' }));
    fake.apply({
      apiVersion: 'autoscaling/v2',
      kind: 'HorizontalPodAutoscaler',
      metadata: { name: 'stealer', namespace: ATTACKER, annotations: { 'hpa-event': 'shop/wavefront-hpe' } },
    });
    fake.apply({
      apiVersion: 'autoscaling/v2',
      kind: 'HorizontalPodAutoscaler',
      metadata: { name: 'own', namespace: ATTACKER, annotations: { 'hpa-event': `${ATTACKER}/own-hook` } },
    });
    fake.apply(ruleConfigMap(ATTACKER, 'read-base', { 'r.yaml': reader() }));
    const defaults = loadConfig({});
    svc = await startService({
      rules: {
        'hpa-sender-compat.yaml': HPA_SENDER_RULES,
        'platform.yaml': backoffRule('platform-reader', `${sink.url}/platform`, { body: READ_ALL }),
      },
      kube: connectionTo(fake),
      env: { REDIS_URL: `redis://:${SERVICE_SECRET}@redis:6379`, CLUSTER_DISPLAY_NAME: 'prod-eu' },
      config: {
        kube: { ...defaults.kube, relistAfterMs: 60_000 },
        hpaSenderSecretNamespaces: ['shop'],
        tenancy: { ...defaults.tenancy, envAllowlist: ['CLUSTER_DISPLAY_NAME'], clusterKinds: ['Node'] },
      },
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

  it('2. { env } is refused at load unless TEAM_ENV_ALLOWLIST names the variable', async () => {
    const errors = await load('env', backoffRule('env-thief', `${sink.url}/read`, { header: '{ env: REDIS_URL }' }));
    assert.ok(
      errors.some((e) =>
        /destinations\.hook\.headers\.X-Stolen: \{ env: REDIS_URL \} is not allowed in a team's rules: they cannot read the service's environment \(allowed by TEAM_ENV_ALLOWLIST: CLUSTER_DISPLAY_NAME\)/.test(
          e,
        ),
      ),
      errors.join(' | '),
    );
    assert.ok(!svc.service.store.current.rules.some((r) => r.name === `${ATTACKER}/env-thief`));
    assert.deepEqual(
      await load('env-ok', backoffRule('env-ok', `${sink.url}/env-ok`, { header: '{ env: CLUSTER_DISPLAY_NAME }' })),
      [],
    );
    await svc.post(backoff(ATTACKER));
    assert.equal(sink.received('/env-ok')[0]?.headers['x-stolen'], 'prod-eu', 'an allowlisted variable is read');
    assert.ok(!JSON.stringify(sink.requests.map((r) => [r.headers, r.body])).includes(SERVICE_SECRET));
  });

  it("2. secretKeyRef reads the team's own namespace only, and a name that is not a Secret name is refused at load", async () => {
    const errors = await load(
      'secret-path',
      backoffRule('path-thief', `${sink.url}/read`, {
        header: '{ secretKeyRef: { name: "../../observability/secrets/service-token", key: token } }',
      }),
    );
    assert.ok(
      errors.some((e) =>
        /secretKeyRef name "\.\.\/\.\.\/observability\/secrets\/service-token" is not a Secret name/.test(e),
      ),
      errors.join(' | '),
    );
    assert.deepEqual(
      await load(
        'secret-other',
        backoffRule('secret-thief', `${sink.url}/secret-thief`, {
          header: '{ secretKeyRef: { name: service-token, key: token } }',
        }),
      ),
      [],
    );
    await svc.post(backoff(ATTACKER));
    assert.equal(sink.received('/secret-thief').length, 0);
    assert.ok(
      svc.logs.some(
        (l) => l.rule === `${ATTACKER}/secret-thief` && /Secret aaa\/service-token not found/.test(String(l.error)),
      ),
      'read in its own namespace, where it does not exist',
    );
  });

  it('3. $object of a Secret is never fetched, for a team or the cluster', async () => {
    const targets = /\/namespaces\/aaa\/secrets\/own-token$|\/namespaces\/observability\/secrets\/service-token$/;
    const before = fake.count('GET', targets);
    await svc.post(aboutObject({ apiVersion: 'v1', kind: 'Secret', name: 'own-token', namespace: ATTACKER }));
    await svc.post(
      backoff(
        'shop',
        (body) =>
          (body.involvedObject = { apiVersion: 'v1', kind: 'Secret', name: 'service-token', namespace: OWN_NAMESPACE }),
      ),
    );
    assert.equal((sink.received('/read')[0].json() as { object: unknown }).object, null);
    assert.equal((sink.received('/platform').at(-1)!.json() as { object: unknown }).object, null);
    assert.equal(fake.count('GET', targets), before, 'no Secret GET');
    assert.ok((await svc.metric('kube_event_rules_kube_requests_total', { kind: 'Secret', outcome: 'refused' })) >= 2);
  });

  it("3. an involvedObject without a namespace is never looked up in the service's namespace", async () => {
    const before = fake.count('GET', /\/namespaces\/observability\/pods\//);
    const event = withEvent(
      aboutObject({ apiVersion: 'v1', kind: 'Pod', name: 'service-pod' }),
      (_body, headers) => (headers['ce-namespace'] = ATTACKER),
    );
    await svc.post(event);
    const read = sink.received('/read')[0].json() as { object: unknown; namespace: { name: string } };
    assert.equal(read.object, null);
    assert.equal(read.namespace.name, ATTACKER, 'its own namespace fact still works');
    assert.equal(fake.count('GET', /\/namespaces\/observability\/pods\//), before);
    assert.ok(!JSON.stringify(sink.requests.map((r) => r.body)).includes(SERVICE_SECRET));
  });

  it("3. an owner reference in the team's namespace to a cluster-scoped kind outside TEAM_CLUSTER_KINDS is absent", async () => {
    fake.apply({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: 'owned',
        namespace: ATTACKER,
        ownerReferences: [{ apiVersion: 'v1', kind: 'Namespace', name: 'team-b', uid: 'u', controller: true }],
      },
    });
    await svc.post(aboutObject({ apiVersion: 'v1', kind: 'Pod', name: 'owned', namespace: ATTACKER }));
    const read = sink.received('/read')[0].json() as { object: { metadata: { name: string } }; owner: unknown };
    assert.equal(read.object.metadata.name, 'owned');
    assert.equal(read.owner, null, "team-b's Namespace is not the team's to read");
    assert.equal(
      (sink.received('/platform').at(-1)!.json() as { owner: { metadata: { name: string } } }).owner.metadata.name,
      'team-b',
      'a cluster rule reads it',
    );
  });

  it("3. a forged Event in the team's namespace about another namespace's object reaches no team", async () => {
    fake.apply(
      ruleConfigMap('team-b', 'team-b-rules', { 'r.yaml': backoffRule('team-b-reader', `${sink.url}/team-b`) }),
    );
    await waitUntil('team-b rule loaded', () =>
      svc.service.store.current.rules.some((r) => r.name === 'team-b/team-b-reader'),
    );
    await svc.post(
      backoff(
        ATTACKER,
        (body) => (body.involvedObject = { apiVersion: 'v1', kind: 'Pod', name: 'x', namespace: 'team-b' }),
      ),
    );
    assert.equal(sink.received('/team-b').length, 0);
    assert.equal(sink.received('/read').length, 0);
    assert.equal(sink.received('/platform').length, 1, 'cluster rules see every event');
    await svc.post(backoff('team-b'));
    assert.equal(sink.received('/team-b').length, 1, "team-b's rule fires for its own events");
  });

  it('3. a team reads its own objects and allowlisted cluster-scoped kinds, nothing else', async () => {
    await svc.post(aboutObject({ apiVersion: 'v1', kind: 'Pod', name: 'own-pod', namespace: ATTACKER }));
    await svc.post(
      withEvent(
        aboutObject({ apiVersion: 'v1', kind: 'Node', name: 'node-1' }),
        (_b, h) => (h['ce-namespace'] = ATTACKER),
      ),
    );
    await svc.post(
      withEvent(
        aboutObject({ apiVersion: 'v1', kind: 'Namespace', name: 'team-b' }),
        (_b, h) => (h['ce-namespace'] = ATTACKER),
      ),
    );
    const objects = sink
      .received('/read')
      .map((r) => (r.json() as { object: { metadata: { name: string } } | null }).object?.metadata.name ?? null);
    assert.deepEqual(objects, ['own-pod', 'node-1', null], 'Namespace is not in TEAM_CLUSTER_KINDS here');
    assert.equal(
      (sink.received('/platform').at(-1)!.json() as { object: { metadata: { name: string } } }).object.metadata.name,
      'team-b',
      'the cluster rule reads it',
    );
  });

  it('7. made-up kinds: counted as "other", and no discovery request once their apiVersion was listed', async () => {
    await svc.post(
      backoff(
        'shop',
        (body) => (body.involvedObject = { apiVersion: 'v1', kind: 'Pod', name: 'x', namespace: 'shop' }),
      ),
    );
    const listings = () => fake.count('GET', /^\/api\/v1$/);
    const madeUp = () => fake.count('GET', /^\/apis\/evil\.example\/v1$/);
    const [v1Before, madeUpBefore] = [listings(), madeUp()];
    for (let i = 0; i < 30; i++) {
      await svc.post(
        backoff(
          'shop',
          (body) => (body.involvedObject = { apiVersion: 'v1', kind: `Kind${i}`, name: 'x', namespace: 'shop' }),
        ),
      );
      await svc.post(
        backoff(
          'shop',
          (body) =>
            (body.involvedObject = { apiVersion: 'evil.example/v1', kind: `Kind${i}`, name: 'x', namespace: 'shop' }),
        ),
      );
    }
    assert.equal(listings() - v1Before, 0, 'v1 was listed once, before');
    assert.equal(madeUp() - madeUpBefore, 1, 'an unknown apiVersion is listed once, and remembered');
    const metrics = await (await fetch(`${svc.url}/metrics`)).text();
    assert.doesNotMatch(metrics, /kind="Kind\d+"/);
    assert.ok((await svc.metric('kube_event_rules_kube_requests_total', { kind: 'other', outcome: 'refused' })) >= 60);
  });

  it('2. hpa-sender annotations are honoured for a team only inside its namespace', async () => {
    const team = HPA_SENDER_RULES.replace('name: hpa-sender-compat', 'name: my-hpa');
    assert.deepEqual(await load('hpa', team), []);
    await svc.post(hpaEvent(ATTACKER, 'stealer'));
    assert.ok(
      svc.logs.some(
        (l) =>
          l.rule === `${ATTACKER}/my-hpa` &&
          /points at Secret shop\/wavefront-hpe outside the HPA's namespace/.test(String(l.error)),
      ),
      'the team copy refuses',
    );
    assert.equal(
      sink.received('/api/v2/event').length,
      1,
      "the cluster rule, allowed shop by HPA_SENDER_SECRET_NAMESPACES, sends to the Secret's own URL",
    );
    await svc.post(hpaEvent(ATTACKER, 'own'));
    assert.equal(
      sink.received('/own-hpa').length,
      2,
      'its own Secret: the team copy and the cluster rule both serve it',
    );
  });
});

describe('tenancy: where a team document may send', () => {
  let fake: FakeKubeApi;
  let sink: CaptureSink;
  let svc: RunningService;
  /** The sink under another name: a host outside DESTINATION_HOSTS_* (set to 127.0.0.1 here). */
  let elsewhere: string;
  const load = async (key: string, text: string) => {
    const source = `configmap:${ATTACKER}/send-${key}/r.yaml`;
    fake.apply(ruleConfigMap(ATTACKER, `send-${key}`, { 'r.yaml': text }));
    await waitUntil(`${key} judged`, () => svc.service.store.status().some((s) => s.source === source));
    return svc.service.store.status().find((s) => s.source === source)!.errors;
  };
  const named = (name: string) => backoff(ATTACKER, (body) => (body.involvedObject.name = name));

  before(async () => {
    fake = await startFakeKubeApi();
    sink = await startCaptureSink();
    elsewhere = sink.url.replace('127.0.0.1', 'localhost');
    fake.apply(secret(ATTACKER, 'exfil', { url: `${elsewhere}/exfil` }));
    const defaults = loadConfig({});
    svc = await startService({
      rules: {
        'hpa-sender-compat.yaml': HPA_SENDER_RULES,
        'platform.yaml': backoffRule('platform-backoff', `${sink.url}/platform`),
        'relay.yaml': backoffRule('relay', '{ jsonata: \'message & "/relay"\' }').replace(
          'value: BackOff',
          'value: Relay',
        ),
      },
      kube: connectionTo(fake),
      config: {
        kube: { ...defaults.kube, relistAfterMs: 60_000 },
        tenancy: { ...defaults.tenancy, destinationHosts: { cluster: ['127.0.0.1'], team: ['127.0.0.1'] } },
      },
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

  it('7. interpolated values are percent-encoded: "../../admin?x#" reaches no other path', async () => {
    assert.deepEqual(
      await load(
        'encode',
        backoffRule('encoded', `{ jsonata: '"${sink.url}/team/" & involvedObject.name & "/events"' }`),
      ),
      [],
    );
    await svc.post(named('../../admin?x#'));
    const teamPaths = () => sink.requests.map((r) => r.path).filter((path) => path !== '/platform');
    assert.deepEqual(teamPaths(), ['/team/..%2F..%2Fadmin%3Fx%23/events']);
    sink.requests.length = 0;
    await svc.post(named('..'));
    assert.deepEqual(teamPaths(), []);
    assert.ok(
      svc.logs.some(
        (l) =>
          l.rule === `${ATTACKER}/encoded` &&
          /has a "\." or "\.\." path segment, which would send it to another path/.test(String(l.error)),
      ),
    );
    assert.equal(
      await svc.metric('kube_event_rules_deliveries_total', { rule: `${ATTACKER}/encoded`, outcome: 'error' }),
      1,
    );
  });

  it('7. a team cannot let event data choose the scheme or host: refused at load', async () => {
    const errors = await load(
      'host',
      backoffRule('host-thief', `{ jsonata: '"http://" & involvedObject.name & "/x"' }`),
    );
    assert.ok(
      errors.some((e) =>
        /destinations\.hook\.url: a team's URL template must start with a literal scheme and host/.test(e),
      ),
      errors.join(' | '),
    );
  });

  it('7. a literal host outside DESTINATION_HOSTS_TEAM is refused at load; a host only known at render, at render', async () => {
    const errors = await load('literal', backoffRule('literal-thief', `${elsewhere}/exfil`));
    assert.ok(
      errors.some((e) =>
        /destinations\.hook\.url: ".*\/exfil" goes to host localhost:\d+, which a team's rules \(namespace aaa\) may not send to \(DESTINATION_HOSTS_TEAM: 127\.0\.0\.1\)/.test(
          e,
        ),
      ),
      errors.join(' | '),
    );
    assert.deepEqual(
      await load('secret-url', backoffRule('secret-url', '{ secretKeyRef: { name: exfil, key: url } }')),
      [],
    );
    assert.equal((await svc.post(backoff(ATTACKER))).status, 204, 'a permanent error: acknowledged, not retried');
    assert.equal(sink.received('/exfil').length, 0);
    assert.ok(
      svc.logs.some(
        (l) =>
          l.rule === `${ATTACKER}/secret-url` &&
          /destination aaa\/hook: the URL goes to host localhost:\d+, which a team's rules \(namespace aaa\) may not send to/.test(
            String(l.error),
          ),
      ),
    );
    assert.equal(
      await svc.metric('kube_event_rules_deliveries_total', { rule: `${ATTACKER}/secret-url`, outcome: 'error' }),
      1,
    );
  });

  it('7. a cluster rule may template the host, within DESTINATION_HOSTS_CLUSTER', async () => {
    const relay = (target: string) => backoff('shop', (body) => ((body.reason = 'Relay'), (body.message = target)));
    await svc.post(relay(sink.url));
    assert.equal(sink.received('/relay').length, 1);
    await svc.post(relay(elsewhere));
    assert.equal(sink.received('/relay').length, 1);
    assert.ok(
      svc.logs.some(
        (l) =>
          l.rule === 'relay' &&
          /goes to host localhost:\d+, which cluster rules may not send to \(DESTINATION_HOSTS_CLUSTER: 127\.0\.0\.1\)/.test(
            String(l.error),
          ),
      ),
    );
    await svc.post(backoff('team-b'));
    assert.equal(sink.received('/platform').length, 1, 'the platform rule keeps firing');
  });
});
