/**
 * Shadow rules on live traffic: a rule marked shadow runs beside its live twin (same name), never sends,
 * and a difference — matched by one of them only, or a different request — is reported within the event
 * that shows it (metric, /status, log), and in dry runs.
 */
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { testCommand } from '../../src/cli/test-rules.js';
import { loadConfig } from '../../src/config.js';
import { startFakeKubeApi, type FakeKubeApi } from '../support/fake-kube-api.js';
import { OWN_NAMESPACE, connectionTo, ruleConfigMap, waitUntil } from '../support/kube-fixtures.js';
import { EXAMPLES_DIR } from '../support/fixtures.js';
import { startCaptureSink, type CaptureSink } from '../support/capture-sink.js';
import { loadFixture, withEvent } from '../support/fixtures.js';
import { startService, type RunningService } from '../support/running-service.js';

const BACKOFF = loadFixture('pod-backoff-crashloop-resource-update.json');
const HPA = loadFixture('hpa-successful-rescale-up-resource-add.json');
const repeat = (count: number) =>
  withEvent(BACKOFF, (event, headers) => {
    event.count = count;
    event.metadata.resourceVersion = String(48212644 + count);
    headers['ce-id'] = `backoff-${count}`;
  });

const live = (url: string) => `destinations:
  hook: { url: "${url}/hook" }
rules:
  - name: crash-loops
    conditions:
      all:
        - { fact: event, path: $.reason, operator: equal, value: BackOff }
    actions:
      - destination: hook
        body: '{ "text": message }'
`;

/** The same rule with a new text, and a rule that has no live twin yet. */
const shadow = (url: string, extraCondition = '') => `shadow: true
destinations:
  hook: { url: "${url}/hook" }
rules:
  - name: crash-loops
    conditions:
      all:
        - { fact: event, path: $.reason, operator: equal, value: BackOff }${extraCondition}
    actions:
      - destination: hook
        body: '{ "text": "Pod " & involvedObject.name & ": " & message }'
  - name: rescales
    conditions:
      all:
        - { fact: event, path: $.reason, operator: equal, value: SuccessfulRescale }
    actions:
      - destination: hook
        body: '{ "text": message }'
`;

interface ShadowStatus {
  rules: { rule: string; twin: boolean; evaluated: number; matched: number; differed: number }[];
  lastDifferences: { rule: string; event: string; differences: string[] }[];
}

describe('shadow rules', () => {
  let sink: CaptureSink;
  let svc: RunningService;
  const status = async () =>
    (await (await fetch(`${svc.url}/status`)).json()) as {
      shadow: ShadowStatus;
      sources: { source: string; errors: string[] }[];
    };

  before(async () => {
    sink = await startCaptureSink();
    svc = await startService({ rules: { 'live.yaml': live(sink.url), 'shadow.yaml': shadow(sink.url) } });
  });
  after(async () => {
    await svc.stop();
    await sink.close();
  });

  it('load beside their live twin: the same name is not a clash', async () => {
    const { shadow: report, sources } = await status();
    assert.deepEqual(
      sources.flatMap((s) => s.errors),
      [],
    );
    assert.deepEqual(
      report.rules.map((r) => [r.rule, r.twin]),
      [
        ['crash-loops', true],
        ['rescales', false],
      ],
    );
  });

  it('a different request is reported within the one event, and only the live rule sends', async () => {
    assert.equal((await svc.post(repeat(7))).status, 204);
    assert.equal(sink.received('/hook').length, 1);
    assert.deepEqual(sink.received('/hook')[0].json(), { text: (BACKOFF.body as { message: string }).message });
    assert.equal(
      await svc.metric('kube_event_rules_shadow_differences_total', { rule: 'crash-loops', kind: 'request' }),
      1,
    );
    assert.equal(await svc.metric('kube_event_rules_shadow_matches_total', { rule: 'crash-loops' }), 1);
    const { shadow: report } = await status();
    assert.equal(report.lastDifferences.length, 1);
    assert.equal(report.lastDifferences[0].event, 'backoff-7');
    assert.match(
      report.lastDifferences[0].differences[0],
      /^action 0 \(hook\): body\.text: "Pod payment-5c7d9b8f6-2m4rt: Back-off restarting failed container payment.* instead of "Back-off restarting failed container payment/,
    );
    assert.ok(svc.logs.some((l) => l.msg === 'shadow rule differs from its live rule' && l.rule === 'crash-loops'));
  });

  it('a new rule with no twin reports its matches and sends nothing', async () => {
    assert.equal((await svc.post(HPA)).status, 204);
    assert.equal(sink.received('/hook').length, 1, 'still only the live delivery');
    assert.equal(await svc.metric('kube_event_rules_shadow_matches_total', { rule: 'rescales' }), 1);
    const rescales = (await status()).shadow.rules.find((r) => r.rule === 'rescales')!;
    assert.deepEqual([rescales.matched, rescales.differed], [1, 0]);
  });

  it('matched by the live rule only is a difference too', async () => {
    await svc.writeRules(
      'shadow.yaml',
      shadow(sink.url, '\n        - { fact: event, path: $.type, operator: equal, value: Normal }'),
    );
    assert.equal((await svc.post(repeat(8))).status, 204);
    assert.equal(sink.received('/hook').length, 2);
    assert.equal(
      await svc.metric('kube_event_rules_shadow_differences_total', { rule: 'crash-loops', kind: 'only_live' }),
      1,
    );
    assert.deepEqual((await status()).shadow.lastDifferences[0].differences, ['matched by the live rule only']);
  });

  it('a dry run carries the comparison, and marks the shadow rule among the evaluated', async () => {
    const next = repeat(9);
    const response = await fetch(`${svc.url}/dry-run`, {
      method: 'POST',
      headers: next.headers,
      body: JSON.stringify(next.body),
    });
    const { events } = (await response.json()) as {
      events: {
        matched: string[];
        shadow: unknown[];
        evaluated: { rule: string; shadow?: boolean; matched: boolean }[];
      }[];
    };
    assert.deepEqual(events[0].matched, ['crash-loops']);
    assert.deepEqual(events[0].shadow, [
      { rule: 'crash-loops', matched: false, live: 'matched', differences: ['matched by the live rule only'] },
    ]);
    assert.deepEqual(events[0].evaluated.map((e) => [e.rule, e.shadow ?? false, e.matched]).sort(), [
      ['crash-loops', false, true],
      ['crash-loops', true, false],
    ]);
  });
});

