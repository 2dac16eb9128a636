/**
 * Standalone mode, for clusters without Knative: the service watches Events itself (events.k8s.io/v1,
 * or core/v1 where that API is missing) and feeds each change, as the CloudEvent ApiServerSource would
 * have sent, into the same pipeline with the same occurrence semantics.
 * - A restart resumes from the watch position kept with the dedup store (src/receive/watch-position.ts):
 *   Events changed since are handled, the others are not sent again. Without a saved position, Events
 *   whose last occurrence is older than `maxAgeMs` are skipped and the rest are counted as possible duplicates.
 * - There is no Broker to redeliver: an event with a failed action is retried in-process with backoff
 *   (already delivered actions are not resent), a bounded number of times.
 */
import { CloudEvent } from 'cloudevents';
import {
  ApiException,
  CoreV1Api,
  EventsV1Api,
  type KubernetesListObject,
  type KubernetesObject,
} from '@kubernetes/client-node';
import { abortingConfiguration } from '../kube/aborting-configuration.js';
import type { KubeConnection } from '../kube/connect.js';
import { startResilientInformer, type ChangeType, type ResilientInformer } from '../kube/resilient-informer.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { EventReport } from '../pipeline.js';
import { PositionTracker, revision, type PositionStore } from './watch-position.js';

/** The deadline of one list of all Events. */
const EVENT_LIST_TIMEOUT_MS = 60_000;

/** How often the watch position is saved (and once more on stop). */
const SAVE_EVERY_MS = 1000;

export interface WatchEventsOptions {
  maxAgeMs: number;
  relistAfterMs: number;
  /** In-process retries of an event whose delivery failed. */
  retries: number;
  /** Where the watch position is kept (the dedup store's: Redis with REDIS_URL). */
  position?: PositionStore;
}

export interface EventWatch {
  /** Which Events API is watched. */
  api: Promise<string>;
  synced: Promise<void>;
  stop(): Promise<void>;
}

/** A watched Event, core/v1 or events.k8s.io/v1: the times lastSeen reads (strings once made plain JSON). */
type Raw = KubernetesObject &
  Partial<
    Record<
      'lastTimestamp' | 'deprecatedLastTimestamp' | 'eventTime' | 'firstTimestamp' | 'deprecatedFirstTimestamp',
      string | Date
    >
  > & {
    series?: { lastObservedTime?: string | Date };
  };

/** lastSeen: when an Event last occurred, whatever API shape it has. */
function lastSeen(event: Raw): number {
  const candidates = [
    event.series?.lastObservedTime,
    event.lastTimestamp,
    event.deprecatedLastTimestamp,
    event.eventTime,
    event.firstTimestamp,
    event.deprecatedFirstTimestamp,
  ];
  for (const value of candidates) {
    const time = value ? Date.parse(String(value)) : NaN;
    if (!Number.isNaN(time)) return time;
  }
  return Date.now();
}

export function toCloudEvent(type: ChangeType, event: Raw, apiVersion: string): CloudEvent<unknown> {
  const { name = '', namespace = '', uid = '', resourceVersion = '' } = event.metadata ?? {};
  const plural = apiVersion === 'v1' ? 'v1' : apiVersion;
  return new CloudEvent({
    specversion: '1.0',
    id: `${uid}/${resourceVersion}/${type}`,
    source: 'kube-event-rules/standalone',
    type: `dev.knative.apiserver.resource.${type}`,
    subject: `/apis/${plural}/namespaces/${namespace}/events/${name}`,
    datacontenttype: 'application/json',
    kind: 'Event',
    name,
    namespace,
    apiversion: apiVersion,
    data: event,
  });
}

