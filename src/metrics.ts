/**
 * Metrics: the service's own prom-client Registry with every metric it exports.
 * Labels are rule, destination, CloudEvent type and outcome names — never event or object identity.
 */
import { Registry, Counter, Histogram, Gauge, collectDefaultMetrics } from 'prom-client';
import { matchesInputsTooLong } from './rules/conditions.js';
import { UserMetrics } from './deliver/user-metrics.js';

const PREFIX = 'kube_event_rules_';

/** The CloudEvent types we label by; anything else is counted as "other" to bound cardinality. */
const KNOWN_TYPES = new Set(
  ['resource', 'ref'].flatMap((mode) =>
    ['add', 'update', 'delete'].map((verb) => `dev.knative.apiserver.${mode}.${verb}`),
  ),
);

export function typeLabel(type: string | undefined): string {
  if (!type) return 'unknown';
  return KNOWN_TYPES.has(type) ? type : 'other';
}

/**
 * The kinds kube_requests_total labels by (what enrichment, Reference mode and secretKeyRef read in
 * practice); any other kind — event data can name any — is counted as "other".
 */
const KNOWN_KINDS = new Set([
  'Event',
  'Secret',
  'Pod',
  'Node',
  'Namespace',
  'Service',
  'PersistentVolumeClaim',
  'PersistentVolume',
  'ConfigMap',
  'Deployment',
  'ReplicaSet',
  'StatefulSet',
  'DaemonSet',
  'Job',
  'CronJob',
  'HorizontalPodAutoscaler',
]);

export function kindLabel(kind: string | undefined): string {
  return kind && KNOWN_KINDS.has(kind) ? kind : 'other';
}

export type Metrics = ReturnType<typeof createMetrics>;

/** One destination lane as the bulkheads see it at scrape time. */
export interface LaneSample {
  destination: string;
  inFlight: number;
  queued: number;
  /** 0 closed, 1 open, 2 half-open. */
  state: number;
}

/** What the load gauges read at scrape time. */
export interface LoadSample {
  actionsInFlight: number;
  templatesQueued: number;
}

