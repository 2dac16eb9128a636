/**
 * A dry run is the pipeline over dependencies that send and remember nothing: senders that only show the
 * request, no delivered memory, throttles, occurrences, change regions and digest groups read but not written,
 * metrics nobody scrapes, no log, and every rule's conditions explained. POST /dry-run, `kube-event-rules test`
 * and the playground use it, so what they report is what the service would do.
 */
import { loadConfig } from './config.js';
import type { DeliveredStore } from './deliver/delivered-store.js';
import type { Sender } from './deliver/destination.js';
import { DESTINATION_KINDS, type Senders } from './deliver/kinds/registry.js';
import type { Cluster } from './enrich/cluster.js';
import { createLogger } from './log.js';
import { createMemoryThrottleStore, type ThrottleStore } from './match/throttle.js';
import { createMetrics, type Metrics } from './metrics.js';
import { OccurrenceTracker } from './normalize/occurrence.js';
import { createPipeline, type Pipeline, type PipelineDeps, type Quarantine } from './pipeline.js';
import type { RuleSet } from './rules/rule-store.js';
import { createMemoryRegionStore, readOnlyRegions } from './store/region-store.js';
import { createMemoryDigestStore, readOnlyDigests } from './match/digest-store.js';

/** Shows the request instead of sending it (the pipeline reports it, redacted). */
const SHOWS_ONLY: Sender = { send: async () => ({ outcome: 'rendered', attempts: 0 }) };
const SHOW_EVERY_KIND: Senders = Object.freeze(
  Object.fromEntries(Object.keys(DESTINATION_KINDS).map((kind) => [kind, SHOWS_ONLY])),
);
const NOTHING_DELIVERED: DeliveredStore = { has: async () => false, add: async () => undefined };

/** One silent logger for every dry run (a pino logger per playground draft stayed in memory). */
const SILENT = createLogger('silent');

/** One registry for every dry run: never exposed, so nothing a dry run counts is scraped. */
let unscraped: Metrics | undefined;
const unscrapedMetrics = () => (unscraped ??= createMetrics());

/** peeking: the throttle's answer for this occurrence, recording nothing. */
const peeking = (throttle: ThrottleStore): ThrottleStore => ({
  admit: (key, occurrence, windowMs, max) => throttle.admit(key, occurrence, windowMs, max, true),
});

/** A quarantine's state, read: a dry run's guard trip holds nothing back. */
const readingOnly = (quarantine: Quarantine): Quarantine => ({
  quarantinedUntil: (rule) => quarantine.quarantinedUntil(rule),
  trip: () => false,
});

/**
 * dryRunDeps: the service's own dependencies (rules, cluster, Secrets, tenancy, quarantine), with every effect removed.
 */
export function dryRunDeps(deps: PipelineDeps): PipelineDeps {
  return {
    ...deps,
    tracker: deps.tracker.readOnly(),
    senders: SHOW_EVERY_KIND,
    delivered: NOTHING_DELIVERED,
    throttle: peeking(deps.throttle),
    metrics: unscrapedMetrics(),
    log: SILENT,
    shadow: undefined,
    quarantine: deps.quarantine && readingOnly(deps.quarantine),
    regions: readOnlyRegions(deps.regions ?? createMemoryRegionStore(deps.config.regions)),
    digests: readOnlyDigests(deps.digests ?? createMemoryDigestStore(deps.config.dedupWindowMs)),
    explain: true,
  };
}

/**
 * createDryRunPipeline: a dry-run pipeline with nothing of a service behind it (the CLI's `test`, the
 * playground); `occurrences` remembers what the events it is given one after another looked like.
 */
export function createDryRunPipeline(
  rules: () => RuleSet,
  cluster: Cluster,
  options: { env?: Record<string, string | undefined>; occurrences?: number } = {},
): Pipeline {
  const tracker = new OccurrenceTracker(options.occurrences ?? 100_000);
  const config = loadConfig({});
  return createPipeline({
    ...dryRunDeps({
      config,
      rules,
      tracker,
      cluster,
      senders: SHOW_EVERY_KIND,
      delivered: NOTHING_DELIVERED,
      throttle: createMemoryThrottleStore(),
      metrics: unscrapedMetrics(),
      log: SILENT,
      env: options.env ?? process.env,
    }),
    // Events given one after another (a file, then the next) are remembered, as the service would, and a
    // region's start and its end among them pair.
    tracker,
    regions: createMemoryRegionStore(config.regions),
  });
}
