/**
 * createDryRunPipeline: the service's pipeline with nothing behind it that could send or remember —
 * for `kube-event-rules test` and the playground. Events go through it with `{ dryRun: true }`, as on
 * POST /dry-run, so what they report is what the service would do. Region starts are kept for the run, so a
 * start and its end among its events show the region the end would send.
 */
import { loadConfig } from '../config.js';
import { createMemoryDeliveredStore } from '../deliver/delivered-store.js';
import type { Sender } from '../deliver/destination.js';
import { createSenders } from '../deliver/kinds/registry.js';
import type { Cluster } from '../enrich/cluster.js';
import { createLogger } from '../log.js';
import { createMemoryThrottleStore } from '../match/throttle.js';
import { createMetrics } from '../metrics.js';
import { OccurrenceTracker } from '../normalize/occurrence.js';
import { createPipeline, type Pipeline } from '../pipeline.js';
import { createMemoryRegionStore } from '../store/region-store.js';
import type { RuleSet } from '../rules/rule-store.js';

/** Nothing behind a dry run reaches the network, even if an event were processed without `dryRun`. */
const SENDS_NOTHING: Sender = {
  async send() {
    return { outcome: 'failed', attempts: 0, error: 'a dry run sends nothing' };
  },
};

export function createDryRunPipeline(
  rules: () => RuleSet,
  cluster: Cluster,
  options: { env?: Record<string, string | undefined>; occurrences?: number } = {},
): { pipeline: Pipeline; tracker: OccurrenceTracker } {
  const tracker = new OccurrenceTracker(options.occurrences ?? 100_000);
  const config = loadConfig({});
  const metrics = createMetrics();
  const pipeline = createPipeline({
    config,
    rules,
    tracker,
    cluster,
    senders: createSenders({ network: SENDS_NOTHING, writeLine: () => undefined, userMetrics: metrics.userMetrics }),
    delivered: createMemoryDeliveredStore(0),
    throttle: createMemoryThrottleStore(),
    metrics,
    log: createLogger('silent'),
    env: options.env ?? process.env,
    dryRunRegions: createMemoryRegionStore(config.regions),
  });
  return { pipeline, tracker };
}
