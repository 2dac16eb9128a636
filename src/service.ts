/**
 * createService builds one running instance from its configuration: rule store and loader, pipeline,
 * metrics, HTTP app. Construction only; the process entry (main.ts) listens and handles signals.
 */
import type Koa from 'koa';
import { createApp, createMetricsApp } from './app.js';
import { createAuthenticators } from './auth/authenticate.js';
import type { Config } from './config.js';
import { createMemoryDeliveredStore } from './deliver/delivered-store.js';
import { createMemoryThrottleStore } from './match/throttle.js';
import { createBulkheads, withBulkhead } from './deliver/bulkhead.js';
import { createHttpSender } from './deliver/http-sender.js';
import { createSenders } from './deliver/kinds/registry.js';
import { createBackgroundDelivery, type BackgroundDelivery } from './deliver/background-delivery.js';
import { createDigestFlusher, type DigestFlusher } from './deliver/digest-flusher.js';
import { createMemoryDigestStore } from './match/digest-store.js';
import { NO_CLUSTER, type Cluster } from './enrich/cluster.js';
import type { Logger } from './log.js';
import { createMetrics, type Metrics } from './metrics.js';
import { OccurrenceTracker } from './normalize/occurrence.js';
import { createPipeline, type Pipeline, type PipelineDeps } from './pipeline.js';
import { dryRunDeps } from './dry-run.js';
import { TemplateQuarantine } from './render/template-quarantine.js';
import { RuleStore } from './rules/rule-store.js';
import { setRegexLimits } from './rules/conditions.js';
import { compileTenancyPolicy } from './rules/tenancy-policy.js';
import { watchRulesDirectory, type DirectoryWatch } from './rules/watch-directory.js';
import type { KubeConnection } from './kube/connect.js';
import type { EventWatch } from './receive/watch-events.js';
import { countReport } from './receive/events-route.js';
import { createTemplateSandbox } from './render/template-sandbox.js';
import { RecentEvents } from './playground/recent-events.js';
import { ShadowLedger } from './match/shadow.js';
import { createActionCapacity } from './receive/action-capacity.js';
import { createBodyBytesInFlight } from './receive/body-bytes-in-flight.js';
import type { RedisStores } from './store/redis-stores.js';
import { createTracing } from './trace/tracing.js';
import { withTraceHeaders } from './trace/trace-headers.js';
import { createMemoryRegionStore } from './store/region-store.js';
import { startRegionTimeouts, type RegionTimeouts } from './deliver/region-timeouts.js';

export interface ServiceOptions {
  config: Config;
  log: Logger;
  env?: Record<string, string | undefined>;
  cluster?: Cluster;
  /** Where the `log` destination writes its lines (default: stdout). */
  writeLine?: (line: string) => void;
  /** The cluster connection, when there is one (main.ts: connectKube). */
  kube?: KubeConnection;
  /** The service's version, for the spans' resource (default: 0.0.0). */
  version?: string;
}

export interface Service {
  app: Koa;
  /** /metrics and the probes, for METRICS_PORT. */
  metricsApp: Koa;
  store: RuleStore;
  metrics: Metrics;
  rules: DirectoryWatch;
  /** Resolves once every rule source loaded (directory, and ConfigMaps with a cluster). */
  ready: Promise<void>;
  cluster: Cluster;
  /** Standalone mode's Event watch, when enabled. */
  standalone?: EventWatch;
  /** The Redis stores, with REDIS_URL. */
  redis?: RedisStores;
  /** Delivers an action outside any request (scheduled work), through the same senders and delivered memory. */
  background: BackgroundDelivery;
  /** Flushes digest groups in the background (started once ready). */
  digests: DigestFlusher;
  /** Stop reporting ready (first step of a graceful shutdown). */
  drain(): void;
  /**
   * Stop watching, let the standalone events in flight finish (up to SHUTDOWN_TIMEOUT_SECONDS), then close
   * Redis. Call it once the HTTP server has closed, so the requests in flight have recorded their deliveries.
   */
  close(): Promise<void>;
}

