import { DEFAULT_TENANCY, type TenancySettings } from './rules/tenancy-policy.js';

/**
 * Config: every setting of the service, read once from the environment into a typed, validated object.
 * The README's configuration table lists the same variables; keep the two in sync.
 */
import type { AuthSettings } from './auth/authenticate.js';
import { DEFAULT_REGEX_LIMITS, type RegexLimits } from './rules/conditions.js';
import type { RegionLimits } from './store/region-store.js';

export interface Config {
  host: string;
  port: number;
  /**
   * A port of its own for /metrics (and the probes), so a NetworkPolicy can open it to monitoring only; 0 = /metrics on
   * PORT.
   */
  metricsPort: number;
  /** Who may send events and use /dry-run and /status (src/auth). */
  auth: AuthSettings;
  rulesDir: string;
  /** Largest text of one rule source (a file, a ConfigMap key), in bytes; larger is rejected unread. */
  rulesMaxSourceBytes: number;
  /** How often a missing or unreadable RULES_DIR is tried again. */
  rulesRetryMs: number;
  logLevel: string;
  /** Largest request body accepted on POST / (bytes); larger → 413. */
  maxBodyBytes: number;
  /** Request body bytes all requests in flight may hold together; a request beyond → 429 before its body is read. */
  maxBodyBytesInFlight: number;
  /** Slow senders: time to receive the request headers, and the whole request. */
  headersTimeoutMs: number;
  requestTimeoutMs: number;
  /** Attempts per delivery inside one request (1 = no in-request retry). */
  deliveryAttempts: number;
  /** Per-attempt timeout when a destination sets none. */
  deliveryTimeoutMs: number;
  /** In-request retries stop before this deadline; the Broker retries the rest. */
  deliveryDeadlineMs: number;
  /** Longest Retry-After we wait for inside a request. */
  retryAfterMaxMs: number;
  /** Actions (events × matched actions) one request, and all requests at once, may put in flight; beyond → 429. */
  maxActionsPerRequest: number;
  maxActionsInFlight: number;
  /** Most actions in flight for one team namespace; unset: a tenth of maxActionsInFlight. */
  teamMaxActionsInFlight?: number;
  /** Per destination: deliveries in flight, waiting, and the circuit breaker. */
  destinations: { maxConcurrent: number; maxQueued: number; failureThreshold: number; openMs: number };
  /** JSONata guard: budget of one template evaluation (in its worker: that worker's own clock). */
  templateTimeoutMs: number;
  /**
   * Worker threads for templates outside the fast path (0: evaluate on the main thread), their heap cap, and the
   * largest result.
   */
  templateWorkers: number;
  /** Most template evaluations waiting for a worker; beyond, refused at once (429 + Retry-After). */
  templateQueue: number;
  templateWorkerHeapMb: number;
  templateMaxOutputBytes: number;
  /** `matches`: largest program of one pattern, instructions of one document's patterns, longest text read. */
  regex: RegexLimits;
  /** How many Event occurrences the occurrence tracker remembers. */
  occurrenceCacheSize: number;
  /** How long delivered (occurrence, rule, action) triples are remembered to skip redeliveries. */
  dedupWindowMs: number;
  dedupCacheSize: number;
  /** Redis for the delivered and throttle stores (shared by replicas, kept across restarts); empty = memory. */
  redisUrl: string;
  /** Per-command Redis timeout; the first timeout makes the service skip Redis until it answers again. */
  redisTimeoutMs: number;
  /**
   * Most change regions open at once (a start recorded, its end or timeout not delivered yet), and per team namespace;
   * beyond, a start is refused (429).
   */
  regions: RegionLimits;
  /**
   * Digest rules: most open groups per rule (beyond, a new key is answered 429), and failed flushes of a group before
   * it is dropped.
   */
  digest: { maxGroups: number; flushAttempts: number };
  /** SIGTERM: how long in-flight requests may take before the process exits anyway. */
  shutdownTimeoutMs: number;
  kube: KubeSettings;
  /** Namespaces besides the HPA's own whose Secrets hpa-sender annotations may name. */
  hpaSenderSecretNamespaces: string[];
  /** HTTP_PROXY, HTTPS_PROXY, NO_PROXY (and their lower-case forms, which win): egress through a proxy. */
  proxyEnv: Record<string, string | undefined>;
  /** Standalone mode: watch Events directly instead of receiving them from a Broker. */
  standalone: { enabled: boolean; maxAgeMs: number; retries: number };
  /** Most series of one rule-declared metric (a team's: per namespace); beyond, the label values become `other`. */
  metricMaxSeriesPerMetric: number;
  /** Most series of one team namespace's rule-declared metrics together. */
  teamMaxMetricSeries: number;
  /** How many received events the playground offers (redacted, each at most 64 KiB); 0 = none kept. */
  playgroundRecentEvents: number;
  /** What a team's rule documents may be, read and send (src/rules/tenancy-policy.ts). */
  tenancy: TenancySettings;
  /** Span export (src/trace): the OTLP/HTTP traces URL, empty when spans are not exported. */
  tracing: { tracesUrl: string };
}

