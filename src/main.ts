/**
 * kube-event-rules — process entry and CLI.
 *   kube-event-rules [serve]                 run the service (configuration from the environment, see README)
 *   kube-event-rules validate <files|dirs>   check rule documents or ConfigMap manifests
 *   kube-event-rules test --rules … <events> run events through rules, send nothing, print the report
 *   kube-event-rules playground [RULES_DIR]  the rule playground in the browser, on 127.0.0.1
 */
import { createServer, type Server } from 'node:http';
import { readFileSync } from 'node:fs';
import { loadConfig, type Config } from './config.js';
import { createLogger, type Logger } from './log.js';
import { createService } from './service.js';
import { connectKube, type KubeConnection } from './kube/connect.js';
import { testCommand } from './cli/test-rules.js';
import { validateCommand } from './cli/validate.js';
import { playgroundCommand } from './cli/playground-command.js';
import { COMMAND_HELP, isHelp } from './cli/command-help.js';
import { text } from 'node:stream/consumers';

const USAGE = `usage: kube-event-rules <command>

  serve                       run the service (default). Configuration comes from environment variables:
                              PORT, HOST, RULES_DIR, LOG_LEVEL, MAX_BODY_BYTES, DELIVERY_*, ... (see README)
  validate [--team <ns>] <file|dir>...
                              check rule documents (or ConfigMap manifests holding them); exit 1 on problems;
                              --team: as a team's documents in namespace <ns> (TEAM_* settings from the environment)
  test --rules <file|dir> [--secrets <secrets.yaml>] [--objects <manifests.yaml>] [--cluster] [--json]
       [--expect <golden.json> [--update-expect]]
       <event.json>... | -    run events (CloudEvent files, Event JSON, \`kubectl get events -o json\`) through
                              the rules; sends nothing; prints matched rules, deciding conditions, requests.
                              --objects: manifests for the object/owner/namespace facts; --cluster: read them
                              through the kubeconfig
  playground [RULES_DIR] [--port 8090] [--secrets <secrets.yaml>] [--cluster]
                              the rule playground in the browser, on 127.0.0.1, no cluster needed: pick or
                              paste an event, edit a rule document, see what would be sent as you type
  --version                   print the version
  --help                      print this help; <command> --help explains one command`;

function version(): string {
  const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
  return pkg.version;
}

/** serve starts the HTTP server and installs the graceful shutdown. */
export async function serve(config: Config, log: Logger): Promise<Server> {
  const kube = await connectKube(process.env);
  const service = await createService({ config, log, kube, version: version() });
  // Node checks the header and request timeouts only every connectionsCheckingInterval (30 s by default).
  // Koa's handler answers its own errors (its promise never rejects); node's listener returns nothing.
  const handle = service.app.callback();
  const server = createServer(
    { connectionsCheckingInterval: Math.min(1000, config.headersTimeoutMs / 2) },
    (req, res) => void handle(req, res),
  );
  // Slow senders must not hold sockets forever; keep-alive above common proxy idle timeouts (60 s).
  server.headersTimeout = config.headersTimeoutMs;
  server.requestTimeout = config.requestTimeoutMs;
  server.keepAliveTimeout = 65_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', (err: NodeJS.ErrnoException) =>
      reject(
        new UserError(
          err.code === 'EADDRINUSE'
            ? `${config.host}:${config.port} is already in use (EADDRINUSE): stop the other process or set PORT`
            : `cannot listen on ${config.host}:${config.port}: ${err.message}`,
        ),
      ),
    );
    server.listen(config.port, config.host, resolve);
  });
  const address = server.address();
  log.info({ address, rulesDir: config.rulesDir, version: version() }, 'kube-event-rules listening');
  const handleMetrics = config.metricsPort ? service.metricsApp.callback() : undefined;
  const metricsServer = handleMetrics ? createServer((req, res) => void handleMetrics(req, res)) : undefined;
  if (metricsServer) {
    await new Promise<void>((resolve, reject) => {
      metricsServer.once('error', (err) =>
        reject(new UserError(`cannot listen on METRICS_PORT ${config.host}:${config.metricsPort}: ${err.message}`)),
      );
      metricsServer.listen(config.metricsPort, config.host, resolve);
    });
    log.info({ address: metricsServer.address() }, 'metrics and probes listening');
  }
  if (kube) await reportKubeReachable(kube, config, log);
  else
    log.info(
      'no Kubernetes cluster configured: running on the embedded default (rules from RULES_DIR; Reference mode, enrichment facts, ConfigMap rules and secretKeyRef are off)',
    );
  await service.ready;
  log.info({ rules: service.store.current.rules.length }, 'rules loaded');

  let stopping = false;
  const shutdown = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info(
      { signal, timeoutMs: config.shutdownTimeoutMs },
      'shutting down: no new requests, finishing in-flight deliveries',
    );
    service.drain();
    const force = setTimeout(() => {
      log.warn('shutdown deadline reached; closing remaining connections');
      server.closeAllConnections();
    }, config.shutdownTimeoutMs);
    force.unref();
    // Stop accepting; close the service's stores (Redis) only once the requests in flight were answered,
    // i.e. their deliveries recorded — closing them first would lose the records and resend after a restart.
    server.close(() => {
      void service
        .close()
        .catch((err: unknown) => log.error({ err }, 'shutdown: closing the service failed'))
        .then(() => {
          log.info('stopped');
          process.exit(0);
        });
    });
    // Keep-alive connections become idle once their request is answered; close them as they do.
    const idle = setInterval(() => server.closeIdleConnections(), 100);
    idle.unref();
    server.closeIdleConnections();
  };
  process.on('SIGTERM', () => shutdown('SIGTERM'));
  process.on('SIGINT', () => shutdown('SIGINT'));
  return server;
}

