/**
 * npm run bench — prints throughput, latency and memory of kube-event-rules (numbers, not assertions).
 *
 *   npm run bench                 end to end at 10/100/1000 rules vs the bare-Koa ceiling, in-process
 *                                 pipeline rates, steady 1,000 events/s latency
 *   npm run bench -- --quick      shorter runs
 *   npm run bench -- --soak       also a 10-minute soak at 1,000 events/s, RSS every minute
 *   npm run bench -- --soak-only  only the soak
 *   npm run bench -- --https-only only the HTTPS-sink run (HTTPS against HTTP delivery throughput)
 *
 * The service runs as a child process (the real CLI) with LOG_LEVEL=warn; the load generator and the
 * capture sink share this process. Everything is on 127.0.0.1.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { createServer } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { parse, parseAllDocuments, stringify } from 'yaml';
import { closedLoop, openLoop, type LoadResult } from './load.js';
import { event, ruleFiles } from './workload.js';
import { measurePipeline } from './pipeline-rate.js';
import { closedPort } from '../test/support/ports.js';
import { createTestPki } from '../test/support/test-pki.js';

/** What the bench reads of deploy/base/deployment.yaml. */
type Manifest = {
  kind?: string;
  spec?: { template?: { spec?: { containers?: { env?: { name: string; value?: string }[] }[] } } };
};

const quick = process.argv.includes('--quick');
const soak = process.argv.includes('--soak');
const soakOnly = process.argv.includes('--soak-only');
const httpsOnly = process.argv.includes('--https-only');
const WORKLOADS = [
  ['1 % per rule', true],
  ['1 match per event', false],
] as const;
const SECONDS = quick ? 3 : 8;
const CONCURRENCY = 32;
const RULE_COUNTS = [10, 100, 1000];

