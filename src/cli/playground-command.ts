/**
 * kube-event-rules playground [RULES_DIR] [--port N] [--secrets <file>] [--cluster]
 * The rule playground on this machine: the page and its API on 127.0.0.1 only (no credentials, so never
 * on another address), no cluster needed. Rule files of RULES_DIR are offered as starting points;
 * objects for the object/owner/namespace facts are pasted into the page; --cluster looks the rest up
 * read-only through the kubeconfig.
 */
import { parseOptions } from './parse-options.js';
import Router from '@koa/router';
import Koa from 'koa';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { stat } from 'node:fs/promises';
import { loadConfig } from '../config.js';
import { NO_CLUSTER, type Cluster } from '../enrich/cluster.js';
import { connectKube } from '../kube/connect.js';
import { createLogger } from '../log.js';
import { createMetrics } from '../metrics.js';
import { addPlaygroundRoutes } from '../playground/routes.js';
import { errorMiddleware } from '../receive/error-middleware.js';
import { knownSecrets } from '../redact.js';
import { localSecrets } from './local-secrets.js';

export const PLAYGROUND_USAGE =
  'usage: kube-event-rules playground [RULES_DIR] [--port <port, default 8090>] [--secrets <secrets.yaml>] [--cluster]';

interface PlaygroundOptions {
  rulesDir?: string;
  port: number;
  secrets: string[];
  cluster: boolean;
}

function parsePlaygroundArgs(args: string[]): PlaygroundOptions {
  const { values, positionals } = parseOptions({
    args,
    allowPositionals: true,
    options: {
      port: { type: 'string', default: '8090' },
      secrets: { type: 'string', multiple: true, default: [] },
      cluster: { type: 'boolean', default: false },
    },
  });
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new Error(`--port ${values.port}: not a port number`);
  if (positionals.length > 1) throw new Error(`one RULES_DIR only (got ${positionals.join(' and ')})`);
  return { rulesDir: positionals[0], port, secrets: values.secrets, cluster: values.cluster };
}

/** startPlayground listens on 127.0.0.1 and returns the server and the page's URL. */
export async function startPlayground(args: string[]): Promise<{ server: Server; url: string }> {
  const options = parsePlaygroundArgs(args);
  if (options.rulesDir !== undefined && !(await stat(options.rulesDir).catch(() => undefined))?.isDirectory()) {
    throw new Error(`${options.rulesDir}: not a directory of rule files`);
  }
  const rulesDir =
    options.rulesDir ?? ((await stat('rules').catch(() => undefined))?.isDirectory() ? 'rules' : undefined);
  const config = loadConfig({});
  const log = createLogger('silent');
  let cluster: Cluster = NO_CLUSTER;
  if (options.cluster) {
    const connection = await connectKube({ ...process.env, CLUSTER: undefined });
    if (!connection) throw new Error('--cluster: no kubeconfig found (set KUBECONFIG or create ~/.kube/config)');
    const { createKubeCluster } = await import('../kube/cluster-runtime.js');
    cluster = createKubeCluster(connection, config.kube, createMetrics(), log);
  }
  if (options.secrets.length > 0) cluster = { ...cluster, secrets: await localSecrets(options.secrets) };

  const app = new Koa();
  app.silent = true;
  const router = new Router();
  addPlaygroundRoutes(
    router,
    {
      mode: 'local',
      rulesDir,
      cluster,
      env: process.env,
      // This machine's own user types the templates: they run here, under JSONata's guards, like \`test\`.
      templates: { timeoutMs: config.templateTimeoutMs, maxOutputBytes: config.templateMaxOutputBytes },
      configMapSelector: config.kube.rulesSelector,
      maxBodyBytes: config.maxBodyBytes,
    },
    // Loopback only: whoever can reach it is on this machine, as the one who started it.
    (_ctx, next) => next(),
  );
  app.use(async (ctx, next) => {
    await next();
    if (ctx.body !== null && typeof ctx.body === 'object' && !Buffer.isBuffer(ctx.body))
      ctx.body = knownSecrets.redactDeep<unknown>(ctx.body);
  });
  app.use(errorMiddleware(log, () => undefined));
  app.use(router.routes());
  app.use(router.allowedMethods());

  const handle = app.callback(); // answers its own errors: its promise never rejects
  const server = createServer((req, res) => void handle(req, res));
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        new Error(
          err.code === 'EADDRINUSE'
            ? `127.0.0.1:${options.port} is already in use: choose another with --port`
            : err.message,
        ),
      ),
    );
    server.listen(options.port, '127.0.0.1', resolve);
  });
  const { port } = server.address() as AddressInfo;
  return { server, url: `http://127.0.0.1:${port}/playground/` };
}

/** playgroundCommand starts the playground and prints where it is; it runs until interrupted. */
export async function playgroundCommand(args: string[], print: (line: string) => void): Promise<void> {
  let started: { server: Server; url: string };
  try {
    started = await startPlayground(args);
  } catch (err) {
    throw new Error(`${(err as Error).message}\n${PLAYGROUND_USAGE}`);
  }
  print(`rule playground: ${started.url}  (127.0.0.1 only; Ctrl+C stops it)`);
  const stop = () => started.server.close(() => process.exit(0));
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
}
