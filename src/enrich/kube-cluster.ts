/**
 * createKubeCluster: the Cluster backed by the Kubernetes API (client-node 1.4). Lookups are cached
 * with a TTL (bounded), concurrent misses share one request, one token bucket limits the rate of every
 * lookup (objects, Events, Secrets) and honours the API server's Retry-After, every request is aborted at
 * its deadline (no socket left waiting on a hung API server), and every outcome is counted.
 * What may be looked up at all is decided first (admissible: never a Secret, only well-formed references
 * to kinds the API server serves). A missing object (404) is a null fact; one we may not read (403) too, reported as a
 * configuration problem; any other failure (5xx, 429, timeout, network) is `retry` — the event is redelivered rather
 * than decided on a fact we could not read. Events are never cached: Reference mode needs their current state.
 */
import {
  ApiException,
  CoreV1Api,
  KubernetesObjectApi,
  type Configuration,
  type KubeConfig,
} from '@kubernetes/client-node';
import type { KubeSettings } from '../config.js';
import { MissingObjectError } from '../errors.js';
import type { KubeConnection } from '../kube/connect.js';
import { TokenBucket } from '../kube/token-bucket.js';
import { LRUCache } from 'lru-cache';
import { Uncached, fetchShared } from '../kube/fetch-shared.js';
import { abortingConfiguration } from '../kube/aborting-configuration.js';
import { retryAfterMs } from '../kube/retry-after.js';
import type { Logger } from '../log.js';
import { kindLabel, type Metrics } from '../metrics.js';
import { KindDiscovery } from '../kube/kind-discovery.js';
import type { ObjectReference } from '../normalize/kube-event.js';
import type { SecretReader } from '../render/value-source.js';
import { groupKindOf, type Cluster, type Lookup, type LookupLimits } from './cluster.js';
import { LookupFailedError } from './lookup-failed.js';
import { createSecretStore } from './secret-store.js';

export type KubeClusterOptions = Pick<
  KubeSettings,
  'cacheTtlMs' | 'cacheSize' | 'secretTtlMs' | 'secretStaleMs' | 'requestsPerSecond' | 'burst' | 'timeoutMs'
> & {
  /** The rate limit shared with the service's other API requests (default: one of its own). */
  bucket?: TokenBucket;
};

/**
 * Lookup problems are logged at most once per kind and problem in this interval (an outage is not a line per event).
 */
const LOG_EVERY_MS = 10_000;

/**
 * A 404 is remembered this long only (found objects: KUBE_CACHE_SECONDS): an object deleted and recreated
 * under its name (a StatefulSet Pod) must not read as absent for a minute. Also the least age of a cached
 * object read again because an Event names another uid.
 */
const NOT_FOUND_CACHE_MS = 1000;

/** When the API server answers 429 without a Retry-After, wait this long before asking again. */
const DEFAULT_RETRY_AFTER_MS = 1000;

/**
 * Timestamps come back as Date objects from client-node; JSONata and rules need plain JSON (a Date breaks $toMillis).
 */
const plain = (value: unknown) => JSON.parse(JSON.stringify(value)) as Record<string, unknown>;

/** withTimeout bounds the whole lookup (discovery + read); each request is also aborted at the same deadline. */
function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  const timeout = new Promise<never>(
    (_, reject) =>
      (timer = setTimeout(
        () =>
          reject(
            Object.assign(new Error(`${what}: no answer from the API server within ${ms} ms`), {
              name: 'TimeoutError',
            }),
          ),
        ms,
      )),
  );
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

/** The object API with the context's default namespace, as makeApiClient would set it. */
class ObjectApi extends KubernetesObjectApi {
  constructor(configuration: Configuration, kc: KubeConfig) {
    super(configuration);
    this.setDefaultNamespace(kc);
  }
}

type LookupRef = Required<Pick<ObjectReference, 'kind' | 'name' | 'apiVersion'>> & ObjectReference;

