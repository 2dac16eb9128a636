/**
 * Throttling: a rule may fire at most `max` times per `window` for each value of its throttle key (a
 * JSONata expression; by default the involved object and reason) — e.g. BackOff on one pod at most once
 * per 10 minutes. Suppressed occurrences are counted, never silently dropped. An occurrence that was
 * admitted stays admitted, so a Broker redelivery of it is not suppressed by its own first attempt.
 */
import { trimOldest } from '../bounded-map.js';
export interface ThrottleStore {
  /** admit records the occurrence under the key if there is room in the window; `peek` records nothing. */
  admit(key: string, occurrence: string, windowMs: number, max: number, peek?: boolean): Promise<boolean>;
}

export const DEFAULT_THROTTLE_KEY = 'involvedObject.kind & "/" & involvedObject.namespace & "/" & involvedObject.name & "/" & reason';

/** parseDuration reads "90s", "10m", "1h", "1d" or a number of seconds into milliseconds. */
export function parseDuration(value: string | number): number {
  if (typeof value === 'number') return value * 1000;
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(value.trim());
  if (!match) throw new Error(`"${value}" is not a duration (examples: 90s, 10m, 1h)`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[(match[2] ?? 's') as 'ms' | 's' | 'm' | 'h' | 'd'];
  return Number(match[1]) * unit;
}

export function createMemoryThrottleStore(capacity = 100_000, now: () => number = Date.now): ThrottleStore {
  const windows = new Map<string, { occurrence: string; at: number }[]>();
  return {
    async admit(key, occurrence, windowMs, max, peek = false) {
      const since = now() - windowMs;
      const admitted = (windows.get(key) ?? []).filter((entry) => entry.at > since);
      if (admitted.some((entry) => entry.occurrence === occurrence)) return true;
      if (admitted.length >= max) return false;
      if (!peek) {
        admitted.push({ occurrence, at: now() });
        windows.delete(key); // keep Map order = recency, so the oldest key is evicted first
        windows.set(key, admitted);
        trimOldest(windows, capacity);
      }
      return true;
    },
  };
}