/** Settings that matter only when a cluster is configured. */
export interface KubeSettings {
  /** Label selector of rule ConfigMaps; empty turns ConfigMap rules off. */
  rulesSelector: string;
  /** Namespaces watched for rule ConfigMaps; empty = all. */
  watchNamespaces: string[];
  /** Namespaces whose rules apply to all events; empty = the service's own namespace. */
  clusterNamespaces: string[];
  relistAfterMs: number;
  cacheTtlMs: number;
  cacheSize: number;
  secretTtlMs: number;
  /** How long past its expiry a Secret value read successfully is still served while the API fails. */
  secretStaleMs: number;
  requestsPerSecond: number;
  burst: number;
  timeoutMs: number;
}

type Env = Record<string, string | undefined>;

function integer(env: Env, name: string, fallback: number, min = 0): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value < min) {
    throw new Error(`config: ${name}=${JSON.stringify(raw)} is not a number >= ${min}`);
  }
  return value;
}

/** loadConfig reads the environment; an invalid value throws with the variable's name. */
export function loadConfig(env: Env = process.env): Config {
  return {
    host: env.HOST ?? '0.0.0.0',
    port: integer(env, 'PORT', 8080),
    metricsPort: integer(env, 'METRICS_PORT', 0),
    auth: authSettings(env),
    rulesDir: env.RULES_DIR ?? './rules',
    rulesMaxSourceBytes: integer(env, 'RULES_MAX_SOURCE_BYTES', 1024 * 1024, 1),
    rulesRetryMs: integer(env, 'RULES_RETRY_MS', 5_000, 10),
    logLevel: oneOf(env, 'LOG_LEVEL', LOG_LEVELS, 'info'),
    maxBodyBytes: integer(env, 'MAX_BODY_BYTES', 1024 * 1024, 1),
    maxBodyBytesInFlight: integer(env, 'MAX_BODY_BYTES_IN_FLIGHT', 32 * 1024 * 1024, 1),
    headersTimeoutMs: integer(env, 'HEADERS_TIMEOUT_SECONDS', 10, 0.001) * 1000,
    requestTimeoutMs: integer(env, 'REQUEST_TIMEOUT_SECONDS', 30, 0.001) * 1000,
    deliveryAttempts: integer(env, 'DELIVERY_ATTEMPTS', 3, 1),
    deliveryTimeoutMs: integer(env, 'DELIVERY_TIMEOUT_SECONDS', 5, 0.001) * 1000,
    deliveryDeadlineMs: integer(env, 'DELIVERY_DEADLINE_SECONDS', 15, 0.001) * 1000,
    retryAfterMaxMs: integer(env, 'RETRY_AFTER_MAX_SECONDS', 5) * 1000,
    templateTimeoutMs: integer(env, 'TEMPLATE_TIMEOUT_MS', 100, 1),
    templateWorkers: integer(env, 'TEMPLATE_WORKERS', 2),
    templateQueue: integer(env, 'TEMPLATE_QUEUE', 2000, 1),
    maxActionsPerRequest: integer(env, 'MAX_ACTIONS_PER_REQUEST', 5000, 1),
    maxActionsInFlight: integer(env, 'MAX_ACTIONS_IN_FLIGHT', 10000, 1),
    teamMaxActionsInFlight:
      env.TEAM_MAX_ACTIONS_IN_FLIGHT === undefined ? undefined : integer(env, 'TEAM_MAX_ACTIONS_IN_FLIGHT', 1, 1),
    templateWorkerHeapMb: integer(env, 'TEMPLATE_WORKER_HEAP_MB', 64, 16),
    templateMaxOutputBytes: integer(env, 'TEMPLATE_MAX_OUTPUT_BYTES', 1024 * 1024, 1),
    regex: {
      maxProgramSize: integer(env, 'REGEX_MAX_PROGRAM_SIZE', DEFAULT_REGEX_LIMITS.maxProgramSize, 1),
      programBudget: integer(env, 'REGEX_PROGRAM_BUDGET', DEFAULT_REGEX_LIMITS.programBudget, 1),
      maxInputBytes: integer(env, 'MATCHES_MAX_INPUT_BYTES', DEFAULT_REGEX_LIMITS.maxInputBytes, 1),
    },
    destinations: {
      maxConcurrent: integer(env, 'DESTINATION_CONCURRENCY', 32, 1),
      maxQueued: integer(env, 'DESTINATION_QUEUE', 256),
      failureThreshold: integer(env, 'BREAKER_FAILURES', 5, 1),
      openMs: integer(env, 'BREAKER_OPEN_SECONDS', 10, 0.001) * 1000,
    },
    occurrenceCacheSize: integer(env, 'OCCURRENCE_CACHE_SIZE', 100_000, 1),
    dedupWindowMs: integer(env, 'DEDUP_WINDOW_SECONDS', 3600) * 1000,
    dedupCacheSize: integer(env, 'DEDUP_CACHE_SIZE', 100_000, 1),
    redisUrl: env.REDIS_URL ?? '',
    redisTimeoutMs: integer(env, 'REDIS_TIMEOUT_MS', 500, 1),
    regions: regionLimits(env),
    digest: {
      maxGroups: integer(env, 'DIGEST_MAX_GROUPS', 1000, 1),
      flushAttempts: integer(env, 'DIGEST_FLUSH_ATTEMPTS', 10, 1),
    },
    shutdownTimeoutMs: integer(env, 'SHUTDOWN_TIMEOUT_SECONDS', 20) * 1000,
    hpaSenderSecretNamespaces: list(env.HPA_SENDER_SECRET_NAMESPACES),
    proxyEnv: {
      HTTP_PROXY: env.HTTP_PROXY,
      http_proxy: env.http_proxy,
      HTTPS_PROXY: env.HTTPS_PROXY,
      https_proxy: env.https_proxy,
      NO_PROXY: env.NO_PROXY,
      no_proxy: env.no_proxy,
    },
    standalone: {
      enabled: env.STANDALONE === 'true',
      maxAgeMs: integer(env, 'STANDALONE_MAX_AGE_SECONDS', 300) * 1000,
      retries: integer(env, 'STANDALONE_RETRIES', 5),
    },
    playgroundRecentEvents: integer(env, 'PLAYGROUND_RECENT_EVENTS', 50, 0),
    metricMaxSeriesPerMetric: integer(env, 'METRIC_MAX_SERIES_PER_METRIC', 1000, 1),
    tracing: { tracesUrl: tracesUrl(env) },
    teamMaxMetricSeries: integer(env, 'TEAM_MAX_METRIC_SERIES', 1000, 1),
    tenancy: {
      rulesPerNamespace: integer(env, 'TEAM_MAX_RULES', DEFAULT_TENANCY.rulesPerNamespace, 0),
      documentBytes: integer(env, 'TEAM_MAX_DOCUMENT_BYTES', DEFAULT_TENANCY.documentBytes, 1),
      documentsPerNamespace: integer(env, 'TEAM_MAX_DOCUMENTS', DEFAULT_TENANCY.documentsPerNamespace!, 1),
      actionsPerRule: integer(env, 'TEAM_MAX_ACTIONS_PER_RULE', DEFAULT_TENANCY.actionsPerRule, 1),
      templateBytes: integer(env, 'TEAM_MAX_TEMPLATE_BYTES', DEFAULT_TENANCY.templateBytes, 1),
      envAllowlist: list(env.TEAM_ENV_ALLOWLIST),
      clusterKinds: env.TEAM_CLUSTER_KINDS === undefined ? DEFAULT_TENANCY.clusterKinds : list(env.TEAM_CLUSTER_KINDS),
      destinationHosts: {
        cluster: hosts(env, 'DESTINATION_HOSTS_CLUSTER'),
        team: hosts(env, 'DESTINATION_HOSTS_TEAM'),
      },
    },
    kube: {
      rulesSelector: env.RULES_CONFIGMAP_SELECTOR ?? 'kube-event-rules/rules=true',
      watchNamespaces: list(env.WATCH_NAMESPACES),
      clusterNamespaces: list(env.CLUSTER_NAMESPACES),
      relistAfterMs: integer(env, 'RULES_RELIST_SECONDS', 300, 1) * 1000,
      cacheTtlMs: integer(env, 'KUBE_CACHE_SECONDS', 60) * 1000,
      cacheSize: integer(env, 'KUBE_CACHE_SIZE', 5000, 1),
      secretTtlMs: integer(env, 'SECRET_CACHE_SECONDS', 30) * 1000,
      secretStaleMs: integer(env, 'SECRET_STALE_SECONDS', 300) * 1000,
      requestsPerSecond: integer(env, 'KUBE_QPS', 20, 0.1),
      burst: integer(env, 'KUBE_BURST', 40, 1),
      timeoutMs: integer(env, 'KUBE_TIMEOUT_SECONDS', 5, 0.1) * 1000,
    },
  };
}