/** createMetrics registers all metrics on a fresh Registry (one per service instance, so tests stay independent). */
export function createMetrics(options: { maxSeriesPerMetric?: number; teamMaxSeries?: number } = {}) {
  const registry = new Registry();
  // Unprefixed on purpose: the standard Node.js dashboards and alerts look for process_* and nodejs_*.
  collectDefaultMetrics({ register: registry });
  const registers = [registry];
  // The destination gauges are read from the bulkheads when scraped, not set on every delivery (six label
  // lookups per delivery, measured among the larger allocators). Lanes sharing a name add up; for the
  // breaker the worst state shows (open, then half-open).
  let lanes: () => LaneSample[] = () => [];
  const sampled = (pick: (lane: LaneSample) => number, combine: (a: number, b: number) => number) =>
    function collect(this: Gauge<'destination'>) {
      const values = new Map<string, number>();
      for (const lane of lanes()) values.set(lane.destination, combine(values.get(lane.destination) ?? 0, pick(lane)));
      this.reset();
      for (const [destination, value] of values) this.set({ destination }, value);
    };
  const add = (a: number, b: number) => a + b;
  let load: () => LoadSample = () => ({ actionsInFlight: 0, templatesQueued: 0 });
  let openRegions: () => Promise<number> = async () => 0;
  let digestGroups: () => Promise<number> = async () => 0;
  const worstState = (a: number, b: number) => (a === 1 || b === 1 ? 1 : Math.max(a, b));
  return {
    registry,
    /**
     * The metrics rule documents declare (destination kind `metric`): at most maxSeriesPerMetric series each,
     * teamMaxSeries per team namespace.
     */
    userMetrics: new UserMetrics(registry, options.maxSeriesPerMetric ?? 1000, options.teamMaxSeries ?? 1000),
    /** sampleLanes tells the destination gauges where to read the lanes from. */
    sampleLanes(read: () => LaneSample[]) {
      lanes = read;
    },
    /** sampleRegions tells the regions gauge where to count the open regions. */
    sampleRegions(read: () => Promise<number>) {
      openRegions = read;
    },
    /** sampleLoad tells the load gauges where to read the actions in flight and the template queue from. */
    sampleLoad(read: () => LoadSample) {
      load = read;
    },
    actionsInFlight: new Gauge({
      name: `${PREFIX}actions_in_flight`,
      help: 'Actions (events × matched actions) of requests being processed, against MAX_ACTIONS_IN_FLIGHT.',
      registers,
      collect(this: Gauge) {
        this.set(load().actionsInFlight);
      },
    }),
    templatesQueued: new Gauge({
      name: `${PREFIX}template_evaluations_queued`,
      help: 'Template evaluations waiting for a template worker (TEMPLATE_WORKERS).',
      registers,
      collect(this: Gauge) {
        this.set(load().templatesQueued);
      },
    }),
    eventsReceived: new Counter({
      name: `${PREFIX}events_received_total`,
      help: 'CloudEvents received, by CloudEvent type and outcome (matched, no_match, unresolved, invalid, too_large, retry, not_ready, over_capacity).',
      labelNames: ['type', 'outcome'] as const,
      registers,
    }),
    requestsRefused: new Counter({
      name: `${PREFIX}requests_refused_total`,
      help: 'Requests refused for their credential, by endpoint (events, admin) and reason (missing_credential, invalid_credential, verifier_unavailable).',
      labelNames: ['endpoint', 'reason'] as const,
      registers,
    }),
    ruleMatches: new Counter({
      name: `${PREFIX}rule_matches_total`,
      help: 'Events a rule matched.',
      labelNames: ['rule'] as const,
      registers,
    }),
    shadowMatches: new Counter({
      name: `${PREFIX}shadow_matches_total`,
      help: 'Events a shadow rule matched (it sends nothing).',
      labelNames: ['rule'] as const,
      registers,
    }),
    shadowDifferences: new Counter({
      name: `${PREFIX}shadow_differences_total`,
      help: 'Events on which a shadow rule differed from its live twin, by kind (only_shadow, only_live: matched by one of them; request: both matched, different requests).',
      labelNames: ['rule', 'kind'] as const,
      registers,
    }),
    deliveries: new Counter({
      name: `${PREFIX}deliveries_total`,
      help: 'Delivery outcomes per rule and destination (delivered, rejected, failed, skipped_duplicate, error).',
      labelNames: ['rule', 'destination', 'outcome'] as const,
      registers,
    }),
    deliveryAttempts: new Counter({
      name: `${PREFIX}delivery_attempts_total`,
      help: 'HTTP attempts per destination and result (2xx, 4xx, 5xx, 429, timeout, network, tls, proxy).',
      labelNames: ['destination', 'result'] as const,
      registers,
    }),
    deliveryDuration: new Histogram({
      name: `${PREFIX}delivery_duration_seconds`,
      help: 'Time from the first attempt to the final outcome of a delivery, retries included.',
      labelNames: ['destination'] as const,
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    suppressed: new Counter({
      name: `${PREFIX}suppressed_total`,
      help: 'Occurrences a rule matched but did not send because of its throttle.',
      labelNames: ['rule'] as const,
      registers,
    }),
    traceContextInvalid: new Counter({
      name: `${PREFIX}trace_context_invalid_total`,
      help: 'Malformed W3C trace context received (ignored): field traceparent or tracestate, from the request header or the CloudEvent extension.',
      labelNames: ['field', 'from'] as const,
      registers,
    }),
    templateErrors: new Counter({
      name: `${PREFIX}template_errors_total`,
      help: 'Template (JSONata) evaluation failures per rule: errors, timeouts, guard trips, non-JSON results.',
      labelNames: ['rule'] as const,
      registers,
    }),
    templateQuarantines: new Counter({
      name: `${PREFIX}template_quarantines_total`,
      help: 'Times a rule was quarantined after repeated template guard trips (its actions are answered 503 for 60 s).',
      labelNames: ['rule'] as const,
      registers,
    }),
    matchesInputTooLong: new Counter({
      name: `${PREFIX}matches_input_too_long_total`,
      help: '`matches` comparisons on a text longer than MATCHES_MAX_INPUT_BYTES: answered false without reading it.',
      registers,
      collect() {
        this.reset();
        this.inc(matchesInputsTooLong());
      },
    }),
    rulesLoaded: new Gauge({ name: `${PREFIX}rules_loaded`, help: 'Rules currently in force.', registers }),
    ruleLoadErrors: new Gauge({
      name: `${PREFIX}rule_load_errors`,
      help: 'Rule documents currently rejected, per source (1 = the source has an error; its last good version stays in force).',
      labelNames: ['source'] as const,
      registers,
    }),
    ruleReloads: new Counter({
      name: `${PREFIX}rule_reloads_total`,
      help: 'Rule set reloads by result (ok, error).',
      labelNames: ['result'] as const,
      registers,
    }),
    kubeRequests: new Counter({
      name: `${PREFIX}kube_requests_total`,
      help: 'Kubernetes API lookups by kind (a known kind or "other") and outcome (found, not_found, forbidden, refused, cached, stale, rate_limited, timeout, error).',
      labelNames: ['kind', 'outcome'] as const,
      registers,
    }),
    informerRestarts: new Counter({
      name: `${PREFIX}informer_restarts_total`,
      help: 'Watches restarted after an error, per informer.',
      labelNames: ['informer'] as const,
      registers,
    }),
    informerLastSync: new Gauge({
      name: `${PREFIX}informer_last_sync_timestamp_seconds`,
      help: 'When the informer last listed successfully (alert when this stops moving).',
      labelNames: ['informer'] as const,
      registers,
    }),
    destinationInFlight: new Gauge({
      name: `${PREFIX}destination_in_flight`,
      help: 'Deliveries in flight per destination.',
      labelNames: ['destination'] as const,
      registers,
      collect: sampled((lane) => lane.inFlight, add),
    }),
    destinationQueued: new Gauge({
      name: `${PREFIX}destination_queued`,
      help: 'Deliveries waiting for a slot per destination.',
      labelNames: ['destination'] as const,
      registers,
      collect: sampled((lane) => lane.queued, add),
    }),
    breakerState: new Gauge({
      name: `${PREFIX}destination_circuit_state`,
      help: 'Circuit breaker per destination: 0 closed, 1 open, 2 half-open.',
      labelNames: ['destination'] as const,
      registers,
      collect: sampled((lane) => lane.state, worstState),
    }),
    standaloneResent: new Counter({
      name: `${PREFIX}standalone_resent_total`,
      help: 'Standalone: Events sent on start without a saved watch position (possible duplicates of what was sent before the restart).',
      registers,
    }),
    regionsOpen: new Gauge({
      name: `${PREFIX}regions_open`,
      help: 'Change regions open: a start recorded, its end (or timeout) not delivered yet (all replicas, with Redis).',
      registers,
      async collect(this: Gauge) {
        this.set(await openRegions().catch(() => 0));
      },
    }),
    regionsClosed: new Counter({
      name: `${PREFIX}regions_closed_total`,
      help: "Change regions closed, by how (end: delivered at its end occurrence; timeout: delivered at the rule's timeout; dropped: the timeout's delivery kept failing).",
      labelNames: ['rule', 'how'] as const,
      registers,
    }),
    regionUnmatchedEnds: new Counter({
      name: `${PREFIX}region_unmatched_ends_total`,
      help: 'End occurrences of a region rule with no open region for their key (or before its start): not sent.',
      labelNames: ['rule'] as const,
      registers,
    }),
    digestGroups: new Gauge({
      name: `${PREFIX}digest_groups_open`,
      help: 'Digest groups recorded and not yet flushed (with Redis: of every replica).',
      registers,
      async collect(this: Gauge) {
        this.set(await digestGroups());
      },
    }),
    digestOccurrences: new Counter({
      name: `${PREFIX}digest_occurrences_total`,
      help: 'Occurrences a digest rule matched, by outcome (recorded, duplicate: recorded before; failed: the store could not record it, answered 503; over_capacity: DIGEST_MAX_GROUPS, answered 429).',
      labelNames: ['rule', 'outcome'] as const,
      registers,
    }),
    digestFlushes: new Counter({
      name: `${PREFIX}digest_flushes_total`,
      help: 'Digest group flushes by outcome (delivered; rejected: a destination refused it or it could not be rendered; retry: failed, tried again later; dropped: given up after DIGEST_FLUSH_ATTEMPTS; lost: still held in memory at shutdown).',
      labelNames: ['rule', 'outcome'] as const,
      registers,
    }),
    /** sampleDigestGroups tells the open-groups gauge where to count them. */
    sampleDigestGroups(read: () => Promise<number>) {
      digestGroups = read;
    },
    storeErrors: new Counter({
      name: `${PREFIX}store_errors_total`,
      help: 'Redis store operations that failed (the service then fails open: sends, admits).',
      labelNames: ['op'] as const,
      registers,
    }),
  };
}

export const DELIVERY_OUTCOMES = ['delivered', 'rejected', 'failed', 'skipped_duplicate', 'error'] as const;
export type DeliveryOutcome = (typeof DELIVERY_OUTCOMES)[number];

/** forgetRule drops every series of a rule that is no longer loaded, so removed rules do not linger. */
export function forgetRule(metrics: Metrics, rule: string, destinations: Iterable<string>): void {
  metrics.ruleMatches.remove({ rule });
  metrics.shadowMatches.remove({ rule });
  for (const kind of ['only_shadow', 'only_live', 'request']) metrics.shadowDifferences.remove({ rule, kind });
  metrics.templateErrors.remove({ rule });
  metrics.templateQuarantines.remove({ rule });
  metrics.suppressed.remove({ rule });
  metrics.regionUnmatchedEnds.remove({ rule });
  for (const how of ['end', 'timeout', 'dropped']) metrics.regionsClosed.remove({ rule, how });
  for (const outcome of ['recorded', 'duplicate', 'failed', 'over_capacity'])
    metrics.digestOccurrences.remove({ rule, outcome });
  for (const destination of destinations) {
    for (const outcome of DELIVERY_OUTCOMES) metrics.deliveries.remove({ rule, destination, outcome });
  }
}