export function watchEvents(
  connection: KubeConnection,
  options: WatchEventsOptions,
  processEvent: (ce: CloudEvent<unknown>) => Promise<EventReport>,
  log: Logger,
  metrics: Metrics,
): EventWatch {
  // Listing every Event of a large cluster takes a while, but one the API server never answers is aborted.
  const lists = abortingConfiguration(connection.kc, EVENT_LIST_TIMEOUT_MS);
  const core = new CoreV1Api(lists);
  const eventsV1 = new EventsV1Api(lists);
  let informer: ResilientInformer | undefined;
  let stopped = false;
  const timers = new Set<NodeJS.Timeout>();

  /** handle processes one change; `done` runs once it is delivered, rejected or given up (not when stopped). */
  async function handle(ce: CloudEvent<unknown>, attempt: number, done: () => void): Promise<void> {
    const report = await processEvent(ce);
    if (report.outcome !== 'retry' && !report.actions.some((a) => a.outcome === 'failed')) return done();
    if (stopped) return; // still owed: the saved position stays before it, so the next process handles it
    if (attempt >= options.retries) {
      log.error(
        { ceId: ce.id, attempts: attempt + 1 },
        'standalone: delivery still failing after the in-process retries; giving up on this event',
      );
      return done();
    }
    const delay = Math.min(30_000, 1000 * 2 ** attempt);
    const timer = setTimeout(() => {
      timers.delete(timer);
      void handle(ce, attempt + 1, done).catch((err: unknown) =>
        log.error({ err: (err as Error).message }, 'standalone: event processing failed'),
      );
    }, delay);
    timers.add(timer);
  }

  const api = (async () => {
    try {
      await eventsV1.listEventForAllNamespaces({ limit: 1 });
      return 'events.k8s.io/v1';
    } catch (err) {
      if (err instanceof ApiException && err.code === 404) return 'v1';
      return 'events.k8s.io/v1'; // transient: the informer's restart logic takes over
    }
  })();

  let saving: NodeJS.Timeout | undefined;
  let save: () => Promise<void> = async () => undefined;

  const synced = api.then(async (apiVersion) => {
    const key = `standalone-position:${apiVersion}`;
    const saved = revision(await options.position?.get(key).catch(() => undefined));
    const position = new PositionTracker(saved ?? 0);
    let savedAt = saved;
    save = async () => {
      const current = position.position;
      if (!options.position || current === 0 || current === savedAt) return;
      savedAt = current;
      await options.position
        .set(key, String(current))
        .catch((err: unknown) => log.warn({ err: (err as Error).message }, 'standalone: watch position not saved'));
    };
    saving = setInterval(() => void save(), SAVE_EVERY_MS);
    saving.unref();
    let starting = true;
    if (saved === undefined) {
      log.warn(
        { api: apiVersion, maxAgeMs: options.maxAgeMs },
        'standalone: no saved watch position (first start, or no REDIS_URL): Events of the last STANDALONE_MAX_AGE_SECONDS are sent, counted as possible duplicates',
      );
    }
    log.info({ api: apiVersion, maxAgeMs: options.maxAgeMs, resumeAfter: saved }, 'standalone: watching Events');
    const list = (
      apiVersion === 'v1' ? () => core.listEventForAllNamespaces() : () => eventsV1.listEventForAllNamespaces()
    ) as () => Promise<KubernetesListObject<Raw>>;
    informer = startResilientInformer<Raw>({
      name: 'events',
      kc: connection.kc,
      path: apiVersion === 'v1' ? '/api/v1/events' : '/apis/events.k8s.io/v1/events',
      list,
      log,
      metrics,
      relistAfterMs: options.relistAfterMs,
      onChange(type, object) {
        // client-node's listed objects carry Dates; rules and JSONata need plain JSON.
        const event = JSON.parse(JSON.stringify(object)) as Raw;
        const rev = revision(event.metadata?.resourceVersion);
        if (type === 'add' && saved !== undefined && rev !== undefined && rev <= saved) return position.seen(rev); // handled before the restart
        if (
          type === 'add' &&
          (saved === undefined || rev === undefined) &&
          Date.now() - lastSeen(event) > options.maxAgeMs
        ) {
          if (rev !== undefined) position.seen(rev);
          return; // older than the start window
        }
        if (starting && saved === undefined) metrics.standaloneResent.inc(); // may have been sent before a restart
        if (rev !== undefined) position.begin(rev);
        const done = () => (rev === undefined ? undefined : position.end(rev));
        void handle(toCloudEvent(type, event, apiVersion), 0, done).catch((err: unknown) =>
          log.error({ err: (err as Error).message }, 'standalone: event processing failed'),
        );
      },
    });
    await informer.synced;
    starting = false;
  });

  return {
    api,
    synced,
    async stop() {
      stopped = true;
      for (const timer of timers) clearTimeout(timer);
      clearInterval(saving);
      await api;
      await informer?.stop();
      await save();
    },
  };
}
