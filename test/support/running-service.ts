/**
 * Starts the real service (createService + node:http) on 127.0.0.1:0 with a temporary rules directory,
 * capturing its log records and `log` destination lines for assertions.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { loadConfig, type Config } from '../../src/config.js';
import { createLogger } from '../../src/log.js';
import { createService, type Service } from '../../src/service.js';
import type { Cluster } from '../../src/enrich/cluster.js';
import type { KubeConnection } from '../../src/kube/connect.js';
import { bodyOf, type EventFixture } from './fixtures.js';

export interface RunningService {
  url: string;
  service: Service;
  rulesDir: string;
  logs: Record<string, unknown>[];
  lines: Record<string, any>[];
  post(fixture: EventFixture): Promise<{ status: number; headers: Headers; text: string }>;
  postRaw(headers: Record<string, string>, body: string): Promise<{ status: number; headers: Headers; text: string }>;
  /** The sum of the /metrics samples of `name` with these labels (0 when there is none). */
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  writeRules(file: string, text: string): Promise<void>;
  stop(): Promise<void>;
}

export async function startService(
  options: {
    rules?: Record<string, string>;
    env?: Record<string, string>;
    config?: Partial<Config>;
    cluster?: Cluster;
    kube?: KubeConnection;
    awaitReady?: boolean;
  } = {},
): Promise<RunningService> {
  const rulesDir = await mkdtemp(join(tmpdir(), 'ker-rules-'));
  for (const [file, text] of Object.entries(options.rules ?? {})) await writeFile(join(rulesDir, file), text);
  const logs: Record<string, unknown>[] = [];
  const lines: Record<string, any>[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, done) {
      for (const line of chunk.toString().split('\n').filter(Boolean))
        logs.push(JSON.parse(line) as Record<string, unknown>);
      done();
    },
  });
  const config = { ...loadConfig({}), rulesDir, deliveryDeadlineMs: 3000, deliveryTimeoutMs: 1000, ...options.config };
  const service = await createService({
    config,
    log: createLogger('debug', stream),
    env: options.env ?? {},
    cluster: options.cluster,
    kube: options.kube,
    writeLine: (line) => lines.push(JSON.parse(line) as Record<string, any>),
  });
  if (options.awaitReady !== false) await service.ready;
  const handle = service.app.callback(); // answers its own errors: its promise never rejects
  const server: Server = createServer((req, res) => void handle(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const postRaw = async (headers: Record<string, string>, body: string) => {
    const response = await fetch(`${url}/`, { method: 'POST', headers, body });
    return { status: response.status, headers: response.headers, text: await response.text() };
  };
  return {
    url,
    service,
    rulesDir,
    logs,
    lines,
    post: (fixture) => postRaw(fixture.headers, bodyOf(fixture)),
    postRaw,
    async metric(name, labels = {}) {
      const text = await (await fetch(`${url}/metrics`)).text();
      return sampleValue(text, name, labels);
    },
    async writeRules(file, text) {
      await writeFile(join(rulesDir, file), text);
      await service.rules.reload();
    },
    async stop() {
      await service.close();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await rm(rulesDir, { recursive: true, force: true });
    },
  };
}

/** sampleValue sums the samples `name{labels…} value` in Prometheus text format; labels not given match any value. */
export function sampleValue(text: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(`${name}{`) && !line.startsWith(`${name} `)) continue;
    const wanted = Object.entries(labels).every(([k, v]) => line.includes(`${k}="${v}"`));
    if (wanted) sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}