export async function createService(options: ServiceOptions): Promise<Service> {
  const { config, log } = options;
  const metrics = createMetrics({
    maxSeriesPerMetric: config.metricMaxSeriesPerMetric,
    teamMaxSeries: config.teamMaxMetricSeries,
  });
  const connection = options.kube;
  const kube = connection ? await import('./kube/cluster-runtime.js') : undefined;
  // One client-side rate limit (KUBE_QPS) for every API request the service makes: lookups and Warning Events.
  const apiBucket = kube ? new kube.TokenBucket(config.kube.requestsPerSecond, config.kube.burst) : undefined;
  const cluster =
    options.cluster ??
    (kube && connection
      ? kube.createKubeCluster(connection, { ...config.kube, bucket: apiBucket }, metrics, log)
      : NO_CLUSTER);
  const tenancy = compileTenancyPolicy(config.tenancy);
  const sandbox =
    config.templateWorkers > 0
      ? createTemplateSandbox({
          workers: config.templateWorkers,
          maxQueued: config.templateQueue,
          budgetMs: config.templateTimeoutMs,
          heapMb: config.templateWorkerHeapMb,
          maxOutputBytes: config.templateMaxOutputBytes,
        })
      : undefined;
  setRegexLimits(config.regex);
  const templates = {
    timeoutMs: config.templateTimeoutMs,
    maxOutputBytes: config.templateMaxOutputBytes,
    sandbox,
    maxSourceBytes: config.rulesMaxSourceBytes,
  };
  const store = new RuleStore(templates, metrics, log, tenancy);
  const tracker = new OccurrenceTracker(config.occurrenceCacheSize);
  const redis = config.redisUrl
    ? (await import('./store/redis-stores.js')).createRedisStores(
        {
          url: config.redisUrl,
          windowMs: config.dedupWindowMs,
          timeoutMs: config.redisTimeoutMs,
          fallbackCacheSize: config.dedupCacheSize,
          regionLimits: config.regions,
        },
        metrics,
        log,
      )
    : undefined;
  const writeLine = options.writeLine ?? ((line: string) => process.stdout.write(`${line}\n`));
  const tracing = await createTracing(config.tracing, {
    metrics,
    log,
    version: options.version ?? '0.0.0',
    shutdownTimeoutMs: config.shutdownTimeoutMs,
  });
  const shadow = new ShadowLedger();
  const senders = createSenders({
    network: withBulkhead(
      withTraceHeaders(
        createHttpSender({
          attempts: config.deliveryAttempts,
          retryAfterMaxMs: config.retryAfterMaxMs,
          metrics,
          env: config.proxyEnv,
        }),
      ),
      createBulkheads(config.destinations, metrics),
    ),
    writeLine,
    userMetrics: metrics.userMetrics,
  });
  const delivered = redis?.delivered ?? createMemoryDeliveredStore(config.dedupWindowMs, config.dedupCacheSize);
  const env = options.env ?? process.env;
  // Deliveries outside any request (digest flushes) share the senders, their policies and the delivered memory.
  const background = createBackgroundDelivery({ config, cluster, tenancy, env, senders, delivered, metrics, log });
  const regions = redis?.regions ?? createMemoryRegionStore(config.regions);
  metrics.sampleRegions(() => regions.size());
  const digestStore = redis?.digests ?? createMemoryDigestStore(config.dedupWindowMs, config.dedupCacheSize);
  metrics.sampleDigestGroups(() => digestStore.groups());
  // A claim outlasts a flush: each action runs at most to its delivery deadline.
  const digests = createDigestFlusher({
    store: digestStore,
    rules: () => store.current,
    background,
    metrics,
    log,
    maxAttempts: config.digest.flushAttempts,
    leaseMs: config.deliveryDeadlineMs + 5000,
  });
  const pipelineDeps: PipelineDeps = {
    shadow,
    quarantine: new TemplateQuarantine(),
    config,
    rules: () => store.current,
    tracker,
    cluster,
    senders,
    delivered,
    throttle: redis?.throttle ?? createMemoryThrottleStore(),
    metrics,
    log,
    env,
    tenancy,
    regions,
    digests: digestStore,
  };
  const pipeline = createPipeline(pipelineDeps);
  const dryRunPipeline = createPipeline(dryRunDeps(pipelineDeps));
  const inFlight = trackInFlight(pipeline);
  // RULES_DIR="" turns the directory off (rules from ConfigMaps only); a directory that is set must be readable.
  const rules = config.rulesDir
    ? watchRulesDirectory(config.rulesDir, store, log, {
        maxSourceBytes: config.rulesMaxSourceBytes,
        retryMs: config.rulesRetryMs,
      })
    : NO_DIRECTORY;
  const configMaps =
    kube && connection && config.kube.rulesSelector
      ? kube.watchRuleConfigMaps(
          connection,
          store,
          kube.createRuleErrorReporter(connection.kc, log, apiBucket),
          {
            selector: config.kube.rulesSelector,
            namespaces: config.kube.watchNamespaces,
            clusterNamespaces: new Set(
              config.kube.clusterNamespaces.length > 0 ? config.kube.clusterNamespaces : [connection.namespace],
            ),
            relistAfterMs: config.kube.relistAfterMs,
            requestTimeoutMs: config.kube.timeoutMs,
            teamMaxDocuments: config.tenancy.documentsPerNamespace,
          },
          log,
          metrics,
        )
      : undefined;
  const ready = Promise.all([rules.loaded, configMaps?.synced, redis?.connected]).then(async () => {
    await store.settled(); // the ConfigMaps listed at sync are still compiling in the background
    compactHeap();
    store.markLoaded();
  });
  // Regions time out once the rules are loaded (before, every region's rule would look removed).
  let regionTimeouts: RegionTimeouts | undefined;
  let closing = false;
  ready.then(
    () => {
      if (!closing)
        regionTimeouts = startRegionTimeouts({
          store: regions,
          rules: () => store.current,
          background,
          deadlineMs: config.deliveryDeadlineMs,
          metrics,
          log,
        });
    },
    () => undefined, // reported where ready is awaited
  );
  void ready.then(
    () => digests.start(),
    () => undefined,
  ); // flushing needs the rules the groups were recorded for
  const standalone =
    kube && connection && config.standalone.enabled
      ? kube.watchEvents(
          connection,
          {
            maxAgeMs: config.standalone.maxAgeMs,
            relistAfterMs: config.kube.relistAfterMs,
            retries: config.standalone.retries,
            position: redis?.position,
          },
          async (ce) => {
            await ready; // rules first, then events
            const [report] = await inFlight.pipeline.process([ce], Date.now() + config.deliveryDeadlineMs);
            countReport(metrics, report);
            return report;
          },
          log,
          metrics,
        )
      : undefined;
  let draining = false;
  const auth = createAuthenticators(config.auth, metrics, log);
  if (auth.configured) log.info({ auth: auth.description }, 'authentication');
  else
    log.warn(
      { auth: auth.description },
      'authentication is off (see AUTH_OIDC_ISSUER, AUTH_TOKEN_FILE, ADMIN_TOKEN_FILE)',
    );
  const isReady = () => store.ready && !draining;
  const capacity = createActionCapacity({
    perRequest: config.maxActionsPerRequest,
    perProcess: config.maxActionsInFlight,
    perTeam: config.teamMaxActionsInFlight,
  });
  metrics.sampleLoad(() => ({ actionsInFlight: capacity.inFlight, templatesQueued: sandbox?.queued ?? 0 }));
  const bodyBytes = createBodyBytesInFlight(config.maxBodyBytesInFlight);
  const recent = new RecentEvents(config.playgroundRecentEvents);
  const app = createApp({
    auth,
    recent,
    playground: {
      mode: 'service',
      shadowStatus: () => shadow.status(store.current.rules),
      rulesDir: config.rulesDir,
      recent,
      cluster,
      env: options.env ?? process.env,
      templates,
      configMapSelector: config.kube.rulesSelector,
      maxBodyBytes: config.maxBodyBytes,
    },
    config,
    pipeline,
    dryRunPipeline,
    capacity,
    bodyBytes,
    tracing,
    metrics,
    log,
    isReady,
    status: () => ({
      ready: store.ready && !draining,
      cluster: cluster.description,
      rulesDir: config.rulesDir,
      rulesLoaded: store.current.rules.length,
      sources: store.status(),
      shadow: shadow.status(store.current.rules),
    }),
  });
  return {
    app,
    metricsApp: createMetricsApp({ metrics, isReady }),
    store,
    metrics,
    rules,
    ready,
    cluster,
    standalone,
    redis,
    background,
    digests,
    drain: () => {
      draining = true;
    },
    close: async () => {
      // No new work, then the events in flight finish (and record what they delivered), then Redis.
      draining = true;
      rules.close();
      await Promise.all([configMaps?.stop(), standalone?.stop()]);
      if (!(await inFlight.settled(config.shutdownTimeoutMs)))
        log.warn(
          { inFlight: inFlight.count() },
          'shutdown: events still in flight after SHUTDOWN_TIMEOUT_SECONDS; closing anyway',
        );
      closing = true;
      await regionTimeouts?.stop();
      await digests.close(config.shutdownTimeoutMs);
      await Promise.all([redis?.close(), sandbox?.close(), tracing.close()]);
    },
  };
}

