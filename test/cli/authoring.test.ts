/**
 * Rule authoring from the command line and over HTTP: validate, test (with golden files), /dry-run.
 */
import assert from 'node:assert/strict';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { runTests, testCommand } from '../../src/cli/test-rules.js';
import { validateCommand } from '../../src/cli/validate.js';
import { EXAMPLES_DIR, bodyOf, loadFixture } from '../support/fixtures.js';
import { startService, type RunningService } from '../support/running-service.js';

const RULES = `
destinations:
  hook:
    url: https://hooks.example.com/services/T0/B0
    headers:
      Authorization: { secretKeyRef: { name: hook, key: token }, prefix: "Bearer " }
  out: { kind: log }
rules:
  - name: hpa
    conditions:
      all:
        - { fact: event, path: $.involvedObject.kind, operator: equal, value: HorizontalPodAutoscaler }
        - { fact: event, path: $.reason, operator: equal, value: SuccessfulRescale }
    actions:
      - destination: hook
        body: '{ "text": "HPA " & involvedObject.name & ": " & message }'
  - name: warnings
    conditions:
      all:
        - { fact: event, path: $.type, operator: equal, value: Warning }
    actions:
      - destination: out
        body: '{ "reason": reason }'
`;

const SECRETS = `
apiVersion: v1
kind: Secret
metadata: { name: hook, namespace: observability }
stringData: { token: very-secret-token }
`;

async function tempDir(files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'ker-authoring-'));
  for (const [name, text] of Object.entries(files)) await writeFile(join(dir, name), text);
  return dir;
}

function capture() {
  const lines: string[] = [];
  return { print: (line: string) => lines.push(line), text: () => lines.join('\n') };
}

const noStdin = async () => '';

