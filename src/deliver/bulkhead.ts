/**
 * Bulkhead and circuit breaker, per destination: a destination that is slow or down must not hold up
 * the others or grow memory.
 * - At most `maxConcurrent` requests in flight per destination, at most `maxQueued` waiting; beyond
 *   that the delivery fails at once (the Broker redelivers later) instead of queueing without bound.
 * - After `failureThreshold` consecutive failures the breaker opens: deliveries fail at once for
 *   `openMs`; then one probe is let through (half-open) — success closes it, failure opens it again.
 * - A queued delivery is checked again when its turn comes, and gives up at its request's deadline
 *   (less `MIN_ATTEMPT_MS`):
 *   it is never sent once the breaker has opened or after the Broker's answer is due (a late send
 *   would be a duplicate of the Broker's redelivery).
 */
import type { Metrics } from '../metrics.js';
import type { DeliveryResult, Sender } from './destination.js';
import { MIN_ATTEMPT_MS } from './retry-policy.js';

export interface BulkheadOptions {
  maxConcurrent: number;
  maxQueued: number;
  failureThreshold: number;
  openMs: number;
}

export type Refusal = { ok: false; reason: string; retryAfterMs: number };
/**
 * `release(failed)`: true a failure, false a success, undefined no verdict (nothing was learnt about the destination).
 */
export type Admission = { ok: true; release: (failed: boolean | undefined) => void } | Refusal;

/** A delivery waiting for a slot: `turn` hands it a slot (true) or refuses it. */
interface Waiter {
  deadline: number;
  turn: (refusal: Refusal | undefined) => void;
}

interface Lane {
  /** The destination's name (its metric label); lanes are per document, so two may share it. */
  destination: string;
  inFlight: number;
  queue: Waiter[];
  failures: number;
  openUntil: number;
  probing: boolean;
}

const BREAKER_STATE = { closed: 0, open: 1, half_open: 2 } as const;
/** What the Broker is asked to wait when a destination is busy. */
const BUSY_RETRY_MS = 1000;

export interface Bulkheads {
  /**
   * acquire waits for a slot of the destination `key` until `deadline` (epoch ms), or refuses (queue full,
   * breaker open, deadline passed while queued); `label` names it in metrics.
   */
  acquire(key: string, label: string, deadline?: number): Admission | Promise<Admission>;
}

export function createBulkheads(options: BulkheadOptions, metrics: Metrics, now: () => number = Date.now): Bulkheads {
  const lanes = new Map<string, Lane>();
  const lane = (key: string, destination: string) => {
    let found = lanes.get(key);
    if (!found)
      lanes.set(key, (found = { destination, inFlight: 0, queue: [], failures: 0, openUntil: 0, probing: false }));
    return found;
  };
  const stateOf = (l: Lane) =>
    l.openUntil > now() ? 'open' : l.probing || l.failures >= options.failureThreshold ? 'half_open' : 'closed';
  metrics.sampleLanes(() =>
    [...lanes.values()].map((l) => ({
      destination: l.destination,
      inFlight: l.inFlight,
      queued: l.queue.length,
      state: BREAKER_STATE[stateOf(l)],
    })),
  );

  const circuitOpen = (l: Lane): Refusal => ({
    ok: false,
    reason: `circuit open: ${l.failures} consecutive failures`,
    retryAfterMs: Math.max(1000, l.openUntil - now()),
  });
  const tooLate = (l: Lane): Refusal => ({
    ok: false,
    reason: `destination busy: the request's deadline passed while queued (${l.inFlight} in flight)`,
    retryAfterMs: BUSY_RETRY_MS,
  });

  /** next hands the freed slot to the first waiter still worth sending; the others are refused now. */
  function next(l: Lane): void {
    while (l.queue.length > 0 && l.inFlight < options.maxConcurrent) {
      const waiter = l.queue.shift()!;
      if (l.failures >= options.failureThreshold) waiter.turn(circuitOpen(l));
      else if (now() > waiter.deadline - MIN_ATTEMPT_MS) waiter.turn(tooLate(l));
      else return waiter.turn(undefined);
    }
  }

  function admit(l: Lane, probe: boolean): Admission {
    l.inFlight++;
    return {
      ok: true,
      release(failed) {
        l.inFlight--;
        if (failed) {
          l.failures++;
          if (l.failures >= options.failureThreshold) l.openUntil = now() + options.openMs;
        } else if (failed === false) {
          l.failures = 0;
          l.openUntil = 0;
        }
        if (probe) l.probing = false;
        next(l);
      },
    };
  }

  /** enqueue waits for a slot; a timer at the deadline takes the waiter out of the queue and refuses it. */
  function enqueue(l: Lane, deadline: number): Promise<Admission> {
    return new Promise<Admission>((resolve) => {
      const timer = Number.isFinite(deadline)
        ? setTimeout(
            () => {
              const at = l.queue.indexOf(waiter);
              if (at >= 0) l.queue.splice(at, 1);
              resolve(tooLate(l));
            },
            Math.max(0, deadline - MIN_ATTEMPT_MS - now()),
          )
        : undefined;
      const waiter: Waiter = {
        deadline,
        turn(refusal) {
          clearTimeout(timer);
          resolve(refusal ?? admit(l, false));
        },
      };
      l.queue.push(waiter);
    });
  }

  return {
    // Not async: a free slot (nearly every delivery) is granted without a promise.
    acquire(key, destination, deadline = Infinity) {
      const l = lane(key, destination);
      const open = l.failures >= options.failureThreshold;
      if (open && (l.openUntil > now() || l.probing)) return circuitOpen(l);
      const probe = open; // the breaker's open period is over: this delivery is the probe
      if (probe) l.probing = true;
      if (!probe && l.inFlight >= options.maxConcurrent) {
        if (l.queue.length >= options.maxQueued) {
          return {
            ok: false,
            reason: `destination busy: ${l.inFlight} in flight and ${l.queue.length} queued`,
            retryAfterMs: BUSY_RETRY_MS,
          };
        }
        return enqueue(l, deadline);
      }
      return admit(l, probe);
    },
  };
}

/**
 * withBulkhead sends through `sender` holding a slot of the destination's lane, or fails at once (attempts 0)
 * when the lane is full or its breaker open; a failed delivery counts towards opening the breaker, unless it
 * was inconclusive (nothing learnt about the destination).
 */
export function withBulkhead(sender: Sender, bulkheads: Bulkheads): Sender {
  return {
    async send(request, options): Promise<DeliveryResult> {
      const acquired = bulkheads.acquire(options.lane ?? options.destination, options.destination, options.deadline);
      const slot = acquired instanceof Promise ? await acquired : acquired;
      if (!slot.ok) return { outcome: 'failed', attempts: 0, error: slot.reason, retryAfterMs: slot.retryAfterMs };
      let failed: boolean | undefined = true;
      try {
        const result = await sender.send(request, options);
        failed = result.outcome === 'failed' ? (result.inconclusive ? undefined : true) : false;
        return result;
      } finally {
        slot.release(failed);
      }
    },
  };
}
