/**
 * npm run bench:compare -- <other checkout> — this build against another, end to end, interleaved.
 *
 * Two runs of `npm run bench` minutes apart differ by 10–30 % on a shared 2-core machine even when the
 * bare-Koa ceiling agrees, so a before/after of two separate runs cannot show a 10 % change. Here both
 * services run at once against one sink; for each workload they take turns in short closed-loop rounds
 * (the order flips every round) and the report is the median of the per-round ratios (this / other) with
 * their range, for throughput and for service CPU per event. The other checkout must be built
 * (`npm ci && npm run build` there). Service flags as in bench.ts (the image's heap settings).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { closedLoop } from './load.js';
import { event, ruleFiles } from './workload.js';
import { closedPort } from '../test/support/ports.js';

const other = process.argv.slice(2).find((arg) => !arg.startsWith('--'));
if (!other) throw new Error('usage: npm run bench:compare -- <other checkout, built> [--rounds N]');
const roundsAt = process.argv.indexOf('--rounds');
const ROUNDS = roundsAt > 0 ? Number(process.argv[roundsAt + 1]) : 12;
const SECONDS = 1;
const CONCURRENCY = 32;
const WORKLOADS: [label: string, rules: number, namespaces: number | undefined][] = [
  ['1 % per rule, 10 rules', 10, undefined],
  ['1 % per rule, 100 rules', 100, undefined],
  ['1 % per rule, 1000 rules', 1000, undefined],
  ['1 match per event, 10 rules', 10, 10],
  ['1 match per event, 100 rules', 100, 100],
  ['1 match per event, 1000 rules', 1000, 1000],
];

interface Service {
  url: string;
  pid: number;
  child: ChildProcess;
}

async function cpuMs(pid: number): Promise<number> {
  const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

async function start(checkout: string, rulesDir: string): Promise<Service> {
  const port = await closedPort();
  const child = spawn(
    process.execPath,
    ['--single-threaded-gc', '--expose-gc', join(checkout, 'dist/main.js'), 'serve'],
    {
      cwd: checkout,
      env: {
        ...process.env,
        PORT: String(port),
        HOST: '127.0.0.1',
        LOG_LEVEL: 'warn',
        RULES_DIR: rulesDir,
        NODE_OPTIONS: '--max-old-space-size=256 --max-semi-space-size=8',
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  );
  const url = `http://127.0.0.1:${port}/`;
  for (const deadline = Date.now() + 30_000; Date.now() < deadline; await new Promise((r) => setTimeout(r, 50))) {
    if (
      await fetch(`${url}readyz`).then(
        (r) => r.ok,
        () => false,
      )
    )
      return { url, pid: child.pid!, child };
  }
  throw new Error(`${checkout} did not become ready`);
}

const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)];
const percent = (ratio: number) => `${ratio >= 1 ? '+' : '−'}${Math.abs((ratio - 1) * 100).toFixed(0)} %`;

async function main(): Promise<void> {
  let received = 0;
  const sink = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      received++;
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  sink.keepAliveTimeout = 65_000;
  await new Promise<void>((r) => sink.listen(0, '127.0.0.1', r));
  const sinkUrl = `http://127.0.0.1:${(sink.address() as AddressInfo).port}`;
  const dir = await mkdtemp(join(tmpdir(), 'bench-compare-'));
  const checkouts = { this: resolve('.'), other: resolve(other!) };
  console.log(
    `this: ${checkouts.this}\nother: ${checkouts.other}\n${ROUNDS} interleaved rounds of ${SECONDS} s per workload`,
  );
  console.log('workload                          throughput this/other (range)      CPU per event this/other (range)');
  try {
    for (const [label, rules, namespaces] of WORKLOADS) {
      const rulesDir = await mkdtemp(join(dir, 'rules-'));
      for (const [name, text] of Object.entries(ruleFiles(rules, sinkUrl, namespaces)))
        await writeFile(join(rulesDir, name), text);
      const services = { this: await start(checkouts.this, rulesDir), other: await start(checkouts.other, rulesDir) };
      const make = (i: number) => event(i, namespaces);
      for (const service of Object.values(services)) await closedLoop(service.url, make, CONCURRENCY, 1, 10_000_000);
      const rate: number[] = [];
      const cpu: number[] = [];
      for (let round = 0; round < ROUNDS; round++) {
        const order = round % 2 === 0 ? (['this', 'other'] as const) : (['other', 'this'] as const);
        const result: Record<string, { rate: number; cpu: number }> = {};
        for (const which of order) {
          const service = services[which];
          const before = await cpuMs(service.pid);
          const run = await closedLoop(service.url, make, CONCURRENCY, SECONDS, 20_000_000 + round * 100_000);
          result[which] = { rate: run.rate, cpu: ((await cpuMs(service.pid)) - before) / run.ok };
        }
        rate.push(result.this.rate / result.other.rate);
        cpu.push(result.this.cpu / result.other.cpu);
      }
      const range = (values: number[]) => `${percent(Math.min(...values))} … ${percent(Math.max(...values))}`;
      console.log(
        `${label.padEnd(33)} ${percent(median(rate)).padStart(6)} (${range(rate)})`.padEnd(69) +
          `${percent(median(cpu)).padStart(6)} (${range(cpu)})`,
      );
      for (const service of Object.values(services)) service.child.kill('SIGTERM');
      await new Promise((r) => setTimeout(r, 500));
    }
  } finally {
    sink.closeAllConnections();
    sink.close();
    await rm(dir, { recursive: true, force: true });
  }
  console.log(`(sink received ${received} deliveries)`);
}

await main();
