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

/** A rule document: one rule on BackOff events, sending to `url` with an optional header and body. */
const backoffRule = (name: string, url: string, { header = '', body = `'{ "rule": $rule.name, "ns": involvedObject.namespace }'` } = {}) => `
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

const hpaEvent = () =>
  withEvent(loadFixture('hpa-successful-rescale-up-resource-add'), (body, headers) => {
    n++;
    body.metadata.uid = `hpa-${n}`;
    body.involvedObject.name = 'checkout';
    headers['ce-id'] = `ce-hpa-${n}`;
  });

describe('tenancy: a hostile team in a namespace that sorts first', () => {
  let fake: FakeKubeApi;
  let sink: CaptureSink;
  let svc: RunningService;

  /** applyAttack puts one attack document into the attacker's ConfigMap and waits until it was judged. */
  async function applyAttack(key: string, text: string): Promise<void> {
    const source = `configmap:${ATTACKER}/team-rules/${key}`;
    fake.apply(ruleConfigMap(ATTACKER, 'team-rules', { ...((fake.get('v1', 'ConfigMap', ATTACKER, 'team-rules')?.data as Record<string, string>) ?? {}), [key]: text }));
    await waitUntil(`${source} judged`, () => svc.service.store.status().some((s) => s.source === source));
  }

  /** refusedOnOffender: the attacker's source has the error in /status, the metric, the log and a Warning Event. */
  async function refusedOnOffender(key: string, why: RegExp): Promise<void> {
    const source = `configmap:${ATTACKER}/team-rules/${key}`;
    const status = (await (await fetch(`${svc.url}/status`)).json()) as { sources: { source: string; errors: string[] }[] };
    const errors = status.sources.find((s) => s.source === source)?.errors ?? [];
    assert.ok(errors.some((e) => why.test(e)), `/status of ${source}: ${errors.join(' | ')}`);
    assert.equal(await svc.metric('kube_event_rules_rule_load_errors', { source }), 1, 'rule_load_errors of the offender');
    assert.ok(svc.logs.some((l) => l.source === source && why.test(String(l.problem))), 'a log line names the offender');
    await waitUntil('Warning Event on the offender', () =>
      fake.list('v1', 'Event').some((e) => (e.involvedObject as KubeObject['metadata'])?.name === 'team-rules' && e.metadata.namespace === ATTACKER && why.test(String(e.message))),
    );
    for (const victim of ['platform', 'team-b-rules']) {
      assert.ok(!fake.list('v1', 'Event').some((e) => (e.involvedObject as KubeObject['metadata'])?.name === victim), `no Warning Event on the victim ${victim}`);
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
    fake.apply(secret('shop', 'wavefront-hpe', {
      url: `${sink.url}/api/v2/event`,
      headers: '{"Authorization":"Bearer wavefront-api-token"}',
      body: '{"name":"HPA Scaling","details":"_message_"}',
    }));
    fake.apply({ apiVersion: 'autoscaling/v2', kind: 'HorizontalPodAutoscaler', metadata: { name: 'checkout', namespace: 'shop', annotations: { 'hpa-event': 'shop/wavefront-hpe' } } });
    fake.apply(ruleConfigMap('team-b', 'team-b-rules', { 'backoff.yaml': backoffRule('team-b-backoff', `${sink.url}/team-b`) }));
    svc = await startService({
      rules: { 'hpa-sender-compat.yaml': HPA_SENDER_RULES, 'platform.yaml': backoffRule('platform-backoff', `${sink.url}/platform`) },
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
    await refusedOnOffender('shadow-platform.yaml', /rule "platform-backoff" has the name of a cluster rule \(file:platform\.yaml\); a team's rule cannot replace it/);
    await applyAttack('shadow-hpa.yaml', HPA_SENDER_RULES);
    await refusedOnOffender('shadow-hpa.yaml', /rule "hpa-sender-compat" has the name of a cluster rule \(file:hpa-sender-compat\.yaml\)/);
    await stillFiring();
    assert.equal(sink.received('/attacker').length, 0);
  });

  it('1. a rule named like another team\'s rule is the attacker\'s own rule: it never sees the other team\'s events', async () => {
    await applyAttack('shadow-team-b.yaml', backoffRule('team-b-backoff', `${sink.url}/attacker`));
    assert.ok(svc.service.store.current.rules.some((r) => r.name === `${ATTACKER}/team-b-backoff`), 'in force under its own identity');
    await stillFiring();
    assert.equal(sink.received('/attacker').length, 0);
    assert.ok((await svc.metric('kube_event_rules_rule_matches_total', { rule: 'team-b/team-b-backoff' })) >= 1, 'team-b\'s series is its own');
    assert.equal(await svc.metric('kube_event_rules_rule_matches_total', { rule: `${ATTACKER}/team-b-backoff` }), 0);
  });
});
