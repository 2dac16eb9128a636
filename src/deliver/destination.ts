/**
 * The delivery contract: a Sender takes a rendered request and reports one of these outcomes.
 * - delivered: the destination accepted it (2xx);
 * - rejected: the destination refused it permanently (4xx other than 408/429) — retrying cannot help;
 * - failed: it may succeed later (5xx, 408, 429, timeout, network) — the Broker should redeliver;
 * - rendered: a dry run's sender only shows the request (nothing was sent).
 * Policies (retry with its per-attempt timeout, bulkhead with its circuit breaker) are Senders that wrap
 * a Sender: retry-policy.ts, bulkhead.ts.
 */
import type { RenderedRequest } from '../render/rendered-request.js';
import type { TraceHeaders } from '../trace/event-trace.js';

export interface DeliveryResult {
  outcome: 'delivered' | 'rejected' | 'failed' | 'rendered';
  attempts: number;
  status?: number;
  /** Why it was not delivered: status and the start of the response body, or the network error. */
  error?: string;
  /** Set when the destination asked us to wait (Retry-After) longer than we may wait in-request. */
  retryAfterMs?: number;
  /**
   * A failure that says nothing about the destination: nothing was sent (too close to the deadline), or the
   * last attempt was cut short by the request's deadline rather than the destination's own timeout. It
   * must not count towards the destination's circuit breaker.
   */
  inconclusive?: boolean;
  /** Failed, and not to be retried within this request (a redirect): only the Broker's redelivery may help. */
  final?: boolean;
  /** One attempt's report (to the retry policy): no answer within the attempt's timeout. */
  timedOut?: boolean;
}

export interface SendOptions {
  /** Per-attempt timeout. */
  timeoutMs: number;
  /** Epoch ms after which no new attempt starts (the request to us must be answered before the Broker gives up). */
  deadline: number;
  /** Destination name, for metrics. */
  destination: string;
  /**
   * The destination's bulkhead lane (default: its name); destinations are per document, so the same name in two is two
   * lanes.
   */
  lane?: string;
  /** What the request is for, for output that names it. */
  context: { rule: string; ceId: string; occurrence: string };
  /** The W3C trace context this delivery continues (network senders add it to the request). */
  trace?: TraceHeaders;
}

export interface Sender {
  send(request: RenderedRequest, options: SendOptions): Promise<DeliveryResult>;
}
