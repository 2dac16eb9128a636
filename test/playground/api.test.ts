/**
 * The playground's API and page routes without a browser: the admin guard, the bounded and redacted
 * ring buffer of received events, the draft evaluation (the code of POST /dry-run), the local command.
 */
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { startPlayground } from '../../src/cli/playground-command.js';
import { knownSecrets } from '../../src/redact.js';
import { loadFixture, withEvent } from '../support/fixtures.js';
import { startService, type RunningService } from '../support/running-service.js';

const RULES = `destinations:
  out: { kind: log }
rules:
  - name: crash-loops
    conditions:
      all:
        - { fact: event, path: $.reason, operator: equal, value: BackOff }
    actions:
      - destination: out
        body: '{ "text": message }'
`;
const ADMIN = 'admin-token-for-the-playground-9d2c';
const BACKOFF = loadFixture('pod-backoff-crashloop-resource-update.json');

describe('playground behind the admin token', () => {
  let svc: RunningService;
  const auth = { authorization: `Bearer ${ADMIN}` };
  before(async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ker-playground-'));
    await writeFile(join(dir, 'admin-token'), ADMIN);
    svc = await startService({
      rules: { 'crash.yaml': RULES },
      config: { playgroundRecentEvents: 2, auth: { tokenFile: '', adminTokenFile: join(dir, 'admin-token') } },
    });
  });
  after(() => svc.stop());

  it('serves the page (no data) to anyone and the API only with the admin token', async () => {
    const page = await fetch(`${svc.url}/playground/`);
    assert.equal(page.status, 200);
    assert.match(page.headers.get('content-security-policy') ?? '', /default-src 'none'/);
    assert.match(await page.text(), /<title>kube-event-rules · rule playground<\/title>/);
    for (const [method, path] of [
      ['GET', 'context'],
      ['GET', 'recent'],
      ['POST', 'evaluate'],
    ]) {
      const refused = await fetch(`${svc.url}/playground/api/${path}`, {
        method,
        body: method === 'POST' ? '{}' : undefined,
      });
      assert.equal(refused.status, 401, path);
      const wrong = await fetch(`${svc.url}/playground/api/${path}`, {
        method,
        body: method === 'POST' ? '{}' : undefined,
        headers: { authorization: 'Bearer nope' },
      });
      assert.equal(wrong.status, 401, path);
    }
    const context = (await (await fetch(`${svc.url}/playground/api/context`, { headers: auth })).json()) as {
      mode: string;
      documents: { name: string }[];
      examples: { name: string }[];
    };
    assert.equal(context.mode, 'service');
    assert.deepEqual(
      context.documents.map((d) => d.name),
      ['crash.yaml'],
    );
    assert.ok(context.examples.some((e) => e.name === 'pod-backoff-crashloop-resource-update.json'));
  });

  it('keeps the last N received events, newest first, with known secret values redacted', async () => {
    const secret = knownSecrets.remember('s3cr3t-value-seen-in-an-event');
    const leaky = withEvent(BACKOFF, (event) => {
      event.message = `token=${secret} leaked into a message`;
    });
    for (const fixture of [loadFixture('hpa-successful-rescale-up-resource-add.json'), BACKOFF, leaky])
      assert.equal((await svc.post(fixture)).status, 204);
    const response = await fetch(`${svc.url}/playground/api/recent`, { headers: auth });
    const text = await response.text();
    assert.doesNotMatch(text, /s3cr3t-value-seen-in-an-event/);
    const { recent } = JSON.parse(text) as { recent: { label: string; text: string }[] };
    assert.equal(recent.length, 2);
    assert.match(recent[0].text, /token=\[redacted\] leaked into a message/);
    assert.match(recent[1].label, /BackOff Pod\/payment-5c7d9b8f6-2m4rt/);
    // A recorded event is a CloudEvent file the playground (and `test`) read back.
    const evaluated = await fetch(`${svc.url}/playground/api/evaluate`, {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({ document: RULES, event: recent[1].text }),
    });
    const result = (await evaluated.json()) as { results: { matched: string[] }[] };
    assert.deepEqual(result.results[0].matched, ['crash-loops']);
  });

  it('evaluates a draft as POST /dry-run does, and names problems with their place in the file', async () => {
    const event = JSON.stringify({ headers: BACKOFF.headers, body: BACKOFF.body });
    const post = (document: string) =>
      fetch(`${svc.url}/playground/api/evaluate`, {
        method: 'POST',
        headers: auth,
        body: JSON.stringify({ document, event, eventLabel: 'backoff.event.json' }),
      }).then((r) => r.json() as Promise<Record<string, any>>);
    const good = await post(RULES);
    assert.deepEqual(good.problems, []);
    const dryRun = (await (
      await fetch(`${svc.url}/dry-run`, {
        method: 'POST',
        headers: { ...BACKOFF.headers, ...auth },
        body: JSON.stringify(BACKOFF.body),
      })
    ).json()) as { events: unknown[] };
    assert.deepEqual(good.results, [{ source: 'backoff.event.json', ...(dryRun.events[0] as object) }]);
    assert.equal(good.golden, `${JSON.stringify(good.results, null, 2)}\n`);

    const misspelt = RULES.replace('\'{ "text": message }\'', '\'{ "text": message & }\'').replace(
      'operator: equal',
      'operator: eqaul',
    );
    const bad = await post(misspelt);
    assert.deepEqual(
      bad.problems.map((p: { line: number; column: number; from: number; to: number; message: string }) => [
        p.line,
        p.column,
        misspelt.slice(p.from, p.to),
        p.message.split(':')[0],
      ]),
      [[7, 52, 'eqaul', 'rules[0] (crash-loops).conditions.all[0].operator']],
      'the schema stops at the operator',
    );
    const broken = RULES.replace('\'{ "text": message }\'', '\'{ "text": message & }\'');
    const jsonata = await post(broken);
    const [problem] = jsonata.problems as { line: number; column: number; from: number; to: number; message: string }[];
    assert.equal(problem.line, 10);
    assert.equal(problem.column, 36, problem.message);
    assert.equal(broken.slice(problem.from, problem.to), '}', 'the token JSONata stopped at');
    assert.match(problem.message, /at line 10, column 36 of the file$/);
    assert.deepEqual(jsonata.results[0].matched, []);
  });

  it('takes one document of at most 256 KiB (a larger one would hold the service while parsed)', async () => {
    const large = `${RULES}${'# padding\n'.repeat(30_000)}`;
    const response = await fetch(`${svc.url}/playground/api/evaluate`, {
      method: 'POST',
      headers: auth,
      body: JSON.stringify({ document: large, event: '{}' }),
    });
    const result = (await response.json()) as { problems: { message: string }[]; results: unknown[] };
    assert.deepEqual(
      result.problems.map((p) => p.message),
      [
        `the document has ${Buffer.byteLength(large)} bytes; the playground takes one of at most 262144 (validate checks larger ones)`,
      ],
    );
    assert.deepEqual(result.results, []);
  });

  it('answers 400 with the reason for a request that is not a draft', async () => {
    const response = await fetch(`${svc.url}/playground/api/evaluate`, {
      method: 'POST',
      headers: auth,
      body: '{"document": 3}',
    });
    assert.equal(response.status, 400);
    assert.deepEqual(await response.json(), { error: 'invalid request', detail: 'document must be a string' });
  });
});

describe('kube-event-rules playground (local)', () => {
  it('serves the page and the API on 127.0.0.1 without a cluster, with the rule files of RULES_DIR', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ker-playground-local-'));
    await writeFile(join(dir, 'crash.yaml'), RULES);
    const { server, url } = await startPlayground([dir, '--port', '0']);
    try {
      assert.match(url, /^http:\/\/127\.0\.0\.1:\d+\/playground\/$/);
      assert.equal((server.address() as { address: string }).address, '127.0.0.1');
      const context = (await (await fetch(`${url}api/context`)).json()) as {
        mode: string;
        documents: { name: string }[];
      };
      assert.equal(context.mode, 'local');
      assert.deepEqual(
        context.documents.map((d) => d.name),
        ['crash.yaml'],
      );
      assert.equal((await fetch(url)).status, 200);
    } finally {
      server.close();
    }
  });

  it('refuses a RULES_DIR that is not a directory, and an unknown option, in one line', async () => {
    await assert.rejects(startPlayground(['/nonexistent-rules']), /\/nonexistent-rules: not a directory of rule files/);
    await assert.rejects(startPlayground(['--bogus']), /unknown option --bogus/);
  });
});
