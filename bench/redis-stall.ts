/**
 * Redis stall: the service (child process, Redis store, Debian's redis-server) at ≈ 200 events/s for 45 s,
 * Redis stopped (SIGSTOP: connected, never answering) from 10 s to 20 s. Prints latency and RSS per phase,
 * what a throttled rule (max 50 per 10 minutes, one key) sent, and the service's Redis log lines.
 *   npx tsx bench/redis-stall.ts
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, Agent, request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { bodyOf, loadFixture, withEvent } from '../test/support/fixtures.js';
import { closedPort } from '../test/support/ports.js';
import { startRedis } from '../test/support/real-receivers.js';

const redis = await startRedis();
let throttledSends = 0;
const sink = createServer((req, res) => {
  if (req.url === '/limited') throttledSends++;
  req.resume();
  req.on('end', () => res.writeHead(200).end('{}'));
});
await new Promise<void>((r) => sink.listen(0, '127.0.0.1', r));
const sinkUrl = `http://127.0.0.1:${(sink.address() as AddressInfo).port}`;
const rulesDir = mkdtempSync(join(tmpdir(), 'stall-'));
writeFileSync(
  join(rulesDir, 'r.yaml'),
  `
destinations:
  ok: { url: "${sinkUrl}/ok" }
  limited: { url: "${sinkUrl}/limited" }
rules:
  - name: every
    conditions: { all: [ { fact: event, path: $.reason, operator: equal, value: SuccessfulRescale } ] }
    actions: [ { destination: ok, body: '{ "uid": metadata.uid }' } ]
  - name: throttled
    throttle: { window: 10m, max: 50, key: '"one"' }
    conditions: { all: [ { fact: event, path: $.reason, operator: equal, value: SuccessfulRescale } ] }
    actions: [ { destination: limited, body: '{ "uid": metadata.uid }' } ]
`,
);
const port = await closedPort();
const svc = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', 'serve'], {
  env: {
    ...process.env,
    PORT: String(port),
    HOST: '127.0.0.1',
    RULES_DIR: rulesDir,
    REDIS_URL: redis.url,
    LOG_LEVEL: 'warn',
  },
  stdio: ['ignore', 'pipe', 'inherit'],
});
let warnLines = 0;
svc.stdout.on(
  'data',
  (d: Buffer) =>
    (warnLines += d
      .toString()
      .split('\n')
      .filter((l) => l.includes('redis')).length),
);
for (let i = 0; i < 300; i++) {
  if (
    await fetch(`http://127.0.0.1:${port}/readyz`).then(
      (r) => r.ok,
      () => false,
    )
  )
    break;
  await new Promise((r) => setTimeout(r, 50));
}
const rss = () => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${svc.pid}/status`, 'utf8'))![1]) / 1024;
const agent = new Agent({ keepAlive: true, maxSockets: 256 });
const template = loadFixture('hpa-successful-rescale-up-resource-add');
const phases: Record<string, number[]> = { before: [], stall: [], after: [] };
const rssBy: Record<string, number[]> = { before: [], stall: [], after: [] };
let phase = 'before';
let n = 0;
const post = () =>
  new Promise<void>((resolve) => {
    const i = n++;
    const f = withEvent(template, (b, h) => {
      (b.metadata as { uid: string }).uid = `m-${i}`;
      h['ce-id'] = `m-${i}`;
    });
    const body = bodyOf(f);
    const p = phase;
    const t = performance.now();
    const req = request(
      `http://127.0.0.1:${port}/`,
      { method: 'POST', agent, headers: { ...f.headers, 'content-length': Buffer.byteLength(body) } },
      (res) => {
        res.resume();
        res.on('end', () => {
          phases[p].push(performance.now() - t);
          resolve();
        });
      },
    );
    req.on('error', () => resolve());
    req.end(body);
  });
const started = Date.now();
const sampler = setInterval(() => rssBy[phase].push(rss()), 1000);
let throttledBeforeStall = 0;
const pending: Promise<void>[] = [];
while (Date.now() - started < 45_000) {
  const el = Date.now() - started;
  if (phase === 'before' && el >= 10_000) {
    throttledBeforeStall = throttledSends;
    phase = 'stall';
    redis.pause();
  }
  if (phase === 'stall' && el >= 20_000) {
    redis.resume();
    phase = 'after';
  }
  pending.push(post());
  await new Promise((r) => setTimeout(r, 5)); // ≈ 200/s
}
await Promise.all(pending);
clearInterval(sampler);
const q = (a: number[], p: number) => {
  const s = [...a].sort((x, y) => x - y);
  return s[Math.floor(s.length * p)]?.toFixed(0);
};
for (const p of ['before', 'stall', 'after'])
  console.log(
    `${p}: ${phases[p].length} events, p50 ${q(phases[p], 0.5)} ms, p99 ${q(phases[p], 0.99)} ms, max ${q(phases[p], 0.9999)} ms; RSS ${Math.min(...rssBy[p]).toFixed(0)}–${Math.max(...rssBy[p]).toFixed(0)} MB`,
  );
console.log(
  `throttled rule (max 50 per 10 min, one key) sent ${throttledSends} in all (${throttledBeforeStall} before the stall); redis log lines ${warnLines}; events ${n}`,
);
svc.kill('SIGTERM');
await new Promise((r) => svc.once('exit', r));
await redis.stop();
sink.close();
agent.destroy();