function regionLimits(env: Env): RegionLimits {
  const maxOpen = integer(env, 'REGION_MAX_OPEN', 10_000, 1);
  return { maxOpen, maxOpenPerTeam: integer(env, 'TEAM_MAX_OPEN_REGIONS', Math.max(1, Math.floor(maxOpen / 10)), 1) };
}

const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;

function oneOf(env: Env, name: string, allowed: readonly string[], fallback: string): string {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  if (!allowed.includes(raw)) throw new Error(`${name}=${JSON.stringify(raw)} is not one of ${allowed.join(', ')}`);
  return raw;
}

function authSettings(env: Env): AuthSettings {
  const issuer = env.AUTH_OIDC_ISSUER ?? '';
  const audience = env.AUTH_OIDC_AUDIENCE ?? '';
  if (issuer && !audience)
    throw new Error(
      'config: AUTH_OIDC_ISSUER is set but AUTH_OIDC_AUDIENCE is not (the audience the Trigger requests tokens for)',
    );
  if (!issuer && audience) throw new Error('config: AUTH_OIDC_AUDIENCE is set but AUTH_OIDC_ISSUER is not');
  return {
    tokenFile: env.AUTH_TOKEN_FILE ?? '',
    adminTokenFile: env.ADMIN_TOKEN_FILE ?? '',
    oidc: issuer
      ? {
          issuer,
          audience,
          jwksUrl: env.AUTH_OIDC_JWKS_URL ?? '',
          subjects: list(env.AUTH_OIDC_SUBJECTS),
          caFile: env.AUTH_OIDC_CA_FILE ?? '',
          fetchTokenFile: env.AUTH_OIDC_FETCH_TOKEN_FILE ?? '',
          anySubject: env.AUTH_OIDC_ANY_SUBJECT === 'true',
        }
      : undefined,
  };
}