describe('shadow rules in kube-event-rules test', () => {
  it('prints the shadow twin beside the live one and each difference', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ker-shadow-'));
    const rules = join(dir, 'rules.yaml');
    await writeFile(
      rules,
      `${live('https://hooks.example.com')}  - name: crash-loops
    shadow: true
    conditions:
      all:
        - { fact: event, path: $.reason, operator: equal, value: BackOff }
    actions:
      - destination: hook
        body: '{ "text": reason }'
`,
    );
    const lines: string[] = [];
    assert.equal(
      await testCommand(
        ['--rules', rules, join(EXAMPLES_DIR, 'pod-backoff-crashloop-resource-update.json')],
        (l) => lines.push(l),
        async () => '',
      ),
      0,
    );
    const text = lines.join('\n');
    assert.match(text, /✓ rule crash-loops \(shadow, never sends\) matched/);
    assert.match(
      text,
      /◐ shadow crash-loops: matched, live rule matched\n {6}≠ action 0 \(hook\): body\.text: "BackOff" instead of "Back-off restarting/,
    );
    assert.equal(text.match(/→ hook/g)?.length, 1, "one request: the live rule's");
  });
});

describe('a ConfigMap labelled kube-event-rules/shadow=true holds shadow rules', () => {
  let fake: FakeKubeApi;
  let sink: CaptureSink;
  let svc: RunningService;
  before(async () => {
    sink = await startCaptureSink();
    fake = await startFakeKubeApi();
    fake.apply(ruleConfigMap(OWN_NAMESPACE, 'live', { 'rules.yaml': live(sink.url) }));
    // The same document text as the live one but a new body, marked by the label only.
    fake.apply(
      ruleConfigMap(
        OWN_NAMESPACE,
        'candidate',
        { 'rules.yaml': live(sink.url).replace(`'{ "text": message }'`, `'{ "text": reason }'`) },
        { 'kube-event-rules/rules': 'true', 'kube-event-rules/shadow': 'true' } as never,
      ),
    );
    svc = await startService({
      kube: connectionTo(fake),
      config: { kube: { ...loadConfig({}).kube, relistAfterMs: 60_000 } },
    });
    await waitUntil(
      'both ConfigMaps loaded',
      async () =>
        ((await (await fetch(`${svc.url}/status`)).json()) as { shadow: ShadowStatus }).shadow.rules.length === 1,
      5000,
    );
  });
  after(async () => {
    await svc.stop();
    await fake.close();
    await sink.close();
  });

  it('runs it beside the live rule: one delivery (the live one) and the difference reported', async () => {
    assert.equal((await svc.post(repeat(11))).status, 204);
    assert.equal(sink.received('/hook').length, 1);
    assert.deepEqual(sink.received('/hook')[0].json(), { text: (BACKOFF.body as { message: string }).message });
    const status = (await (await fetch(`${svc.url}/status`)).json()) as {
      shadow: ShadowStatus;
      sources: { errors: string[] }[];
    };
    assert.deepEqual(
      status.sources.flatMap((s) => s.errors),
      [],
    );
    assert.match(
      status.shadow.lastDifferences[0].differences[0],
      /^action 0 \(hook\): body\.text: "BackOff" instead of "Back-off/,
    );
  });

  it('removing the label makes it a live rule again (here: a name clash, reported on the later ConfigMap)', async () => {
    const candidate = fake.get('v1', 'ConfigMap', OWN_NAMESPACE, 'candidate')!;
    fake.apply({ ...candidate, metadata: { ...candidate.metadata, labels: { 'kube-event-rules/rules': 'true' } } });
    await waitUntil(
      'the clash is reported',
      async () => {
        const status = (await (await fetch(`${svc.url}/status`)).json()) as {
          sources: { source: string; errors: string[] }[];
        };
        return status.sources.some((s) => s.errors.some((e) => /already defined/.test(e)));
      },
      5000,
    );
  });
});

describe('kube-event-rules test with a labelled ConfigMap manifest', () => {
  it('treats its rules as shadow rules', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ker-shadow-cm-'));
    const manifests = join(dir, 'configmaps.yaml');
    const cm = (name: string, text: string, labels: Record<string, string>) =>
      stringify({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name, namespace: 'observability', labels },
        data: { 'rules.yaml': text },
      });
    await writeFile(
      manifests,
      `${cm('live', live('https://hooks.example.com'), {})}---\n${cm('candidate', live('https://hooks.example.com').replace(`'{ "text": message }'`, `'{ "text": reason }'`), { 'kube-event-rules/shadow': 'true' })}`,
    );
    const lines: string[] = [];
    assert.equal(
      await testCommand(
        ['--rules', manifests, join(EXAMPLES_DIR, 'pod-backoff-crashloop-resource-update.json')],
        (l) => lines.push(l),
        async () => '',
      ),
      0,
      lines.join('\n'),
    );
    assert.match(
      lines.join('\n'),
      /◐ shadow crash-loops: matched, live rule matched\n {6}≠ action 0 \(hook\): body\.text: "BackOff"/,
    );
  });
});
