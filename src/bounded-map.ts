/**
 * trimOldest keeps a Map used as an insertion-ordered cache within `capacity`. Maps iterate in insertion
 * order, but deleting the first entry one at a time leaves holes that every later `keys().next()` walks
 * over again — quadratic under steady churn (measured: a 10-minute soak at 1,000 events/s fell behind once
 * the caches were full). Trimming 10 % at a time with one iterator keeps eviction amortized O(1).
 */
export function trimOldest<K, V>(map: Map<K, V>, capacity: number): void {
  if (map.size <= capacity) return;
  let excess = map.size - Math.floor(capacity * 0.9);
  for (const key of map.keys()) {
    if (excess-- <= 0) break;
    map.delete(key);
  }
}
