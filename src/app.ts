/**
 * createApp wires the Koa application: error handling on top, then the routes. No logic lives here.
 */
import Router from '@koa/router';
import Koa from 'koa';
import type { Logger } from './log.js';
import { typeLabel, type Metrics } from './metrics.js';
import { errorMiddleware } from './receive/error-middleware.js';
import { dryRunRoute, eventsRoute, type EventsRouteDeps } from './receive/events-route.js';
import { knownSecrets } from './redact.js';
import type { Authenticators } from './auth/authenticate.js';
import { addPlaygroundRoutes, type PlaygroundDeps } from './playground/routes.js';

export interface AppDeps extends EventsRouteDeps {
  log: Logger;
  metrics: Metrics;
  status: () => unknown;
  auth: Authenticators;
  /** The rule playground (page and API); its API sits behind the same guard as /dry-run. */
  playground?: PlaygroundDeps;
}

/** The kubelet's routes: no credentials. */
function addProbes(router: Router, deps: Pick<AppDeps, 'isReady'>): void {
  router.get('/healthz', (ctx) => {
    ctx.body = { status: 'ok' };
  });
  router.get('/readyz', (ctx) => {
    const ready = deps.isReady();
    ctx.status = ready ? 200 : 503;
    ctx.body = { status: ready ? 'ready' : 'not ready' };
  });
}

/** Prometheus's route: no credentials (counts and rule names, no secrets). */
function addMetrics(router: Router, deps: Pick<AppDeps, 'metrics'>): void {
  router.get('/metrics', async (ctx) => {
    ctx.type = deps.metrics.registry.contentType;
    ctx.body = await deps.metrics.registry.metrics();
  });
}

/** createMetricsApp serves METRICS_PORT: /metrics and the probes, nothing else. */
export function createMetricsApp(deps: Pick<AppDeps, 'metrics' | 'isReady'>): Koa {
  const app = new Koa();
  app.silent = true;
  const router = new Router();
  addMetrics(router, deps);
  addProbes(router, deps);
  app.use(router.routes());
  app.use(router.allowedMethods());
  return app;
}

export function createApp(deps: AppDeps): Koa {
  const app = new Koa();
  app.silent = true; // errorMiddleware logs; Koa's default handler would print stack traces to stderr
  const router = new Router();
  const events = eventsRoute(deps);
  // Exactly `/` takes the fast path below; the router's route is what `//` and other spellings of it reach.
  router.post('/', deps.auth.sender, events);
  router.post('/dry-run', deps.auth.admin, dryRunRoute(deps));
  router.get('/status', deps.auth.admin, (ctx) => {
    ctx.body = deps.status();
  });
  addProbes(router, deps); // the kubelet keeps probing the event port
  if (!deps.config.metricsPort) addMetrics(router, deps);
  if (deps.playground) addPlaygroundRoutes(router, deps.playground, deps.auth.admin);
  app.use(
    errorMiddleware(
      deps.log,
      (headers, error, path) => {
        if (path.replace(/\/+/g, '/') !== '/') return; // dry runs change no metrics (`//` is POST / too)
        const type = typeof headers['ce-type'] === 'string' ? headers['ce-type'] : undefined;
        deps.metrics.eventsReceived.inc({
          type: typeLabel(type),
          outcome: error.status === 413 ? 'too_large' : 'invalid',
        });
      },
      // Outermost: no JSON answer (a report, a status, an error detail) carries a secret value.
      (ctx) => {
        if (ctx.body !== null && typeof ctx.body === 'object') ctx.body = knownSecrets.redactDeep<unknown>(ctx.body);
      },
    ),
  );
  // The hot path: POST / goes straight to its handler, not through the router's match of every route.
  const sender = deps.auth.sender;
  // No async frame of its own: the middlewares' promises are passed through (Koa's types say `any`).
  app.use((ctx, next) =>
    ctx.method === 'POST' && ctx.path === '/'
      ? (sender(ctx, () => events(ctx, next)) as Promise<void>)
      : (next() as Promise<void>),
  );
  app.use(router.routes());
  app.use(router.allowedMethods());
  return app;
}
