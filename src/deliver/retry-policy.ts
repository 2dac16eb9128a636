/**
 * When to retry a delivery and how long to wait: exponential backoff with full jitter, and the
 * destination's Retry-After (seconds or HTTP date) when it sends one. withRetry applies it around a
 * sender that makes one attempt, with the timeout of each attempt cut to the request's deadline.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { DeliveryResult, Sender } from './destination.js';

const BASE_DELAY_MS = 100;
/**
 * No attempt starts with less time than this left before its request's deadline: it could only time out
 * with an unknown outcome, and the Broker's redelivery would then be a duplicate.
 */
export const MIN_ATTEMPT_MS = 100;
const MAX_DELAY_MS = 2000;

/**
 * 4xx statuses HTTP defines as "try again": 408 Request Timeout, 421 Misdirected Request (retry on another
 * connection), 423 Locked (until the lock is released), 425 Too Early (after the handshake), 429 Too Many Requests.
 */
const RETRYABLE_4XX = new Set([408, 421, 423, 425, 429]);

/** isRetryableStatus: the 4xx above and 5xx may succeed later; other 4xx never will. */
export function isRetryableStatus(status: number): boolean {
  return status >= 500 || RETRYABLE_4XX.has(status);
}

/** backoffMs for the attempt that just failed (1-based): random in [0, min(cap, base·2^(attempt-1))]. */
export function backoffMs(attempt: number, random: () => number = Math.random): number {
  return Math.floor(random() * Math.min(MAX_DELAY_MS, BASE_DELAY_MS * 2 ** (attempt - 1)));
}

/** parseRetryAfter reads a Retry-After header value into milliseconds, or undefined when absent or invalid. */
export function parseRetryAfter(value: string | null, now: number = Date.now()): number | undefined {
  if (!value) return undefined;
  const trimmed = value.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000);
  const date = Date.parse(trimmed);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

export interface RetryOptions {
  /** Most attempts within one request. */
  attempts: number;
  /** A Retry-After longer than this is not waited for in-request: the Broker redelivers later. */
  retryAfterMaxMs: number;
}

/**
 * withRetry sends through `attempt` (one attempt per call) until it is delivered, rejected, out of attempts,
 * or too close to the request's deadline to try again. Each attempt gets the destination's timeout, or what is
 * left before the deadline if that is less.
 */
export function withRetry(attempt: Sender, options: RetryOptions): Sender {
  return {
    async send(request, sendOptions): Promise<DeliveryResult> {
      const { timeoutMs, deadline } = sendOptions;
      for (let n = 1; ; n++) {
        const remaining = deadline - Date.now();
        // Too close to the deadline (queued that long): hand it back to the Broker instead.
        if (remaining < MIN_ATTEMPT_MS) {
          const error = `too close to the request's deadline to start attempt ${n} (${Math.max(0, remaining)} ms left)`;
          return { outcome: 'failed', attempts: n - 1, error, retryAfterMs: 1000, inconclusive: n === 1 };
        }
        const attemptTimeoutMs = Math.min(timeoutMs, remaining);
        const result = await attempt.send(
          request,
          attemptTimeoutMs === timeoutMs ? sendOptions : { ...sendOptions, timeoutMs: attemptTimeoutMs },
        );
        if (result.outcome === 'delivered')
          return n === 1 && result.attempts === 1
            ? result
            : { outcome: 'delivered', attempts: n, status: result.status };
        const failed = { attempts: n, status: result.status, error: result.error };
        if (result.outcome === 'rejected') return { outcome: 'rejected', ...failed };
        const wait = result.retryAfterMs ?? backoffMs(n);
        const tooLong = result.retryAfterMs !== undefined && result.retryAfterMs > options.retryAfterMaxMs;
        if (result.final || n >= options.attempts || tooLong || Date.now() + wait + MIN_ATTEMPT_MS > deadline) {
          // Cut short by the request's deadline rather than the destination's own timeout: says nothing about it.
          return {
            outcome: 'failed',
            ...failed,
            retryAfterMs: result.retryAfterMs,
            inconclusive: result.timedOut === true && attemptTimeoutMs < timeoutMs,
          };
        }
        await sleep(wait);
      }
    },
  };
}
