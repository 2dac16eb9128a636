/**
 * The real process: `kube-event-rules serve` started as a child, as in production.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { startCaptureSink, type CaptureSink } from '../support/capture-sink.js';
import { bodyOf, loadFixture } from '../support/fixtures.js';

function startProcess(env: Record<string, string>, args = ['serve']) {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', ...args], {
    env: { ...process.env, PORT: '0', HOST: '127.0.0.1', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const records: Record<string, any>[] = [];
  let stdout = '';
  let stderr = '';
  let resolvePort: (port: number) => void;
  const port = new Promise<number>((resolve) => (resolvePort = resolve));
  child.stderr!.on('data', (d: Buffer) => (stderr += d.toString()));
  createInterface({ input: child.stdout! }).on('line', (line) => {
    stdout += `${line}\n`;
    if (!line.startsWith('{')) return;
    const record = JSON.parse(line) as Record<string, any>;
    records.push(record);
    if (record.msg === 'kube-event-rules listening') resolvePort(record.address.port as number);
  });
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, port, records, exited, output: () => ({ stdout, stderr }) };
}

describe('kube-event-rules (child process)', () => {
  let sink: CaptureSink;
  before(async () => {
    sink = await startCaptureSink();
  });
  after(() => sink.close());

  it('on SIGTERM stops accepting, finishes the in-flight delivery, answers it, and exits 0', async () => {
    const rulesDir = await mkdtemp(join(tmpdir(), 'ker-cli-'));
    await writeFile(
      join(rulesDir, 'r.yaml'),
      `
destinations: { slow: { url: "${sink.url}/slow" } }
rules:
  - name: all-hpa
    conditions: { all: [ { fact: event, path: $.reason, operator: equal, value: SuccessfulRescale } ] }
    actions: [ { destination: slow, body: '{"ok": true}' } ]
`,
    );
    sink.respond('/slow', { status: 200, delayMs: 800 });
    const proc = startProcess({ RULES_DIR: rulesDir, LOG_LEVEL: 'info' });
    const port = await proc.port;
    while (!proc.records.some((r) => r.msg === 'rules loaded')) await new Promise((r) => setTimeout(r, 20));
    const fixture = loadFixture('hpa-successful-rescale-up-resource-add');
    const inFlight = fetch(`http://127.0.0.1:${port}/`, {
      method: 'POST',
      headers: fixture.headers,
      body: bodyOf(fixture),
    });
    await sink.waitFor('/slow', 1);
    proc.child.kill('SIGTERM');
    await new Promise((r) => setTimeout(r, 200));
    assert.equal(proc.child.exitCode, null, 'still running while a delivery is in flight');
    await assert.rejects(fetch(`http://127.0.0.1:${port}/healthz`), 'no new connections after SIGTERM');
    const response = await inFlight;
    assert.equal(response.status, 204);
    assert.equal(await proc.exited, 0);
    assert.ok(proc.records.some((r) => r.msg === 'stopped'));
  });

  it('cuts off slow senders (headers and body) and refuses oversized headers with a 4xx', async () => {
    const { createConnection } = await import('node:net');
    const proc = startProcess({ RULES_DIR: 'rules', HEADERS_TIMEOUT_SECONDS: '0.5', REQUEST_TIMEOUT_SECONDS: '1' });
    const port = await proc.port;
    const slow = (payload: string) =>
      new Promise<{ closedAfterMs: number; answer: string }>((resolve) => {
        const started = Date.now();
        let answer = '';
        const socket = createConnection(port, '127.0.0.1', () => socket.write(payload));
        socket.on('data', (d: Buffer) => (answer += d.toString()));
        socket.on('close', () => resolve({ closedAfterMs: Date.now() - started, answer }));
        socket.on('error', () => undefined);
      });
    // Headers that never finish; a body that never arrives.
    const headers = await slow('POST / HTTP/1.1\r\nHost: x\r\nce-id: 1\r\n');
    const body = await slow(
      'POST / HTTP/1.1\r\nHost: x\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{"a":',
    );
    assert.ok(
      headers.closedAfterMs < 3000 && /^HTTP\/1\.1 408/.test(headers.answer),
      `slow headers: ${headers.closedAfterMs} ms, ${headers.answer.split('\r\n')[0]}`,
    );
    assert.ok(
      body.closedAfterMs < 4000 && /^HTTP\/1\.1 4\d\d/.test(body.answer),
      `slow body: ${body.closedAfterMs} ms, ${body.answer.split('\r\n')[0]}`,
    );
    const big = await fetch(`http://127.0.0.1:${port}/`, {
      method: 'POST',
      headers: { 'ce-id': '1', 'x-big': 'x'.repeat(64 * 1024) },
      body: '{}',
    }).then(
      (r) => r.status,
      () => 0,
    );
    assert.equal(big, 431);
    assert.equal((await fetch(`http://127.0.0.1:${port}/healthz`)).status, 200, 'still serving');
    proc.child.kill('SIGTERM');
    assert.equal(await proc.exited, 0);
  });

  it('refuses an invalid configuration value, naming it', async () => {
    const proc = startProcess({ PORT: 'eighty' });
    assert.equal(await proc.exited, 2);
    assert.match(proc.output().stderr, /PORT="eighty" is not a number/);
  });

  it('with authentication and METRICS_PORT: POST / and /status need their tokens, /metrics is on its own port; an issuer without audience is refused at start', async () => {
    const { closedPort } = await import('../support/ports.js');
    const dir = await mkdtemp(join(tmpdir(), 'ker-auth-cli-'));
    await writeFile(join(dir, 'sender'), 'sender-token-123');
    await writeFile(join(dir, 'admin'), 'admin-token-456');
    const metricsPort = await closedPort();
    const proc = startProcess({
      CLUSTER: 'off',
      RULES_DIR: 'rules',
      METRICS_PORT: String(metricsPort),
      AUTH_TOKEN_FILE: join(dir, 'sender'),
      ADMIN_TOKEN_FILE: join(dir, 'admin'),
    });
    const port = await proc.port;
    while (!proc.records.some((r) => r.msg === 'rules loaded')) await new Promise((r) => setTimeout(r, 20));
    const fixture = loadFixture('pod-backoff-crashloop-resource-update');
    const post = (authorization?: string) =>
      fetch(`http://127.0.0.1:${port}/`, {
        method: 'POST',
        headers: { ...fixture.headers, ...(authorization ? { authorization } : {}) },
        body: bodyOf(fixture),
      });
    assert.equal((await post()).status, 401);
    assert.equal((await post('Bearer sender-token-123')).status, 204);
    assert.equal((await fetch(`http://127.0.0.1:${port}/status`)).status, 401);
    assert.equal(
      (await fetch(`http://127.0.0.1:${port}/status`, { headers: { authorization: 'Bearer admin-token-456' } })).status,
      200,
    );
    assert.equal((await fetch(`http://127.0.0.1:${port}/metrics`)).status, 404);
    const metrics = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    assert.match(metrics, /kube_event_rules_requests_refused_total\{endpoint="events",reason="missing_credential"\} 1/);
    assert.equal((await fetch(`http://127.0.0.1:${metricsPort}/readyz`)).status, 200);
    assert.ok(
      !proc.output().stdout.includes('sender-token-123') && !proc.output().stdout.includes('admin-token-456'),
      'no token in the log',
    );
    proc.child.kill('SIGTERM');
    assert.equal(await proc.exited, 0);

    const half = startProcess({ CLUSTER: 'off', AUTH_OIDC_ISSUER: 'https://kubernetes.default.svc.cluster.local' });
    assert.equal(await half.exited, 2);
    assert.match(half.output().stderr, /AUTH_OIDC_ISSUER is set but AUTH_OIDC_AUDIENCE is not/);
  });

  it('compacts the heap before it is ready when Node exposes gc (as the image runs it), and not otherwise', async () => {
    const compactions = async (nodeFlags: string[]) => {
      const child = spawn(process.execPath, [...nodeFlags, '--trace-gc', '--import', 'tsx', 'src/main.ts', 'serve'], {
        env: { ...process.env, PORT: '0', HOST: '127.0.0.1', CLUSTER: 'off' },
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let stdout = '';
      let ready = false;
      child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
      try {
        for (let i = 0; i < 200 && !ready; i++) {
          const port = /"port":(\d+)/.exec(stdout)?.[1];
          if (
            port &&
            (await fetch(`http://127.0.0.1:${port}/readyz`).then(
              (r) => r.ok,
              () => false,
            ))
          )
            ready = true;
          else await new Promise((r) => setTimeout(r, 50));
        }
        assert.ok(ready, 'the service became ready');
        await new Promise((r) => setTimeout(r, 300)); // output written before the answer may arrive after it
        // V8 names a collection asked for by gc() "testing".
        return (stdout.match(/testing; GC in old space requested/g) ?? []).length;
      } finally {
        child.kill('SIGTERM');
      }
    };
    assert.equal(await compactions(['--expose-gc']), 2);
    assert.equal(await compactions([]), 0);
  });

  it('user mistakes end in one line naming the problem, never a stack trace', async () => {
    const level = startProcess({ LOG_LEVEL: 'verbose' });
    assert.equal(await level.exited, 2);
    assert.match(level.output().stderr, /LOG_LEVEL="verbose" is not one of trace, debug, info/);
    const missing = startProcess({}, ['validate', '/nonexistent/rules']);
    assert.equal(await missing.exited, 1);
    assert.match(missing.output().stderr, /kube-event-rules validate: \/nonexistent\/rules: no such file or directory/);
    const first = startProcess({ CLUSTER: 'off' });
    const port = await first.port;
    const busy = startProcess({ CLUSTER: 'off', PORT: String(port) });
    assert.equal(await busy.exited, 1);
    first.child.kill('SIGTERM');
    await first.exited;
    assert.match(busy.output().stderr, new RegExp(`127\\.0\\.0\\.1:${port} is already in use \\(EADDRINUSE\\)`));
    for (const proc of [level, missing, busy]) assert.doesNotMatch(proc.output().stderr, /\n\s+at /, 'no stack trace');
  });

  it('prints help and rejects an unknown command', async () => {
    const help = startProcess({}, ['--help']);
    assert.equal(await help.exited, 0);
    assert.match(help.output().stdout, /usage: kube-event-rules/);
    const unknown = startProcess({}, ['frobnicate']);
    assert.equal(await unknown.exited, 2);
    assert.match(unknown.output().stderr, /unknown command "frobnicate"/);
  });
});