/** A user's mistake (bad flag, path, port): printed as one line, no stack trace. */
class UserError extends Error {}

/** reportKubeReachable asks the API server for its version once, so the log says what is true. */
async function reportKubeReachable(kube: KubeConnection, config: Config, log: Logger): Promise<void> {
  const fields = { cluster: kube.description, ruleConfigMaps: config.kube.rulesSelector || 'off' };
  try {
    const { VersionApi } = await import('@kubernetes/client-node');
    const version = await Promise.race([
      kube.kc.makeApiClient(VersionApi).getCode(),
      new Promise<never>((_, reject) =>
        setTimeout(
          () => reject(new Error(`no answer within ${config.kube.timeoutMs} ms`)),
          config.kube.timeoutMs,
        ).unref(),
      ),
    ]);
    log.info({ ...fields, serverVersion: version.gitVersion }, 'connected to Kubernetes');
  } catch (err) {
    log.warn(
      { ...fields, error: (err as Error).message },
      'Kubernetes API not reachable yet; the watches keep retrying and readiness waits for them',
    );
  }
}

async function main(argv: string[]): Promise<number> {
  const [command = 'serve'] = argv;
  if (command === '--help' || command === '-h' || command === 'help') {
    console.log(USAGE);
    return 0;
  }
  if (command === '--version') {
    console.log(version());
    return 0;
  }
  const print = (line: string) => console.log(line);
  if (COMMAND_HELP[command] && argv.slice(1).some(isHelp)) {
    console.log(COMMAND_HELP[command]);
    return 0;
  }
  try {
    if (command === 'validate') return await validateCommand(argv.slice(1), print);
    if (command === 'test') return await testCommand(argv.slice(1), print, () => text(process.stdin));
    if (command === 'playground') {
      await playgroundCommand(argv.slice(1), print);
      return -1; // keep serving
    }
  } catch (err) {
    console.error(`kube-event-rules ${command}: ${(err as Error).message}`);
    return 1;
  }
  if (command !== 'serve') {
    console.error(`kube-event-rules: unknown command "${command}"\n\n${USAGE}`);
    return 2;
  }
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    console.error(`kube-event-rules: ${(err as Error).message}`);
    return 2;
  }
  const log = createLogger(config.logLevel);
  // Never die on a stray rejection: log it (a crash would lose every in-flight event).
  process.on('unhandledRejection', (reason) => log.error({ err: reason }, 'unhandled promise rejection'));
  try {
    await serve(config, log);
  } catch (err) {
    if (!(err instanceof UserError)) throw err;
    console.error(`kube-event-rules: ${err.message}`);
    return 1;
  }
  return -1; // keep running
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (err: unknown) => {
    console.error('kube-event-rules: failed to start:', err);
    process.exit(1);
  },
);