describe('kube-event-rules validate', () => {
  it('accepts the example rules with a one-line summary', async () => {
    const out = capture();
    assert.equal(await validateCommand(['rules'], out.print), 0);
    assert.match(out.text(), /^ok: 5 rule sources, 5 rules$/);
  });

  it('reports every problem with file, rule and field, and exits 1', async () => {
    const dir = await tempDir({
      'good.yaml': RULES,
      'bad.yaml': RULES.replace('operator: equal, value: Warning', 'operator: matches, value: "(Warning"').replace(
        'destination: hook',
        'destination: hock',
      ),
      'worse.yaml': RULES.replace('operator: equal, value: Warning', 'operator: equalz, value: Warning'),
    });
    const out = capture();
    assert.equal(await validateCommand([dir], out.print), 1);
    assert.match(out.text(), /bad\.yaml: rules\[0\] \(hpa\)\.actions\[0\]\.destination: "hock" is not a destination/);
    assert.match(
      out.text(),
      /bad\.yaml: rules\[1\] \(warnings\)\.conditions\.all\[0\]\.value: invalid regex "\(Warning"/,
    );
    assert.match(
      out.text(),
      /worse\.yaml: rules\[1\] \(warnings\)\.conditions\.all\[0\]\.operator: unknown operator "equalz" \(known: equal, /,
    );
    assert.match(out.text(), /3 problems/);
  });

  it('validates the rule documents inside ConfigMap manifests (multi-document YAML)', async () => {
    const indent = (text: string) =>
      text
        .split('\n')
        .map((l) => `    ${l}`)
        .join('\n');
    const manifest = `apiVersion: v1\nkind: ConfigMap\nmetadata: { name: team-a-rules, namespace: team-a }\ndata:\n  rules.yaml: |\n${indent(RULES)}\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: { name: broken, namespace: team-b }\ndata:\n  r.yaml: |\n${indent('rules: [ { name: x } ]')}\n`;
    const dir = await tempDir({ 'cm.yaml': manifest });
    const out = capture();
    assert.equal(await validateCommand([join(dir, 'cm.yaml')], out.print), 1);
    assert.match(
      out.text(),
      /ConfigMap team-b\/broken key r\.yaml: rules\[0\] \(x\): must have required property 'conditions'/,
    );
    assert.doesNotMatch(out.text(), /team-a/);
  });
});

describe('kube-event-rules validate --team', () => {
  it("checks a document as a team's, under the TEAM_* settings of the environment", async () => {
    const dir = await tempDir({ 'team.yaml': `${RULES}\n# ${'x'.repeat(300)}\n` });
    const out = capture();
    assert.equal(await validateCommand([join(dir, 'team.yaml')], out.print, {}), 0, 'fine as a cluster document');
    assert.equal(
      await validateCommand(['--team', 'team-a', join(dir, 'team.yaml')], out.print, {
        TEAM_MAX_DOCUMENT_BYTES: '200',
      }),
      1,
    );
    assert.match(
      out.text(),
      /team\.yaml: the document has \d+ bytes; a team's rule document may have at most 200 \(TEAM_MAX_DOCUMENT_BYTES\)/,
    );
    assert.equal(await validateCommand(['--team'], out.print, {}), 2);
  });
});

describe('kube-event-rules test', () => {
  let dir: string;
  before(async () => {
    dir = await tempDir({ 'rules.yaml': RULES, 'secrets.yaml': SECRETS });
  });

  it('prints matched rules, the deciding conditions and the rendered request with the secret redacted', async () => {
    const out = capture();
    const code = await testCommand(
      [
        '--rules',
        join(dir, 'rules.yaml'),
        '--secrets',
        join(dir, 'secrets.yaml'),
        join(EXAMPLES_DIR, 'hpa-successful-rescale-up-resource-add.json'),
      ],
      out.print,
      noStdin,
    );
    assert.equal(code, 0);
    const text = out.text();
    assert.match(text, /✓ rule hpa matched/);
    assert.match(text, /✓ event \$\.reason equal "SuccessfulRescale" {2}\(was "SuccessfulRescale"\)/);
    assert.match(text, /→ hook \(rule hpa\): POST https:\/\/hooks\.example\.com\/services\/T0\/B0/);
    assert.match(text, /authorization: \[redacted\]/);
    assert.match(text, /"text": "HPA checkout: New size: 4; reason: cpu resource utilization/);
    assert.doesNotMatch(text, /very-secret-token/);
  });

  it('reads raw Events and `kubectl get events -o json` Lists, from stdin too', async () => {
    const event = loadFixture('pod-backoff-crashloop-resource-update').body as Record<string, unknown>;
    const list = {
      apiVersion: 'v1',
      kind: 'List',
      items: [event, { ...event, metadata: { uid: 'other' }, type: 'Normal', reason: 'Pulled' }],
    };
    const { results } = await runTests(
      { rules: [join(dir, 'rules.yaml')], secrets: [], events: ['-'], json: true, updateExpect: false },
      async () => JSON.stringify(list),
    );
    assert.equal(results.length, 2);
    assert.deepEqual(
      results.map((r) => ('matched' in r ? r.matched : r.error)),
      [['warnings'], []],
    );
    assert.equal(results[0].source, 'stdin#1');
  });

  it('evaluates every event of a CloudEvents batch, each labelled with its entry; a bad entry rejects the batch by name', async () => {
    const hpa = loadFixture('hpa-successful-rescale-up-resource-add');
    const backoff = loadFixture('pod-backoff-crashloop-resource-update');
    const entry = (fixture: typeof hpa, id: string) => ({
      ...Object.fromEntries(
        Object.entries(fixture.headers)
          .filter(([k]) => k.startsWith('ce-'))
          .map(([k, v]) => [k.slice(3), v]),
      ),
      id,
      datacontenttype: 'application/json',
      data: fixture.body,
    });
    const batch = (entries: unknown[]) =>
      JSON.stringify({
        headers: { 'content-type': 'application/cloudevents-batch+json' },
        body: JSON.stringify(entries),
        bodyEncoding: 'raw',
      });
    const options = {
      rules: [join(dir, 'rules.yaml')],
      secrets: [join(dir, 'secrets.yaml')],
      events: ['-'],
      json: true,
      updateExpect: false,
    };
    const { results } = await runTests(options, async () =>
      batch([entry(hpa, 'b1'), entry(backoff, 'b2'), entry(hpa, 'b3')]),
    );
    assert.deepEqual(
      results.map((r) => [r.source, 'matched' in r ? r.matched : r.error]),
      [
        ['stdin[0]', ['hpa']],
        ['stdin[1]', ['warnings']],
        ['stdin[2]', ['hpa']],
      ],
    );
    const bad = await runTests(options, async () => batch([entry(hpa, 'b4'), { ...entry(backoff, 'b5'), data: [1] }]));
    assert.equal(bad.results.length, 1);
    assert.match(
      'detail' in bad.results[0] ? String(bad.results[0].detail) : '',
      /^batch entry 1: .*needs a JSON object as data/,
    );
  });

  it('prints a presence condition without a value: "object absent (was null)"', async () => {
    const rules = await tempDir({
      'absent.yaml': `
destinations: { out: { kind: log } }
rules:
  - name: gone
    conditions: { all: [ { fact: event, path: $.reason, operator: equal, value: SuccessfulRescale }, { fact: object, operator: absent } ] }
    actions: [ { destination: out } ]
`,
    });
    const out = capture();
    assert.equal(
      await testCommand(
        ['--rules', join(rules, 'absent.yaml'), join(EXAMPLES_DIR, 'hpa-successful-rescale-up-resource-add.json')],
        out.print,
        noStdin,
      ),
      0,
    );
    assert.match(out.text(), /✓ rule gone matched/);
    assert.match(out.text(), /✓ object absent {2}\(was null\)/);
  });

  it('reports a missing secret as a clear action error, without a cluster', async () => {
    const { results } = await runTests(
      {
        rules: [join(dir, 'rules.yaml')],
        secrets: [],
        events: [join(EXAMPLES_DIR, 'hpa-successful-rescale-up-resource-add.json')],
        json: true,
        updateExpect: false,
      },
      noStdin,
    );
    const action = 'actions' in results[0] ? results[0].actions[0] : undefined;
    assert.equal(action?.outcome, 'error');
    assert.match(action.error!, /secretKeyRef hook\/token: no Kubernetes cluster is configured/);
  });

  it('compares with a golden file: passes when equal, exits 1 with a readable diff when not', async () => {
    const golden = join(dir, 'expected.json');
    const args = [
      '--rules',
      join(dir, 'rules.yaml'),
      '--secrets',
      join(dir, 'secrets.yaml'),
      '--expect',
      golden,
      join(EXAMPLES_DIR, 'hpa-successful-rescale-up-resource-add.json'),
    ];
    assert.equal(await testCommand([...args, '--update-expect'], capture().print, noStdin), 0);
    const ok = capture();
    assert.equal(await testCommand(args, ok.print, noStdin), 0);
    assert.match(ok.text(), /✓ matches .*expected\.json \(1 events\)/);

    await writeFile(golden, (await readFile(golden, 'utf8')).replace('HPA checkout', 'HPA something-else'));
    const differs = capture();
    assert.equal(await testCommand(args, differs.print, noStdin), 1);
    assert.match(differs.text(), /✗ the report differs from/);
    assert.match(differs.text(), /^- .*HPA something-else/m);
    assert.match(differs.text(), /^\+ .*HPA checkout/m);
  });

  it('exits 1 when the rules themselves are invalid, and 2 on bad arguments', async () => {
    const bad = await tempDir({ 'r.yaml': 'rules: 1' });
    assert.equal(
      await testCommand(
        ['--rules', bad, join(EXAMPLES_DIR, 'hpa-successful-rescale-up-resource-add.json')],
        capture().print,
        noStdin,
      ),
      1,
    );
    assert.equal(await testCommand([join(EXAMPLES_DIR, 'x.json')], capture().print, noStdin), 2);
  });
});

describe('POST /dry-run', () => {
  let svc: RunningService;
  before(async () => {
    svc = await startService({
      rules: { 'rules.yaml': RULES.replace('https://hooks.example.com/services/T0/B0', 'http://127.0.0.1:9/never') },
    });
  });
  after(() => svc.stop());

  it('answers the report, sends nothing, and changes no state', async () => {
    const fixture = loadFixture('pod-backoff-crashloop-resource-update');
    const response = await fetch(`${svc.url}/dry-run`, {
      method: 'POST',
      headers: fixture.headers,
      body: bodyOf(fixture),
    });
    assert.equal(response.status, 200);
    const { events } = (await response.json()) as {
      events: { matched: string[]; actions: { outcome: string; request: { body: unknown } }[]; evaluated: unknown[] }[];
    };
    assert.deepEqual(events[0].matched, ['warnings']);
    assert.deepEqual(
      events[0].actions.map((a) => [a.outcome, a.request.body]),
      [['rendered', { reason: 'BackOff' }]],
    );
    assert.equal(svc.lines.length, 0, 'the log destination wrote nothing');
    assert.equal(await svc.metric('kube_event_rules_rule_matches_total'), 0);
    assert.equal(await svc.metric('kube_event_rules_events_received_total'), 0);

    // The real event afterwards is still delivered: the dry run left no dedup or occurrence memory.
    assert.equal((await svc.post(fixture)).status, 204);
    assert.equal(svc.lines.length, 1);
  });

  it('rejects malformed input like POST /', async () => {
    const response = await fetch(`${svc.url}/dry-run`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: '{}',
    });
    assert.equal(response.status, 400);
    assert.match(((await response.json()) as { error: string }).error, /not a CloudEvent/);
  });
});
