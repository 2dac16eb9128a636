/**
 * Bulkhead and circuit breaker, per destination: a destination that is slow or down must not hold up
 * the others or grow memory.
 * - At most `maxConcurrent` requests in flight per destination, at most `maxQueued` waiting; beyond
 *   that the delivery fails at once (the Broker redelivers later) instead of queueing without bound.
 * - After `failureThreshold` consecutive failures the breaker opens: deliveries fail at once for
 *   `openMs`; then one probe is let through (half-open) — success closes it, failure opens it again.
 */
import type { Metrics } from '../metrics.js';

export interface BulkheadOptions {
  maxConcurrent: number;
  maxQueued: number;
  failureThreshold: number;
  openMs: number;
}

export type Admission = { ok: true; release: (failed: boolean) => void } | { ok: false; reason: string; retryAfterMs: number };

interface Lane {
  /** The destination's name (its metric label); lanes are per document, so two may share it. */
  destination: string;
  inFlight: number;
  queue: (() => void)[];
  failures: number;
  openUntil: number;
  probing: boolean;
}

const BREAKER_STATE = { closed: 0, open: 1, half_open: 2 } as const;

export interface Bulkheads {
  /** acquire waits for a slot of the destination `key`, or refuses at once (queue full, breaker open); `label` names it in metrics. */
  acquire(key: string, label: string): Promise<Admission>;
}

export function createBulkheads(options: BulkheadOptions, metrics: Metrics, now: () => number = Date.now): Bulkheads {
  const lanes = new Map<string, Lane>();
  const lane = (key: string, destination: string) => {
    let found = lanes.get(key);
    if (!found) lanes.set(key, (found = { destination, inFlight: 0, queue: [], failures: 0, openUntil: 0, probing: false }));
    return found;
  };
  const stateOf = (l: Lane) => (l.openUntil > now() ? 'open' : l.probing || l.failures >= options.failureThreshold ? 'half_open' : 'closed');
  metrics.sampleLanes(() => [...lanes.values()].map((l) => ({ destination: l.destination, inFlight: l.inFlight, queued: l.queue.length, state: BREAKER_STATE[stateOf(l)] })));

  return {
    async acquire(key, destination) {
      const l = lane(key, destination);
      const open = l.failures >= options.failureThreshold;
      if (open && (l.openUntil > now() || l.probing)) {
        return { ok: false, reason: `circuit open: ${l.failures} consecutive failures`, retryAfterMs: Math.max(1000, l.openUntil - now()) };
      }
      const probe = open; // the breaker's open period is over: this delivery is the probe
      if (probe) l.probing = true;
      if (!probe && l.inFlight >= options.maxConcurrent) {
        if (l.queue.length >= options.maxQueued) {
          return { ok: false, reason: `destination busy: ${l.inFlight} in flight and ${l.queue.length} queued`, retryAfterMs: 1000 };
        }
        await new Promise<void>((resume) => l.queue.push(resume));
      }
      l.inFlight++;
      return {
        ok: true,
        release(failed) {
          l.inFlight--;
          if (failed) {
            l.failures++;
            if (l.failures >= options.failureThreshold) l.openUntil = now() + options.openMs;
          } else {
            l.failures = 0;
            l.openUntil = 0;
          }
          if (probe) l.probing = false;
          l.queue.shift()?.();
        },
      };
    },
  };
}