const API_VERSION = /^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?\/)?v[0-9]+((alpha|beta)[0-9]+)?$/;
const KIND = /^[A-Z][A-Za-z0-9]{0,62}$/;
const NAME = /^[a-z0-9A-Z]([-a-zA-Z0-9_.:]{0,251}[a-zA-Z0-9])?$/;
const NAMESPACE = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** wellFormed: a reference the API server could name (event data is hostile: no paths hidden in a field). */
function wellFormed(ref: LookupRef): boolean {
  return (
    API_VERSION.test(ref.apiVersion) &&
    KIND.test(ref.kind) &&
    NAME.test(ref.name) &&
    (ref.namespace === undefined || ref.namespace === '' || NAMESPACE.test(ref.namespace))
  );
}

export type Failure = { code: 404 | 403 } | { code?: number; reason: string; retryAfterMs?: number };

export function createKubeCluster(
  connection: KubeConnection,
  options: KubeClusterOptions,
  metrics: Metrics,
  log: Logger,
): Cluster {
  const configuration = abortingConfiguration(connection.kc, options.timeoutMs);
  const objects = new ObjectApi(configuration, connection.kc);
  const core = new CoreV1Api(configuration);
  const bucket = options.bucket ?? new TokenBucket(options.requestsPerSecond, options.burst);
  // Answers (found, not found) are kept for KUBE_CACHE_SECONDS; a failed lookup is shared by the callers
  // waiting for it, then forgotten. Concurrent misses of one object make one request.
  const cache = new LRUCache<string, Lookup, LookupRef>({
    max: options.cacheSize,
    ttl: options.cacheTtlMs || undefined,
    fetchMethod: async (_key, _stale, { context, options: entry }) => {
      const lookup = await fetchObject(context);
      if (options.cacheTtlMs > 0 && lookup.status === 'found') return lookup;
      if (options.cacheTtlMs > 0 && lookup.status === 'not_found') {
        entry.ttl = Math.min(NOT_FOUND_CACHE_MS, options.cacheTtlMs);
        return lookup;
      }
      throw new Uncached(lookup);
    },
  });
  const count = (kind: string, outcome: string) => metrics.kubeRequests.inc({ kind: kindLabel(kind), outcome });
  const lastLogged = new Map<string, { at: number; skipped: number }>();
  /** logSometimes logs a lookup problem once per kind and problem every LOG_EVERY_MS, with how many it left out. */
  const logSometimes = (level: 'warn' | 'error', problem: string, fields: Record<string, unknown>, message: string) => {
    const key = `${String(fields.kind)} ${problem}`;
    const last = lastLogged.get(key);
    if (last && Date.now() - last.at < LOG_EVERY_MS) return void last.skipped++;
    if (lastLogged.size > 1000) lastLogged.clear();
    lastLogged.set(key, { at: Date.now(), skipped: 0 });
    log[level]({ ...fields, ...(last?.skipped ? { alikeNotLogged: last.skipped } : {}) }, message);
  };
  const discovery = new KindDiscovery(configuration, Math.max(options.cacheTtlMs, 60_000), () => bucket.take());

  /**
   * admissible decides what may be looked up at all, before any request: never a Secret (Secrets are read
   * by secretKeyRef only), only well-formed references to kinds the API server serves, and a namespaced
   * kind only with an explicit namespace — never the client's default (the service's own namespace).
   * Discovery that fails is a failed lookup like any other (`retry`), never "no such kind". With `limits`
   * (a team's rules), only what they reach.
   */
  async function admissible(ref: LookupRef, limits: LookupLimits | undefined): Promise<{ ref: LookupRef } | Lookup> {
    const refused = () => {
      count(ref.kind, 'refused');
      return { status: 'not_found' } as const;
    };
    if (ref.kind === 'Secret' || !wellFormed(ref)) return refused();
    const info = await discovery.find(ref.apiVersion, ref.kind);
    if (info.status === 'unavailable') {
      const failure: Failure = info.rateLimited
        ? {
            reason: `discovery of ${ref.apiVersion}: client-side API rate limit reached (KUBE_QPS)`,
            retryAfterMs: bucket.waitMs(),
          }
        : info.error === undefined
          ? glitch(ref.kind, info.reason)
          : classify(ref.kind, `discovery of ${ref.apiVersion}`, info.error);
      if (info.rateLimited) count(ref.kind, 'rate_limited');
      return 'reason' in failure
        ? { status: 'retry', reason: failure.reason, retryAfterMs: failure.retryAfterMs }
        : { status: 'not_found' };
    }
    if (info.status === 'unknown') return refused();
    if (!info.namespaced) {
      const groupKind = groupKindOf(ref.apiVersion, ref.kind);
      const reachable =
        !limits || limits.clusterKinds.has(groupKind) || (groupKind === 'Namespace' && ref.name === limits.namespace);
      return reachable ? { ref: { ...ref, namespace: undefined } } : refused();
    }
    return ref.namespace && (!limits || ref.namespace === limits.namespace) ? { ref } : refused();
  }

  /** call runs one API request under the shared rate limit and deadline, and classifies its failure. */
  async function call<T>(
    kind: string,
    what: string,
    request: () => Promise<T>,
  ): Promise<{ ok: true; value: T } | { ok: false; failure: Failure }> {
    if (!bucket.take()) {
      count(kind, 'rate_limited');
      return {
        ok: false,
        failure: { reason: `${what}: client-side API rate limit reached (KUBE_QPS)`, retryAfterMs: bucket.waitMs() },
      };
    }
    try {
      return { ok: true, value: await withTimeout(request(), options.timeoutMs, what) };
    } catch (err) {
      return { ok: false, failure: classify(kind, what, err) };
    }
  }

  /** glitch: a discovery answer that contradicts what the API server served — a failed lookup, not an absent kind. */
  function glitch(kind: string, reason: string): Failure {
    count(kind, 'error');
    logSometimes(
      'warn',
      'discovery',
      { kind, error: reason },
      'API discovery contradicts what it serves; the event will be redelivered',
    );
    return { reason };
  }

  function classify(kind: string, what: string, err: unknown): Failure {
    const code = err instanceof ApiException ? err.code : undefined;
    if (code === 404 || code === 403) {
      count(kind, code === 404 ? 'not_found' : 'forbidden');
      if (code === 403)
        logSometimes(
          'error',
          '403',
          { kind, object: what },
          'configuration problem: the service may not read this (RBAC); treated as absent',
        );
      return { code };
    }
    if (code === 429) {
      const wait = retryAfterMs((err as ApiException<unknown>).headers) ?? DEFAULT_RETRY_AFTER_MS;
      bucket.pauseFor(wait);
      count(kind, 'rate_limited');
      logSometimes(
        'warn',
        '429',
        { kind, object: what, retryAfterMs: wait },
        'API server rate limit (429); pausing lookups for its Retry-After',
      );
      return { code, reason: `${what}: API server answered 429`, retryAfterMs: wait };
    }
    const timedOut = err instanceof Error && (err.name === 'AbortError' || err.name === 'TimeoutError');
    count(kind, timedOut ? 'timeout' : 'error');
    const reason = `${what}: ${code ? `API server answered ${code}` : timedOut ? `no answer within ${options.timeoutMs} ms` : (err as Error).message}`;
    logSometimes(
      'warn',
      timedOut ? 'timeout' : String(code ?? 'network'),
      { kind, object: what, error: reason },
      'API lookup failed; the event will be redelivered',
    );
    return { code, reason };
  }

  async function fetchObject(ref: LookupRef): Promise<Lookup> {
    const what = `${ref.apiVersion} ${ref.kind} ${ref.namespace ?? ''}/${ref.name}`;
    const spec = {
      apiVersion: ref.apiVersion,
      kind: ref.kind,
      metadata: { name: ref.name, ...(ref.namespace ? { namespace: ref.namespace } : {}) },
    };
    const result = await call(ref.kind, what, () => objects.read(spec));
    if (result.ok) {
      count(ref.kind, 'found');
      return { status: 'found', object: plain(result.value) };
    }
    const { failure } = result;
    return 'reason' in failure
      ? { status: 'retry', reason: failure.reason, retryAfterMs: failure.retryAfterMs }
      : { status: 'not_found' };
  }

  const secrets: SecretReader = createSecretStore({
    ttlMs: options.secretTtlMs,
    staleMs: options.secretStaleMs,
    defaultNamespace: connection.namespace,
    count: (outcome) => count('Secret', outcome),
    log,
    async load(name, key, namespace = connection.namespace) {
      const result = await call('Secret', `Secret ${namespace}/${name}`, () =>
        core.readNamespacedSecret({ name, namespace }),
      );
      if (result.ok) {
        count('Secret', 'found');
        return Object.fromEntries(
          Object.entries(result.value.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]),
        );
      }
      const { failure } = result;
      if ('reason' in failure)
        throw new LookupFailedError(`secretKeyRef ${name}/${key}: reading ${failure.reason}`, failure.retryAfterMs);
      if (failure.code === 404)
        throw new MissingObjectError(`secretKeyRef ${name}/${key}: Secret ${namespace}/${name} not found`);
      throw new MissingObjectError(
        `secretKeyRef ${name}/${key}: not allowed to read Secret ${namespace}/${name} (RBAC)`,
      );
    },
  });

  // ConfigMap keys for TLS material (a CA bundle): read and cached like Secrets, so a rotation needs no restart.
  const configMaps: SecretReader = createSecretStore({
    ttlMs: options.secretTtlMs,
    staleMs: options.secretStaleMs,
    defaultNamespace: connection.namespace,
    count: (outcome) => count('ConfigMap', outcome),
    kind: 'ConfigMap',
    log,
    async load(name, key, namespace = connection.namespace) {
      const result = await call('ConfigMap', `ConfigMap ${namespace}/${name}`, () =>
        core.readNamespacedConfigMap({ name, namespace }),
      );
      if (result.ok) {
        count('ConfigMap', 'found');
        return { ...(result.value.data ?? {}) };
      }
      const { failure } = result;
      if ('reason' in failure)
        throw new LookupFailedError(`configMapKeyRef ${name}/${key}: reading ${failure.reason}`, failure.retryAfterMs);
      if (failure.code === 404)
        throw new MissingObjectError(`configMapKeyRef ${name}/${key}: ConfigMap ${namespace}/${name} not found`);
      throw new MissingObjectError(
        `configMapKeyRef ${name}/${key}: not allowed to read ConfigMap ${namespace}/${name} (RBAC)`,
      );
    },
  });

  return {
    description: connection.description,
    namespace: connection.namespace,
    secrets,
    configMaps,
    async get(ref, limits) {
      if (!ref.kind || !ref.name) return { status: 'not_found' };
      const admitted = await admissible(
        { ...ref, kind: ref.kind, name: ref.name, apiVersion: ref.apiVersion || 'v1' },
        limits,
      );
      if ('status' in admitted) return admitted;
      const full = admitted.ref;
      if (full.kind === 'Event') return fetchObject(full);
      const key = `${full.apiVersion}/${full.kind}/${full.namespace ?? ''}/${full.name}`;
      let { value, cached } = await fetchShared(cache, key, full);
      // The name is reused (a StatefulSet Pod recreated): a cached object of another uid is not the one referenced.
      // Read again, unless it was read within the last second (event data names any uid: no request per event).
      const age = options.cacheTtlMs - cache.getRemainingTTL(key);
      if (
        cached &&
        ref.uid &&
        value.status === 'found' &&
        age >= NOT_FOUND_CACHE_MS &&
        (value.object.metadata as { uid?: unknown } | undefined)?.uid !== ref.uid
      ) {
        cache.delete(key);
        ({ value, cached } = await fetchShared(cache, key, full));
      }
      if (cached) count(full.kind, 'cached');
      return value;
    },
  };
}
