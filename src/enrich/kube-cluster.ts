/**
 * createKubeCluster: the Cluster backed by the Kubernetes API (client-node 1.4). Lookups are cached
 * with a TTL (bounded), concurrent misses share one request, a token bucket limits the request rate,
 * and every outcome is counted. A missing object (404) or one we may not read (403) is "not found" —
 * a null fact, never an exception. Events are never cached: Reference mode needs their current state.
 */
import { ApiException, CoreV1Api, KubernetesObjectApi } from '@kubernetes/client-node';
import type { KubeSettings } from '../config.js';
import { ConfigurationError } from '../errors.js';
import type { KubeConnection } from '../kube/connect.js';
import { TokenBucket } from '../kube/token-bucket.js';
import { TtlCache } from '../kube/ttl-cache.js';
import type { Logger } from '../log.js';
import { kindLabel, type Metrics } from '../metrics.js';
import { KindDiscovery } from '../kube/kind-discovery.js';
import type { ObjectReference } from '../normalize/kube-event.js';
import type { SecretReader } from '../render/value-source.js';
import type { Cluster, Lookup } from './cluster.js';

export type KubeClusterOptions = Pick<KubeSettings, 'cacheTtlMs' | 'cacheSize' | 'secretTtlMs' | 'requestsPerSecond' | 'burst' | 'timeoutMs'>;

/** Timestamps come back as Date objects from client-node; JSONata and rules need plain JSON (libraries.md §4.3). */
const plain = (value: unknown) => JSON.parse(JSON.stringify(value)) as Record<string, unknown>;

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`${what}: no answer from the API server within ${ms} ms`)), ms)));
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

type LookupRef = Required<Pick<ObjectReference, 'kind' | 'name' | 'apiVersion'>> & ObjectReference;

