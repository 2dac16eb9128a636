/**
 * fetchShared reads through an lru-cache whose fetchMethod loads the value: concurrent misses of one key share
 * one load. A load whose value must not be kept throws it wrapped in Uncached — every caller waiting for that
 * load gets the value, and the cache forgets the key.
 */
import type { LRUCache } from 'lru-cache';

export class Uncached<V> {
  constructor(readonly value: V) {}
}

/** `cached`: answered from the cache or by a load another caller had already started. */
export async function fetchShared<V extends NonNullable<unknown>, C>(
  cache: LRUCache<string, V, C>,
  key: string,
  context: C,
): Promise<{ value: V; cached: boolean }> {
  const status: LRUCache.Status<string, V, C> = {};
  // lru-cache types `fetch` by whether the context type is known; here it is generic.
  const fetch = cache.fetch.bind(cache) as (
    key: string,
    options: LRUCache.FetchOptions<string, V, C>,
  ) => Promise<V | undefined>;
  try {
    const value = await fetch(key, { context, status });
    return { value: value as V, cached: status.fetch === 'hit' || status.fetch === 'inflight' };
  } catch (err) {
    if (err instanceof Uncached) return { value: err.value as V, cached: status.fetch === 'inflight' };
    throw err;
  }
}