/** A sink that answers 200 at once and only counts (requests, and connections); HTTPS with `tls`. */
async function startSink(tls?: {
  cert: string;
  key: string;
}): Promise<{ url: string; count: () => number; connections: () => number; close: () => Promise<void> }> {
  let received = 0;
  let connections = 0;
  const handler = (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => {
    req.resume();
    req.on('end', () => {
      received++;
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  };
  const server = tls ? createHttpsServer(tls, handler) : createServer(handler);
  server.on(tls ? 'secureConnection' : 'connection', () => connections++);
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `${tls ? 'https' : 'http'}://127.0.0.1:${(server.address() as AddressInfo).port}`,
    count: () => received,
    connections: () => connections,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

interface Child {
  process: ChildProcess;
  url: string;
  pid: number;
}

/**
 * The service is measured as deployed: with the node flags of the image's ENTRYPOINT and the NODE_OPTIONS
 * (heap limits) the Deployment sets, both read from their files so the bench never drifts from them.
 * `NODE_OPTIONS=… npm run bench` overrides the latter for experiments.
 */
let deployed: ReturnType<typeof readDeployedNode> | undefined;
const deployedNode = () => (deployed ??= readDeployedNode());

async function readDeployedNode(): Promise<{ args: string[]; nodeOptions: string }> {
  const dockerfile = await readFile(new URL('../Dockerfile', import.meta.url), 'utf8');
  const entrypoint = JSON.parse(/^ENTRYPOINT\s+(\[.*\])\s*$/m.exec(dockerfile)![1]) as string[];
  const args = entrypoint.slice(1, entrypoint.indexOf('dist/main.js'));
  if (process.env.NODE_OPTIONS !== undefined) return { args, nodeOptions: process.env.NODE_OPTIONS };
  const manifest = await readFile(new URL('../deploy/base/deployment.yaml', import.meta.url), 'utf8');
  const deployment = parseAllDocuments(manifest)
    .map((d) => d.toJS() as Manifest | null)
    .find((d) => d?.kind === 'Deployment');
  const env = (deployment?.spec?.template?.spec?.containers?.[0]?.env ?? []) as { name: string; value?: string }[];
  return { args, nodeOptions: env.find((e) => e.name === 'NODE_OPTIONS')?.value ?? '' };
}

/** cpuMs: user + system CPU time a process has used so far (/proc/<pid>/stat, clock ticks of 10 ms). */
async function cpuMs(pid: number): Promise<number> {
  const fields = (await readFile(`/proc/${pid}/stat`, 'utf8')).split(') ')[1].split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/** startChild runs a server script on a free port and waits until `readyPath` answers 200. */
async function startChild(args: string[], env: Record<string, string>, readyPath: string): Promise<Child> {
  const port = await closedPort();
  const child = spawn(process.execPath, args, {
    env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn', ...env },
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  let exited = false;
  child.on('exit', () => (exited = true));
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (exited || Date.now() > deadline) throw new Error(`${args.join(' ')} did not become ready`);
    const ok = await fetch(`http://127.0.0.1:${port}${readyPath}`).then(
      (r) => r.ok,
      () => false,
    );
    if (ok) return { process: child, url: `http://127.0.0.1:${port}/`, pid: child.pid! };
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function rssMb(pid: number, field: 'VmRSS' | 'VmHWM'): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/(\d+) kB/.exec(status.split('\n').find((l) => l.startsWith(field))!)![1]) / 1024;
}

async function stop(child: Child): Promise<void> {
  const exited = new Promise((r) => child.process.once('exit', r));
  child.process.kill('SIGTERM');
  await exited;
}

const fmt = (r: LoadResult) =>
  `${r.rate.toFixed(0).padStart(6)} events/s  p50 ${r.p50.toFixed(2).padStart(6)} ms  p99 ${r.p99.toFixed(2).padStart(7)} ms  (${r.ok} ok, ${r.errors} errors)`;

/** Rates of the pipeline in this process, indexed and evaluating every rule. */
async function inProcess(): Promise<void> {
  console.log('in-process pipeline (parse → normalize → match → render, no HTTP):');
  for (const [label, perRule] of WORKLOADS) {
    for (const count of RULE_COUNTS) {
      const namespaces = perRule ? undefined : count;
      const indexed = await measurePipeline(count, true, quick ? 1 : 2, namespaces);
      const full = await measurePipeline(count, false, quick ? 1 : 2, namespaces);
      console.log(
        `  ${label.padEnd(17)} ${String(count).padStart(4)} rules: ${indexed.rate.toFixed(0).padStart(6)} events/s indexed, ${full.rate.toFixed(0).padStart(6)} events/s evaluating every rule (${indexed.matchesPerEvent.toFixed(2)} matches/event)`,
      );
    }
  }
}

/** The ceiling: a bare Koa receiver under the same load. */
async function ceiling(): Promise<LoadResult> {
  const child = await startChild(['--import', 'tsx', 'bench/ceiling-app.ts'], {}, '/');
  await closedLoop(child.url, event, CONCURRENCY, 1);
  const result = await closedLoop(child.url, event, CONCURRENCY, SECONDS);
  console.log(
    `  ceiling (bare Koa: parse + validate + 204): ${fmt(result)}  peak RSS ${(await rssMb(child.pid, 'VmHWM')).toFixed(0)} MB`,
  );
  await stop(child);
  return result;
}

/** startService runs the service from dist/ with `count` generated rules delivering to the sink (with this `tls`). */
async function startService(
  dir: string,
  sinkUrl: string,
  count: number,
  namespaces?: number,
  tls?: object,
): Promise<Child> {
  const rulesDir = await mkdtemp(join(dir, `rules-${count}-`));
  for (const [name, text] of Object.entries(ruleFiles(count, sinkUrl, namespaces))) {
    const document = parse(text) as { destinations: { sink: Record<string, unknown> } };
    if (tls) document.destinations.sink.tls = tls;
    await writeFile(join(rulesDir, name), tls ? stringify(document) : text);
  }
  const node = await deployedNode();
  return startChild(
    [...node.args, 'dist/main.js', 'serve'],
    { RULES_DIR: rulesDir, NODE_OPTIONS: node.nodeOptions },
    '/readyz',
  );
}

/** endToEnd: the service at each rule count under the closed loop, against the ceiling. */
async function endToEnd(dir: string, sink: Awaited<ReturnType<typeof startSink>>, ceilingRate: number): Promise<void> {
  for (const [label, perRule] of WORKLOADS) {
    const rates = new Map<number, number>();
    for (const count of RULE_COUNTS) {
      const namespaces = perRule ? undefined : count;
      const make = (i: number) => event(i, namespaces);
      const service = await startService(dir, sink.url, count, namespaces);
      await closedLoop(service.url, make, CONCURRENCY, 1, 10_000_000); // warm-up
      const before = sink.count();
      const cpuBefore = await cpuMs(service.pid);
      const result = await closedLoop(service.url, make, CONCURRENCY, SECONDS);
      const cpuPerEvent = (((await cpuMs(service.pid)) - cpuBefore) * 1000) / result.ok;
      const deliveries = (sink.count() - before) / result.ok;
      rates.set(count, result.rate);
      console.log(
        `  ${label.padEnd(17)} ${String(count).padStart(4)} rules: ${fmt(result)}  ${deliveries.toFixed(2)} deliveries/event  service CPU ${cpuPerEvent.toFixed(0)} µs/event  peak RSS ${(await rssMb(service.pid, 'VmHWM')).toFixed(0)} MB  = ${((100 * result.rate) / ceilingRate).toFixed(0)} % of the ceiling`,
      );
      if (count === 100 && perRule) {
        const steady = await openLoop(service.url, make, 1000, SECONDS, 20_000_000);
        console.log(
          `   100 rules, steady 1,000 events/s: ${fmt(steady)}  (p99 from the send: ${steady.p99FromSend?.toFixed(2)} ms)`,
        );
      }
      await stop(service);
    }
    console.log(
      `  ${label}: 1,000-rule rate / 10-rule rate = ${((100 * rates.get(1000)!) / rates.get(10)!).toFixed(0)} %\n`,
    );
  }
}

/**
 * httpsVsHttp: the same 100 rules (one delivery per event) to an HTTP sink and to an HTTPS sink whose
 * certificate comes from a private CA the destination trusts with tls.ca — the cost of TLS per delivery once
 * connections are pooled, and how many TLS connections the runs needed. Both services stay up and their
 * runs alternate, so a change in the machine's load hits both alike; the ratio is the median of the rounds'.
 */
async function httpsVsHttp(dir: string): Promise<void> {
  const pki = createTestPki();
  const ca = pki.createCa('bench-ca');
  const plain = await startSink();
  const secure = await startSink(ca.issue('sink'));
  const make = (i: number) => event(i, 100);
  const services = {
    HTTP: await startService(dir, plain.url, 100, 100),
    HTTPS: await startService(dir, secure.url, 100, 100, { ca: { file: ca.certFile } }),
  };
  try {
    console.log(
      'HTTPS sink (private CA, tls.ca from a file) against HTTP sink, 100 rules, 1 delivery per event, alternating runs:',
    );
    // Warm-up.
    for (const service of Object.values(services)) await closedLoop(service.url, make, CONCURRENCY, 1, 40_000_000);
    const ratios: number[] = [];
    for (let round = 1; round <= (quick ? 3 : 5); round++) {
      const rates: Record<string, number> = {};
      for (const [label, sink] of [
        ['HTTP', plain],
        ['HTTPS', secure],
      ] as const) {
        const before = sink.count();
        const result = await closedLoop(services[label].url, make, CONCURRENCY, SECONDS, 41_000_000 + round * 100_000);
        rates[label] = result.rate;
        console.log(
          `  round ${round} ${label.padEnd(5)}: ${fmt(result)}  ${((sink.count() - before) / result.ok).toFixed(2)} deliveries/event`,
        );
      }
      ratios.push(rates.HTTPS / rates.HTTP);
    }
    ratios.sort((a, b) => a - b);
    console.log(
      `  TLS connections: ${secure.connections()} for ${secure.count()} HTTPS deliveries (pooled keep-alive); HTTP: ${plain.connections()} for ${plain.count()}`,
    );
    console.log(
      `  HTTPS / HTTP throughput = ${ratios[Math.floor(ratios.length / 2)].toFixed(2)} (median of ${ratios.map((r) => r.toFixed(2)).join(', ')})\n`,
    );
  } finally {
    await stop(services.HTTP);
    await stop(services.HTTPS);
    await plain.close();
    await secure.close();
    pki.remove();
  }
}

/** soakRun: 10 minutes at a steady 1,000 events/s with 100 rules; RSS every minute. */
async function soakRun(dir: string, sinkUrl: string): Promise<void> {
  const service = await startService(dir, sinkUrl, 100);
  console.log(
    `soak: 10 minutes at 1,000 events/s, 100 rules, RSS at start ${(await rssMb(service.pid, 'VmRSS')).toFixed(0)} MB`,
  );
  for (let minute = 1; minute <= 10; minute++) {
    const r = await openLoop(service.url, (i) => event(i), 1000, 60, 30_000_000 + minute * 100_000);
    console.log(
      `  minute ${String(minute).padStart(2)}: ${fmt(r)}  RSS ${(await rssMb(service.pid, 'VmRSS')).toFixed(0)} MB`,
    );
  }
  await stop(service);
}

async function main(): Promise<void> {
  execFileSync('npm', ['run', '-s', 'build'], { stdio: 'inherit' }); // the service runs from dist/, as in the image
  console.log(
    `machine: ${cpus().length} cores (${cpus()[0]?.model ?? 'unknown'}), node ${process.version}, ${new Date().toISOString()}`,
  );
  const node = await deployedNode();
  console.log(
    `service: node ${[...node.args, 'dist/main.js', 'serve'].join(' ')} with NODE_OPTIONS="${node.nodeOptions}" (as the image and deploy/base/deployment.yaml run it)`,
  );
  const sink = await startSink();
  const dir = await mkdtemp(join(tmpdir(), 'ker-bench-'));
  try {
    if (httpsOnly) {
      await httpsVsHttp(dir);
    } else if (!soakOnly) {
      console.log(
        `load: closed loop, ${CONCURRENCY} in flight, ${SECONDS} s per run; events: real-shaped ApiServerSource CloudEvents, 100 namespaces, realistic reason mix`,
      );
      console.log(
        'workloads: "1 % per rule" — rule i matches namespace ns-(i mod 100), so 1,000 rules give ≈10 deliveries per event;',
      );
      console.log('           "1 match per event" — as many namespaces as rules, so the rule count alone varies\n');
      await inProcess();
      console.log('\nend to end over loopback:');
      const top = await ceiling();
      await endToEnd(dir, sink, top.rate);
      await httpsVsHttp(dir);
    }
    if (soak || soakOnly) await soakRun(dir, sink.url);
  } finally {
    await sink.close();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
