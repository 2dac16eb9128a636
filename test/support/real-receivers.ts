/**
 * Real receivers from Debian's packages, started on 127.0.0.1 with their state in a temporary folder:
 * Prometheus Alertmanager, Prometheus, graphite-web. Readiness is polled,
 * never slept for; each is stopped by its PID.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { closedPort } from './ports.js';

export interface Receiver {
  url: string;
  stop(): Promise<void>;
}

async function waitReady(url: string, child: ChildProcess, output: () => string, timeoutMs = 30_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`exited with ${child.exitCode}:\n${output()}`);
    if (
      await fetch(url).then(
        (r) => r.ok,
        () => false,
      )
    )
      return;
    if (Date.now() > end) throw new Error(`not ready within ${timeoutMs} ms (${url}):\n${output()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

async function run(
  command: string,
  args: string[],
  readyPath: string,
  port: number,
  dir: string,
  env: Record<string, string> = {},
): Promise<Receiver> {
  const child = spawn(command, args, { cwd: dir, env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-4000)));
  child.stderr.on('data', (d: Buffer) => (output = (output + d.toString()).slice(-4000)));
  const url = `http://127.0.0.1:${port}`;
  const stop = async () => {
    if (child.exitCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await exited;
    }
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    await waitReady(`${url}${readyPath}`, child, () => output);
  } catch (err) {
    await stop();
    throw err;
  }
  return { url, stop };
}

export async function startAlertmanager(): Promise<Receiver> {
  const dir = mkdtempSync(join(tmpdir(), 'alertmanager-'));
  writeFileSync(
    join(dir, 'alertmanager.yml'),
    'route:\n  receiver: none\n  group_wait: 1s\nreceivers:\n  - name: none\n',
  );
  const port = await closedPort();
  return run(
    'prometheus-alertmanager',
    [
      `--config.file=${dir}/alertmanager.yml`,
      `--storage.path=${dir}/data`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--cluster.listen-address=',
    ],
    '/-/ready',
    port,
    dir,
  );
}

export interface PrometheusOptions {
  /** Labels every scraped series gets (as a PodMonitor adds namespace, pod …). */
  labels?: Record<string, string>;
  /** A rules file's text: loaded, and evaluated every second. */
  rules?: string;
  /** More command-line flags. */
  flags?: string[];
}

export async function startPrometheus(target: string, options: PrometheusOptions = {}): Promise<Receiver> {
  const dir = mkdtempSync(join(tmpdir(), 'prometheus-'));
  const labels = options.labels ? `\n        labels: ${JSON.stringify(options.labels)}` : '';
  const rules = options.rules === undefined ? '' : 'rule_files: ["rules.yml"]\n';
  if (options.rules !== undefined) writeFileSync(join(dir, 'rules.yml'), options.rules);
  writeFileSync(
    join(dir, 'prometheus.yml'),
    `global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n${rules}scrape_configs:\n  - job_name: kube-event-rules\n    static_configs:\n      - targets: ["${target}"]${labels}\n`,
  );
  const port = await closedPort();
  return run(
    'prometheus',
    [
      `--config.file=${dir}/prometheus.yml`,
      `--storage.tsdb.path=${dir}/data`,
      `--web.listen-address=127.0.0.1:${port}`,
      ...(options.flags ?? []),
    ],
    '/-/ready',
    port,
    dir,
  );
}

/** graphite-web under Django's development server, with a settings module and SQLite in the folder. */
export async function startGraphiteWeb(): Promise<Receiver> {
  const dir = mkdtempSync(join(tmpdir(), 'graphite-'));
  for (const sub of ['storage', 'log', 'whisper']) mkdirSync(join(dir, sub));
  writeFileSync(
    join(dir, 'ker_graphite_settings.py'),
    [
      'from graphite.settings import *',
      "SECRET_KEY = 'kube-event-rules-test'",
      `STORAGE_DIR = '${dir}/storage/'`,
      `LOG_DIR = '${dir}/log/'`,
      `INDEX_FILE = '${dir}/storage/index'`,
      `WHISPER_DIR = '${dir}/whisper/'`,
      `STANDARD_DIRS = ['${dir}/whisper/']`,
      `DATABASES = {'default': {'NAME': '${dir}/graphite.db', 'ENGINE': 'django.db.backends.sqlite3'}}`,
      "ALLOWED_HOSTS = ['*']",
      '',
    ].join('\n'),
  );
  const env = { DJANGO_SETTINGS_MODULE: 'ker_graphite_settings', PYTHONPATH: dir };
  const migrate = spawnSync('/usr/bin/python3', ['-m', 'django', 'migrate', '--run-syncdb', '-v', '0'], {
    cwd: dir,
    env: { ...process.env, ...env },
    encoding: 'utf8',
  });
  if (migrate.status !== 0) throw new Error(`graphite-web migrate failed: ${migrate.stderr}`);
  const port = await closedPort();
  return run(
    '/usr/bin/python3',
    ['-m', 'django', 'runserver', `127.0.0.1:${port}`, '--noreload'],
    '/events/get_data',
    port,
    dir,
    env,
  );
}

/** redis-server, no persistence, on a free loopback port; ready when it answers PING. */
export async function startRedis(
  port?: number,
): Promise<Receiver & { port: number; pid: number; pause(): void; resume(): void }> {
  const dir = mkdtempSync(join(tmpdir(), 'redis-'));
  port ??= await closedPort();
  const child = spawn(
    'redis-server',
    ['--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', 'no', '--dir', dir],
    { stdio: 'ignore' },
  );
  const { createConnection } = await import('node:net');
  const ping = () =>
    new Promise<boolean>((resolve) => {
      const socket = createConnection(port, '127.0.0.1');
      socket.on('error', () => resolve(false));
      socket.on('connect', () => socket.write('PING\r\n'));
      socket.on('data', (d) => {
        resolve(d.toString().startsWith('+PONG'));
        socket.destroy();
      });
    });
  const end = Date.now() + 10_000;
  while (!(await ping())) {
    if (child.exitCode !== null || Date.now() > end) throw new Error('redis-server did not start');
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    pid: child.pid!,
    /** SIGSTOP: the server keeps its connections open and answers nothing (a stall, not an outage). */
    pause: () => void child.kill('SIGSTOP'),
    resume: () => void child.kill('SIGCONT'),
    async stop() {
      if (child.exitCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGCONT'); // a stopped process would hold the SIGTERM until continued
        child.kill('SIGTERM');
        await exited;
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
