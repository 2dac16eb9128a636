/**
 * When to retry a delivery and how long to wait: exponential backoff with full jitter, and the
 * destination's Retry-After (seconds or HTTP date) when it sends one.
 */

const BASE_DELAY_MS = 100;
/**
 * No attempt starts with less time than this left before its request's deadline: it could only time out
 * with an unknown outcome, and the Broker's redelivery would then be a duplicate.
 */
export const MIN_ATTEMPT_MS = 100;
const MAX_DELAY_MS = 2000;

/** isRetryableStatus: 408, 429 and 5xx may succeed later; other 4xx never will. */
export function isRetryableStatus(status: number): boolean {
  return status === 408 || status === 429 || status >= 500;
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