/**
 * trackInFlight counts the events being processed through the pipeline's single call (standalone mode),
 * so shutdown can wait for their deliveries to finish and be recorded before the stores close. Events
 * from POST / are awaited by the HTTP server's close (main.ts closes the service after it).
 */
function trackInFlight(pipeline: Pipeline): {
  pipeline: Pipeline;
  count(): number;
  settled(timeoutMs: number): Promise<boolean>;
} {
  let count = 0;
  let onIdle: (() => void) | undefined;
  const process: Pipeline['process'] = async (events, deadline) => {
    count++;
    try {
      return await pipeline.process(events, deadline);
    } finally {
      if (--count === 0) onIdle?.();
    }
  };
  return {
    pipeline: { ...pipeline, process },
    count: () => count,
    settled: (timeoutMs) =>
      new Promise<boolean>((resolve) => {
        if (count === 0) return resolve(true);
        const timer = setTimeout(() => resolve(false), timeoutMs);
        onIdle = () => {
          clearTimeout(timer);
          resolve(true);
        };
      }),
  };
}

const NO_DIRECTORY: DirectoryWatch = {
  loaded: Promise.resolve(),
  reload: async () => undefined,
  close: () => undefined,
};

/**
 * compactHeap runs two full collections before the first event when Node was started with --expose-gc
 * (the image is). Loading rules allocates ≈ 300 bytes per byte of YAML (the yaml parser; 1,000 rules ≈
 * 300 MB), and the heap V8 grew for it would otherwise stay resident. Measured at 1,000 rules: heap 56 →
 * 52 MB after one collection and 43 MB after two (the second returns the pages the first emptied); idle RSS
 * 117 → 105 MB, peak under load 150 → 141 MB (docs/performance.md). Never while serving: a full pause.
 */
function compactHeap(): void {
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  gc?.();
}
