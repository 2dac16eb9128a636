/**
 * TtlCache: bounded, entries expire; concurrent misses for one key share a single load.
 */
import { trimOldest } from '../bounded-map.js';

export class TtlCache<V> {
  private readonly entries = new Map<string, { value: V; expires: number }>();
  private readonly loading = new Map<string, Promise<V>>();

  constructor(
    private readonly ttlMs: number,
    private readonly capacity: number,
    private readonly now: () => number = Date.now,
  ) {}

  /** get returns a fresh cached value, or runs `load` once for all concurrent callers. `cacheable` decides what is kept. */
  async get(key: string, load: () => Promise<V>, cacheable: (value: V) => boolean = () => true): Promise<{ value: V; cached: boolean }> {
    const entry = this.entries.get(key);
    if (entry && entry.expires > this.now()) return { value: entry.value, cached: true };
    const pending = this.loading.get(key);
    if (pending) return { value: await pending, cached: true };
    const promise = load();
    this.loading.set(key, promise);
    try {
      const value = await promise;
      if (cacheable(value)) this.set(key, value);
      return { value, cached: false };
    } finally {
      this.loading.delete(key);
    }
  }

  private set(key: string, value: V): void {
    this.entries.delete(key);
    this.entries.set(key, { value, expires: this.now() + this.ttlMs });
    trimOldest(this.entries, this.capacity);
  }
}
