/**
 * Known secret values — from a Secret through secretKeyRef (a header, a body field, a webhook URL), from
 * the environment, from an hpa-sender Secret (url, headers, body template, and a `headers` value that
 * is not JSON) — go through every output path, and none of them prints any 8-character piece of one:
 * POST / answers (204 and 503), /dry-run, the playground's API, /status, log records, `log` destination
 * lines, Warning Events on the API, CLI `test` output. A destination echoes what it received (the Authorization header,
 * the URL path, the body) in its 500 and 400 answers, as some do.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { readFileSync } from 'node:fs';
import { testCommand } from '../../src/cli/test-rules.js';
import { startFakeKubeApi, type FakeKubeApi } from '../support/fake-kube-api.js';
import { bodyOf, loadFixture, withEvent, type EventFixture } from '../support/fixtures.js';
import { OWN_NAMESPACE, connectionTo, ruleConfigMap, secret, waitUntil } from '../support/kube-fixtures.js';
import { startService, type RunningService } from '../support/running-service.js';

const HPA_SENDER_RULES = readFileSync(new URL('../../rules/hpa-sender-compat.yaml', import.meta.url), 'utf8');

/** Distinctive values: no 8-character piece of one occurs in output by chance. */
const SECRETS = {
  headerToken: 'qzxHEADERtokenFROMsecretQZX',
  routingKey: 'qzxROUTINGkeyFROMsecretQZX',
  webhookPath: 'qzxWEBHOOKpathFROMsecretQZX',
  envKey: 'qzxAPIkeyFROMenvironmentQZX',
  hpaUrl: 'qzxHPAurlQUERYtokenQZX',
  hpaHeader: 'qzxHPAheaderTOKENqzx',
  hpaBody: 'qzxHPAbodyAPIkeyQZX',
  hpaBrokenHeaders: 'qzxBROKENheadersVALUEqzx',
};

/** pieces: every 8-character window of every secret. */
const PIECES = Object.values(SECRETS).flatMap((value) =>
  Array.from({ length: value.length - 7 }, (_, i) => value.slice(i, i + 8)),
);

function leaksIn(what: string, text: string): void {
  const found = PIECES.filter((piece) => text.includes(piece));
  const at = found.length > 0 ? text.indexOf(found[0]) : 0;
  assert.deepEqual(found, [], `${what} shows secret material: …${text.slice(Math.max(0, at - 300), at + 100)}…`);
}

