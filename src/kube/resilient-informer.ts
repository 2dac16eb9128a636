/**
 * A client-node 1.4 informer made safe to run for months:
 * - it stops for good on any error but 410 → we restart it with exponential backoff, capped at a few
 *   seconds and jittered: a failing watch keeps probing the API, so readiness and rule edits follow an API
 *   recovery within seconds (a 60 s cap made them lag a minute), and replicas do not retry in step;
 * - `start()` resolves even when the first list failed → "synced" is tracked from a successful list;
 * - a half-open watch can hang silently → a watchdog relists after a period without activity;
 * - a throwing handler would crash the process → handlers are wrapped, failures logged.
 */
import {
  makeInformer,
  type KubeConfig,
  type KubernetesListObject,
  type KubernetesObject,
} from '@kubernetes/client-node';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';

export type ChangeType = 'add' | 'update' | 'delete';

export interface ResilientInformerOptions<T extends KubernetesObject> {
  name: string;
  kc: KubeConfig;
  path: string;
  labelSelector?: string;
  list: () => Promise<KubernetesListObject<T>>;
  onChange: (type: ChangeType, object: T) => void;
  log: Logger;
  metrics: Metrics;
  /** Relist when nothing (no event, no reconnect, no list) happened for this long. */
  relistAfterMs: number;
  backoff?: { initialMs: number; maxMs: number };
  random?: () => number;
}

/** The default restart backoff: 0.5 s, doubling, at most 5 s. */
export const WATCH_BACKOFF = { initialMs: 500, maxMs: 5000 };

/** restartDelayMs: equal jitter — between half and all of the current backoff step. */
export function restartDelayMs(stepMs: number, random: () => number = Math.random): number {
  return Math.round(stepMs / 2 + random() * (stepMs / 2));
}

export interface ResilientInformer {
  /** Resolves after the first successful list (and its handlers ran). */
  synced: Promise<void>;
  stop(): Promise<void>;
}

export function startResilientInformer<T extends KubernetesObject>(
  options: ResilientInformerOptions<T>,
): ResilientInformer {
  const { name, log, metrics } = options;
  const backoff = options.backoff ?? WATCH_BACKOFF;
  const random = options.random ?? Math.random;
  let delay = backoff.initialMs;
  let lastActivity = Date.now();
  let stopped = false;
  let restartTimer: NodeJS.Timeout | undefined;
  let markSynced: () => void;
  const synced = new Promise<void>((resolve) => (markSynced = resolve));

  const listFn = async () => {
    const list = await options.list();
    lastActivity = Date.now();
    delay = backoff.initialMs;
    metrics.informerLastSync.set({ informer: name }, Date.now() / 1000);
    // Handlers for the listed objects run synchronously after this returns; resolve after them.
    setImmediate(() => markSynced());
    return list;
  };
  const informer = makeInformer<T>(options.kc, options.path, listFn, options.labelSelector);

  for (const type of ['add', 'update', 'delete'] as const) {
    informer.on(type, (object: T) => {
      lastActivity = Date.now();
      try {
        options.onChange(type, object);
      } catch (err) {
        log.error(
          { informer: name, type, object: object.metadata?.name, err: (err as Error).message },
          'informer handler failed',
        );
      }
    });
  }
  informer.on('connect', () => {
    lastActivity = Date.now();
  });
  informer.on('error', (err: unknown) => {
    if (stopped) return;
    metrics.informerRestarts.inc({ informer: name });
    const wait = restartDelayMs(delay, random);
    log.warn(
      { informer: name, err: (err as Error)?.message ?? String(err), retryInMs: wait },
      'watch failed; restarting with backoff (last good state stays in force)',
    );
    clearTimeout(restartTimer);
    restartTimer = setTimeout(() => {
      if (!stopped) informer.start().catch(() => undefined);
    }, wait);
    delay = Math.min(backoff.maxMs, delay * 2);
  });

  const watchdog = setInterval(
    () => {
      if (stopped || Date.now() - lastActivity < options.relistAfterMs) return;
      log.info({ informer: name, quietMs: Date.now() - lastActivity }, 'no watch activity; relisting');
      lastActivity = Date.now();
      void informer
        .stop()
        .then(() => (stopped ? undefined : informer.start()))
        .catch(() => undefined);
    },
    Math.max(50, Math.min(options.relistAfterMs / 4, 30_000)),
  );
  watchdog.unref();

  informer.start().catch(() => undefined); // failures arrive on 'error'
  return {
    synced,
    async stop() {
      stopped = true;
      clearTimeout(restartTimer);
      clearInterval(watchdog);
      await informer.stop().catch(() => undefined);
    },
  };
}
