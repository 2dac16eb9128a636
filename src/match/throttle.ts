/**
 * Throttling: a rule may fire at most `max` times per `window` for each value of its throttle key (a
 * JSONata expression; by default the involved object and reason) — e.g. BackOff on one pod at most once
 * per 10 minutes. Suppressed occurrences are counted, never silently dropped. An occurrence that was
 * admitted stays admitted, so a Broker redelivery of it is not suppressed by its own first attempt.
 */
import { HashedTable } from '../store/hashed-table.js';
export interface ThrottleStore {
  /** admit records the occurrence under the key if there is room in the window; `peek` records nothing. */
  admit(key: string, occurrence: string, windowMs: number, max: number, peek?: boolean): Promise<boolean>;
}

export const DEFAULT_THROTTLE_KEY =
  'involvedObject.kind & "/" & involvedObject.namespace & "/" & involvedObject.name & "/" & reason';

/** parseDuration reads "90s", "10m", "1h", "1d" or a number of seconds into milliseconds. */
export function parseDuration(value: string | number): number {
  if (typeof value === 'number') return value * 1000;
  const match = /^(\d+(?:\.\d+)?)(ms|s|m|h|d)?$/.exec(value.trim());
  if (!match) throw new Error(`"${value}" is not a duration (examples: 90s, 10m, 1h)`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[
    (match[2] ?? 's') as 'ms' | 's' | 'm' | 'h' | 'd'
  ];
  return Number(match[1]) * unit;
}

/**
 * The in-memory store keeps its windows in typed arrays (HashedTable: nothing for the garbage collector to
 * walk, docs/performance.md) and remembers the last `capacity` admissions: for each, the time in the key's
 * window (one of `max` places, `<key>#<place>`) and the admitted occurrence (`<key>@<occurrence>`), so a
 * redelivery of it is admitted again.
 */
export function createMemoryThrottleStore(capacity = 100_000, now: () => number = Date.now): ThrottleStore {
  const places = new HashedTable(capacity, 1); // field 0: when the place was taken
  const admitted = new HashedTable(capacity, 1); // field 0: when the occurrence was admitted
  const takenAt = (table: HashedTable, key: string) => {
    const slot = table.find(key);
    return slot < 0 ? undefined : table.get(slot);
  };
  return {
    async admit(key, occurrence, windowMs, max, peek = false) {
      const at = now();
      const since = at - windowMs;
      const occurrenceKey = `${key}\n@${occurrence}`;
      if ((takenAt(admitted, occurrenceKey) ?? since) > since) return true;
      let free = -1;
      for (let place = 0; place < max && free < 0; place++) {
        if ((takenAt(places, `${key}\n#${place}`) ?? since) <= since) free = place;
      }
      if (free < 0) return false;
      if (!peek) {
        places.set(places.write(`${key}\n#${free}`), 0, at);
        admitted.set(admitted.write(occurrenceKey), 0, at);
      }
      return true;
    },
  };
}