/** A destination that answers with what it received: 500 on /echo-500 and the hpa-sender path, 400 elsewhere. */
async function startEchoDestination(): Promise<{ url: string; received: string[]; close(): Promise<void> }> {
  const received: string[] = [];
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      const echo = `you sent ${req.method} ${req.url} authorization=${req.headers.authorization ?? ''} x-api-key=${String(req.headers['x-api-key'] ?? '')} body=${body}`;
      received.push(echo);
      res.writeHead(req.url === '/echo-500' || req.url?.startsWith('/api/v2/event') ? 500 : 400, {
        'content-type': 'text/plain',
      });
      res.end(echo);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    received,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const rules = (echo: string) => `
destinations:
  echo-500:
    url: ${echo}/echo-500
    headers:
      Authorization: { secretKeyRef: { name: team-tokens, key: token }, prefix: "Bearer " }
  echo-400:
    url: ${echo}/echo-400
    headers:
      X-Api-Key: { env: API_KEY }
  webhook:
    url: { secretKeyRef: { name: team-tokens, key: webhook } }
  audit: { kind: log }
rules:
  - name: crashloops
    conditions:
      all:
        - { fact: event, path: $.reason, operator: equal, value: BackOff }
    actions:
      - destination: echo-500
      - destination: echo-400
        fields:
          routing_key: { secretKeyRef: { name: team-tokens, key: routing } }
      - destination: webhook
      - destination: audit
        fields:
          token: { env: API_KEY }
`;

const teamTokens = (echo: string) => ({
  token: SECRETS.headerToken,
  routing: SECRETS.routingKey,
  webhook: `${echo}/hooks/T0/B0/${SECRETS.webhookPath}`,
});

const crashloop = (n: number): EventFixture =>
  withEvent(loadFixture('pod-backoff-crashloop-resource-update'), (body, headers) => {
    body.metadata.uid = `leak-pod-${n}`;
    headers['ce-id'] = `leak-pod-${n}`;
  });

const hpaEvent = (hpaName: string, n: number): EventFixture =>
  withEvent(loadFixture('hpa-successful-rescale-up-resource-add'), (body, headers) => {
    body.metadata.uid = `leak-hpa-${hpaName}-${n}`;
    body.involvedObject.name = hpaName;
    headers['ce-id'] = `leak-hpa-${hpaName}-${n}`;
  });

describe('secret values appear in no output', () => {
  let fake: FakeKubeApi;
  let echo: Awaited<ReturnType<typeof startEchoDestination>>;
  let svc: RunningService;
  let dir: string;
  const outputs: { what: string; text: string }[] = [];

  before(async () => {
    fake = await startFakeKubeApi();
    echo = await startEchoDestination();
    dir = await mkdtemp(join(tmpdir(), 'ker-leaks-'));
    fake.apply(secret(OWN_NAMESPACE, 'team-tokens', teamTokens(echo.url)));
    fake.apply(
      secret('shop', 'wavefront-hpe', {
        url: `${echo.url}/api/v2/event?token=${SECRETS.hpaUrl}\n`,
        headers: `{"Authorization":"Bearer ${SECRETS.hpaHeader}"}`,
        body: `{"name":"HPA Scaling","apiKey":"${SECRETS.hpaBody}","details":"_message_"}`,
      }),
    );
    fake.apply(
      secret('shop', 'broken-headers', {
        url: `${echo.url}/api/v2/event`,
        headers: SECRETS.hpaBrokenHeaders,
        body: '{}',
      }),
    );
    for (const [name, target] of [
      ['checkout', 'shop/wavefront-hpe'],
      ['broken', 'shop/broken-headers'],
    ]) {
      fake.apply({
        apiVersion: 'autoscaling/v2',
        kind: 'HorizontalPodAutoscaler',
        metadata: { name, namespace: 'shop', annotations: { 'hpa-event': target } },
      });
    }
    // A team document that does not compile: the Warning Event path carries something.
    fake.apply(ruleConfigMap('team-a', 'team-a-rules', { 'broken.yaml': 'rules: [ { name: x } ]' }));
    svc = await startService({
      rules: { 'hpa-sender-compat.yaml': HPA_SENDER_RULES, 'leaks.yaml': rules(echo.url) },
      kube: connectionTo(fake),
      env: { API_KEY: SECRETS.envKey },
      config: { deliveryAttempts: 1 },
    });
  });
  after(async () => {
    await svc.stop();
    await echo.close();
    await fake.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('the secrets are in play: the destinations received every one of them', async () => {
    const answer = await svc.post(crashloop(1));
    outputs.push({ what: `POST / (crashloop) → ${answer.status}`, text: answer.text });
    assert.equal(answer.status, 503, answer.text);
    const checkout = await svc.post(hpaEvent('checkout', 1));
    outputs.push({ what: `POST / (hpa-sender) → ${checkout.status}`, text: checkout.text });
    assert.equal(checkout.status, 503, checkout.text);
    const broken = await svc.post(hpaEvent('broken', 1));
    outputs.push({ what: `POST / (hpa-sender, headers not JSON) → ${broken.status}`, text: broken.text });
    assert.equal(broken.status, 204, 'a Secret that cannot be used is a permanent error');
    const seen = echo.received.join('\n');
    for (const name of [
      'headerToken',
      'routingKey',
      'webhookPath',
      'envKey',
      'hpaUrl',
      'hpaHeader',
      'hpaBody',
    ] as const) {
      assert.ok(seen.includes(SECRETS[name]), `the destination received ${name}`);
    }
    assert.ok(svc.lines.length > 0, 'the log destination wrote its line');
  });

  it('POST /dry-run shows what would be sent, without the secrets', async () => {
    for (const fixture of [crashloop(2), hpaEvent('checkout', 2), hpaEvent('broken', 2)]) {
      const response = await fetch(`${svc.url}/dry-run`, {
        method: 'POST',
        headers: fixture.headers,
        body: bodyOf(fixture),
      });
      const text = await response.text();
      assert.equal(response.status, 200, text);
      outputs.push({ what: `/dry-run ${fixture.headers['ce-id']}`, text });
    }
    const report = JSON.parse(outputs.at(-2)!.text) as { events: { actions: { request?: { body: unknown } }[] }[] };
    assert.equal(
      report.events[0].actions[0].request?.body,
      '[redacted]',
      'the hpa-sender body template comes from a Secret: shown redacted whole',
    );
    assert.match(outputs.at(-1)!.text, /key headers: not JSON/, 'the parse error still says what is wrong');
  });

  it("the playground renders drafts with the service's Secrets and shows the received events, without the secrets", async () => {
    for (const [document, fixture] of [
      [rules(echo.url), crashloop(4)],
      [HPA_SENDER_RULES, hpaEvent('checkout', 4)],
      [HPA_SENDER_RULES, hpaEvent('broken', 4)],
    ] as const) {
      const response = await fetch(`${svc.url}/playground/api/evaluate`, {
        method: 'POST',
        body: JSON.stringify({ document, event: JSON.stringify(fixture) }),
      });
      const text = await response.text();
      assert.equal(response.status, 200, text);
      assert.match(text, /"rendered"|not JSON/, 'the draft was rendered');
      outputs.push({ what: `playground evaluate ${fixture.headers['ce-id']}`, text });
    }
    assert.match(
      outputs.find((o) => o.what === 'playground evaluate leak-pod-4')!.text,
      /\[redacted\]/,
      'the draft read the Secrets and shows them redacted',
    );
    const recent = await fetch(`${svc.url}/playground/api/recent`);
    outputs.push({ what: 'playground recent events', text: await recent.text() });
  });

  it('CLI test prints the report without the secrets (local Secret files and env)', async () => {
    const rulesFile = join(dir, 'rules.yaml');
    const secretsFile = join(dir, 'secrets.yaml');
    const eventFile = join(dir, 'event.json');
    await writeFile(rulesFile, rules(echo.url));
    await writeFile(
      secretsFile,
      `apiVersion: v1\nkind: Secret\nmetadata: { name: team-tokens }\nstringData: ${JSON.stringify(teamTokens(echo.url))}\n`,
    );
    await writeFile(eventFile, JSON.stringify(crashloop(3)));
    const previous = process.env.API_KEY;
    process.env.API_KEY = SECRETS.envKey;
    try {
      for (const json of [[], ['--json']]) {
        const printed: string[] = [];
        const code = await testCommand(
          ['--rules', rulesFile, '--secrets', secretsFile, ...json, eventFile],
          (line) => printed.push(line),
          async () => '',
        );
        assert.equal(code, 0, printed.join('\n'));
        assert.match(printed.join('\n'), /echo-500/);
        outputs.push({ what: `CLI test ${json.join(' ')}`, text: printed.join('\n') });
      }
    } finally {
      if (previous === undefined) delete process.env.API_KEY;
      else process.env.API_KEY = previous;
    }
  });

  it('no output holds a secret: answers, /status, logs, log-destination lines, Warning Events, CLI', async () => {
    const status = await fetch(`${svc.url}/status`);
    outputs.push({ what: '/status', text: await status.text() });
    await waitUntil('Warning Event recorded', () => fake.list('v1', 'Event').some((e) => e.type === 'Warning'));
    outputs.push({
      what: 'Warning Events',
      text: JSON.stringify(fake.list('v1', 'Event').filter((e) => e.type === 'Warning')),
    });
    outputs.push({ what: 'log records', text: svc.logs.map((l) => JSON.stringify(l)).join('\n') });
    outputs.push({ what: 'log destination lines', text: svc.lines.map((l) => JSON.stringify(l)).join('\n') });
    assert.ok(
      svc.logs.some((l) => l.msg === 'delivery failed; the Broker will redeliver'),
      'the failed deliveries were logged',
    );
    assert.ok(
      svc.logs.some((l) => l.msg === 'delivery rejected by the destination; not retried'),
      'the rejected deliveries were logged',
    );
    assert.ok(outputs.length >= 14, `every path was exercised (${outputs.map((o) => o.what).join(', ')})`);
    for (const { what, text } of outputs) leaksIn(what, text);
  });

  it("the 503 detail names the rule, destination and status, never the destination's answer", () => {
    const answer = outputs.find((o) => o.what.startsWith('POST / (crashloop)'))!;
    const detail = (JSON.parse(answer.text) as { detail: string }).detail;
    assert.match(detail, /rule crashloops → destination echo-500: HTTP 500/);
    assert.doesNotMatch(detail, /you sent/);
  });
});