const API_VERSION = /^([a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?\/)?v[0-9]+((alpha|beta)[0-9]+)?$/;
const KIND = /^[A-Z][A-Za-z0-9]{0,62}$/;
const NAME = /^[a-z0-9A-Z]([-a-zA-Z0-9_.:]{0,251}[a-zA-Z0-9])?$/;
const NAMESPACE = /^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$/;

/** wellFormed: a reference the API server could name (event data is hostile: no paths hidden in a field). */
function wellFormed(ref: LookupRef): boolean {
  return API_VERSION.test(ref.apiVersion) && KIND.test(ref.kind) && NAME.test(ref.name) && (ref.namespace === undefined || ref.namespace === '' || NAMESPACE.test(ref.namespace));
}

export function createKubeCluster(connection: KubeConnection, options: KubeClusterOptions, metrics: Metrics, log: Logger): Cluster {
  const objects = KubernetesObjectApi.makeApiClient(connection.kc);
  const core = connection.kc.makeApiClient(CoreV1Api);
  const bucket = new TokenBucket(options.requestsPerSecond, options.burst);
  const cache = new TtlCache<Lookup>(options.cacheTtlMs, options.cacheSize);
  const secretCache = new TtlCache<Record<string, string>>(options.secretTtlMs, 1000);
  const count = (kind: string, outcome: string) => metrics.kubeRequests.inc({ kind: kindLabel(kind), outcome });
  const discovery = new KindDiscovery(connection.kc, Math.max(options.cacheTtlMs, 60_000), () => bucket.take());

  /**
   * admissible decides what may be looked up at all, before any request: never a Secret (Secrets are read
   * by secretKeyRef only), only well-formed references to kinds the API server serves, and a namespaced
   * kind only with an explicit namespace — never the client's default (the service's own namespace).
   */
  async function admissible(ref: LookupRef): Promise<{ ref: LookupRef } | Lookup> {
    const refused = () => {
      count(ref.kind, 'refused');
      return { status: 'not_found' } as const;
    };
    if (ref.kind === 'Secret' || !wellFormed(ref)) return refused();
    const info = await discovery.find(ref.apiVersion, ref.kind);
    if (info.status === 'unavailable') {
      count(ref.kind, info.reason.includes('rate limit') ? 'rate_limited' : 'error');
      return { status: 'unavailable', reason: info.reason };
    }
    if (info.status === 'unknown') return refused();
    if (!info.namespaced) return { ref: { ...ref, namespace: undefined } };
    return ref.namespace ? { ref } : refused();
  }

  async function fetchObject(ref: LookupRef): Promise<Lookup> {
    if (!bucket.take()) {
      count(ref.kind, 'rate_limited');
      return { status: 'unavailable', reason: 'client-side API rate limit reached' };
    }
    const what = `${ref.apiVersion} ${ref.kind} ${ref.namespace ?? ''}/${ref.name}`;
    try {
      const spec = { apiVersion: ref.apiVersion, kind: ref.kind, metadata: { name: ref.name, ...(ref.namespace ? { namespace: ref.namespace } : {}) } };
      const object = await withTimeout(objects.read(spec), options.timeoutMs, what);
      count(ref.kind, 'found');
      return { status: 'found', object: plain(object) };
    } catch (err) {
      const code = err instanceof ApiException ? err.code : undefined;
      if (code === 404 || code === 403) {
        count(ref.kind, code === 404 ? 'not_found' : 'forbidden');
        if (code === 403) log.warn({ object: what }, 'not allowed to read the object (RBAC); the fact is null');
        return { status: 'not_found' };
      }
      count(ref.kind, 'error');
      log.warn({ object: what, error: code ? `HTTP ${code}` : (err as Error).message }, 'object lookup failed');
      return { status: 'unavailable', reason: code ? `API server answered ${code}` : (err as Error).message };
    }
  }

  const secrets: SecretReader = {
    async read(name, key, namespace = connection.namespace) {
      const load = async (): Promise<Record<string, string>> => {
        try {
          const secret = await withTimeout(core.readNamespacedSecret({ name, namespace }), options.timeoutMs, `Secret ${namespace}/${name}`);
          count('Secret', 'found');
          return Object.fromEntries(Object.entries(secret.data ?? {}).map(([k, v]) => [k, Buffer.from(v, 'base64').toString('utf8')]));
        } catch (err) {
          const code = err instanceof ApiException ? err.code : undefined;
          count('Secret', code === 404 ? 'not_found' : code === 403 ? 'forbidden' : 'error');
          if (code === 404) throw new ConfigurationError(`secretKeyRef ${name}/${key}: Secret ${namespace}/${name} not found`);
          if (code === 403) throw new ConfigurationError(`secretKeyRef ${name}/${key}: not allowed to read Secret ${namespace}/${name} (RBAC)`);
          throw new Error(`secretKeyRef ${name}/${key}: reading Secret ${namespace}/${name} failed: ${code ? `HTTP ${code}` : (err as Error).message}`);
        }
      };
      const { value: data, cached } = await secretCache.get(`${namespace}/${name}`, load);
      if (cached) count('Secret', 'cached');
      if (data[key] === undefined) throw new ConfigurationError(`secretKeyRef ${name}/${key}: Secret ${namespace}/${name} has no key "${key}"`);
      return data[key];
    },
  };

  return {
    description: connection.description,
    namespace: connection.namespace,
    secrets,
    async get(ref) {
      if (!ref.kind || !ref.name) return { status: 'not_found' };
      const admitted = await admissible({ ...ref, kind: ref.kind, name: ref.name, apiVersion: ref.apiVersion || 'v1' });
      if ('status' in admitted) return admitted;
      const full = admitted.ref;
      if (full.kind === 'Event') return fetchObject(full);
      const key = `${full.apiVersion}/${full.kind}/${full.namespace ?? ''}/${full.name}`;
      const { value, cached } = await cache.get(key, () => fetchObject(full), (lookup) => lookup.status !== 'unavailable');
      if (cached) count(full.kind, 'cached');
      return value;
    },
  };
}
