/**
 * DeliveredStore remembers which (occurrence, rule, action) were already delivered, so a Broker
 * redelivery of the same event does not send them again. In memory, bounded, entries expire after a window.
 */
import { trimOldest } from '../bounded-map.js';
export interface DeliveredStore {
  has(key: string): Promise<boolean>;
  add(key: string): Promise<void>;
}

export function createMemoryDeliveredStore(windowMs: number, capacity = 100_000, now: () => number = Date.now): DeliveredStore {
  const expiries = new Map<string, number>();
  return {
    async has(key) {
      const expiry = expiries.get(key);
      if (expiry === undefined) return false;
      if (expiry > now()) return true;
      expiries.delete(key);
      return false;
    },
    async add(key) {
      expiries.delete(key);
      expiries.set(key, now() + windowMs);
      // Map iteration order is insertion order: the first entry is the oldest.
      trimOldest(expiries, capacity);
    },
  };
}
