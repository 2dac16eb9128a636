/**
 * The Secret values secretKeyRef reads, cached for `ttlMs` so a rotation is picked up without a restart.
 * While the API fails (5xx, timeout, rate limit), the last value read successfully is served stale for up
 * to `staleMs` past its expiry — counted (`stale`) and logged once per outage — instead of every
 * delivery that needs it failing until the API is back. Meanwhile one background read at a time retries,
 * no sooner than the API's Retry-After, so a hung API server delays no event but the first.
 * A Secret that is gone (404) or forbidden (403) is never served stale: that is an answer, not an outage.
 */
import { LRUCache } from 'lru-cache';
import type { Logger } from '../log.js';
import type { SecretReader } from '../render/value-source.js';
import { MissingObjectError } from '../errors.js';
import { LookupFailedError } from './lookup-failed.js';
import { PROCESS_SOURCE, knownSecrets } from '../redact.js';

/** How long to wait before asking again after a failed read, when the API gave no Retry-After. */
const RETRY_MS = 1000;
const CAPACITY = 1000;

export interface SecretStoreOptions {
  ttlMs: number;
  staleMs: number;
  defaultNamespace?: string;
  /** Counts `cached` and `stale` reads (the loader counts its own API outcomes). */
  count(outcome: 'cached' | 'stale'): void;
  log: Logger;
  /** Reads the Secret through the API; throws LookupFailedError when that may pass, anything else when not. */
  load(name: string, key: string, namespace?: string): Promise<Record<string, string>>;
  now?: () => number;
  /** What is stored, for messages (default Secret; ConfigMap for configMapKeyRef). */
  kind?: 'Secret' | 'ConfigMap';
}

interface Known {
  data: Record<string, string>;
  readAt: number;
  /** Set while the API is failing: no new read before this. */
  retryAt?: number;
}

export function createSecretStore(options: SecretStoreOptions): SecretReader {
  const now = options.now ?? Date.now;
  const known = new LRUCache<string, Known>({ max: CAPACITY });
  const loading = new Map<string, Promise<{ data: Record<string, string>; stale: boolean }>>();

  const servable = (entry: Known | undefined): entry is Known =>
    entry !== undefined && now() - entry.readAt <= options.ttlMs + options.staleMs;

  /** refresh reads the Secret once for all concurrent callers; a failure may be answered with the stale value. */
  function refresh(
    id: string,
    name: string,
    key: string,
    namespace: string | undefined,
  ): Promise<{ data: Record<string, string>; stale: boolean }> {
    const pending = loading.get(id);
    if (pending) return pending;
    const promise = options
      .load(name, key, namespace)
      .then((data) => {
        if (known.get(id)?.retryAt !== undefined)
          options.log.info({ secret: id }, 'Secret read again; no longer serving a stale value');
        known.set(id, { data, readAt: now() });
        return { data, stale: false };
      })
      .catch((err: unknown) => {
        const entry = known.get(id);
        if (!(err instanceof LookupFailedError)) known.delete(id); // gone or forbidden: never serve it stale
        if (!(err instanceof LookupFailedError) || !servable(entry)) throw err;
        if (entry.retryAt === undefined) {
          options.log.warn(
            { secret: id, error: err.message, readAgoMs: now() - entry.readAt },
            'Secret unreadable; serving the last value read (bounded by SECRET_STALE_SECONDS)',
          );
        }
        entry.retryAt = now() + (err.retryAfterMs ?? RETRY_MS);
        return { data: entry.data, stale: true };
      })
      .finally(() => loading.delete(id));
    loading.set(id, promise);
    return promise;
  }

  return {
    async read(name, key, namespace = options.defaultNamespace) {
      const id = `${namespace ?? ''}/${name}`;
      const entry = known.get(id);
      let data: Record<string, string>;
      if (entry && entry.retryAt === undefined && now() - entry.readAt < options.ttlMs) {
        options.count('cached');
        data = entry.data;
      } else if (entry?.retryAt !== undefined && servable(entry)) {
        // The API is failing: answer from the last good value now, retry in the background when allowed.
        if (now() >= entry.retryAt) void refresh(id, name, key, namespace).catch(() => undefined);
        options.count('stale');
        data = entry.data;
      } else {
        const read = await refresh(id, name, key, namespace);
        if (read.stale) options.count('stale');
        data = read.data;
      }
      if (data[key] === undefined) {
        const kind = options.kind ?? 'Secret';
        throw new MissingObjectError(
          `${kind === 'Secret' ? 'secretKeyRef' : 'configMapKeyRef'} ${name}/${key}: ${kind} ${id} has no key "${key}"`,
        );
      }
      // Remembered here, where the namespace is known: each namespace's values are bounded on their own.
      return options.kind === 'ConfigMap' ? data[key] : knownSecrets.remember(data[key], namespace ?? PROCESS_SOURCE);
    },
  };
}