/** hosts reads a destination host allowlist: `host`, `host:port` or `*.domain` — a URL here would never match. */
function hosts(env: Env, name: string): string[] {
  const entries = list(env[name]);
  const wrong = entries.find(
    (entry) =>
      !/^(\*\.)?[a-z0-9]([-a-z0-9.]*[a-z0-9])?(:\d{1,5})?$/i.test(entry) &&
      !/^\[[0-9a-f:.]+\](:\d{1,5})?$/i.test(entry),
  );
  if (wrong !== undefined)
    throw new Error(
      `config: ${name} entry ${JSON.stringify(wrong)} is not a host (host, host:port or *.domain; no scheme or path)`,
    );
  return entries;
}

/**
 * tracesUrl: where spans go, from the standard OpenTelemetry variables — the traces endpoint as given, or
 * the general endpoint with `/v1/traces` appended; empty (no export) when neither is set or the SDK is
 * disabled. The URL is never printed: it may carry credentials.
 */
function tracesUrl(env: Env): string {
  if (env.OTEL_SDK_DISABLED?.trim().toLowerCase() === 'true') return '';
  const exporter = env.OTEL_TRACES_EXPORTER?.trim().toLowerCase() || 'otlp';
  if (exporter === 'none') return '';
  if (exporter !== 'otlp')
    throw new Error(
      `config: OTEL_TRACES_EXPORTER=${JSON.stringify(env.OTEL_TRACES_EXPORTER)}: only otlp (OTLP/HTTP) or none is supported`,
    );
  const specific = env.OTEL_EXPORTER_OTLP_TRACES_ENDPOINT?.trim();
  const general = env.OTEL_EXPORTER_OTLP_ENDPOINT?.trim();
  const name = specific ? 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT' : 'OTEL_EXPORTER_OTLP_ENDPOINT';
  const url = specific || (general ? `${general.replace(/\/+$/, '')}/v1/traces` : '');
  if (url && !/^https?:\/\/[^/]/.test(url))
    throw new Error(`config: ${name} is not an http(s) URL (e.g. http://otel-collector:4318)`);
  return url;
}

function list(raw: string | undefined): string[] {
  return (raw ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
}
