/**
 * DeliveredStore remembers which (occurrence, rule, action) were already delivered, so a Broker
 * redelivery of the same event does not send them again. In memory, bounded, entries expire after a window.
 */
import { HashedTable } from '../store/hashed-table.js';
export interface DeliveredStore {
  has(key: string): Promise<boolean>;
  add(key: string): Promise<void>;
}

export function createMemoryDeliveredStore(
  windowMs: number,
  capacity = 100_000,
  now: () => number = Date.now,
): DeliveredStore {
  const expiries = new HashedTable(capacity, 1); // field 0: when the entry expires (ms since the epoch)
  return {
    async has(key) {
      const slot = expiries.find(key);
      if (slot < 0) return false;
      if (expiries.get(slot) > now()) return true;
      expiries.delete(key);
      return false;
    },
    async add(key) {
      expiries.set(expiries.write(key), 0, now() + windowMs);
    },
  };
}
