/**
 * The service as it runs in production: `src/main.ts serve` in its own Node process, configured only by
 * its environment (a kubeconfig of its own ServiceAccount), its JSON log lines collected for assertions.
 */
import { spawn } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { closedPort } from '../../support/ports.js';
import { sampleValue } from '../../support/running-service.js';
import { waitUntil } from '../../support/kube-fixtures.js';
import { root } from './cluster.js';

export interface SourceStatus {
  source: string;
  rules: string[];
  errors: string[];
}

export interface ServiceProcess {
  url: string;
  logs: Record<string, any>[];
  status(): Promise<{ ready: boolean; cluster: string; sources: SourceStatus[] }>;
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  stop(): Promise<void>;
}

export async function startServiceProcess(env: Record<string, string>): Promise<ServiceProcess> {
  const port = await closedPort();
  const home = await mkdtemp(join(tmpdir(), 'ker-home-')); // no ~/.kube/config of the machine's
  const rulesDir = await mkdtemp(join(tmpdir(), 'ker-rules-')); // rules come from ConfigMaps only
  const child = spawn(process.execPath, ['--import', 'tsx', join(root, 'src/main.ts'), 'serve'], {
    cwd: root,
    env: {
      PATH: process.env.PATH ?? '',
      HOME: home,
      HOST: '127.0.0.1',
      PORT: String(port),
      RULES_DIR: rulesDir,
      LOG_LEVEL: 'debug',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const logs: Record<string, any>[] = [];
  const stderr: string[] = [];
  createInterface({ input: child.stdout }).on('line', (line) => {
    try {
      logs.push(JSON.parse(line) as Record<string, any>);
    } catch {
      logs.push({ msg: line });
    }
  });
  createInterface({ input: child.stderr }).on('line', (line) => stderr.push(line));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));

  const url = `http://127.0.0.1:${port}`;
  await waitUntil(
    'the service answers /readyz 200',
    async () => {
      if (child.exitCode !== null)
        throw new Error(
          `the service exited with ${child.exitCode}: ${stderr.join('\n')}\n${JSON.stringify(logs.slice(-5))}`,
        );
      return (await fetch(`${url}/readyz`).catch(() => undefined))?.status === 200;
    },
    60_000,
  );
  return {
    url,
    logs,
    status: async () => (await (await fetch(`${url}/status`)).json()) as Awaited<ReturnType<ServiceProcess['status']>>,
    metric: async (name, labels = {}) => sampleValue(await (await fetch(`${url}/metrics`)).text(), name, labels),
    async stop() {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      await exited;
    },
  };
}
