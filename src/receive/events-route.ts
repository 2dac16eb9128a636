/**
 * POST / — the Broker's Trigger delivers CloudEvents here. The answer is the contract with the Broker:
 * - 204, empty body: every matched action was delivered or permanently rejected (a non-empty 2xx body
 *   that is not a CloudEvent makes the Broker answer 502 and redeliver);
 * - 429 + Retry-After: every action that failed was held back by a wait (a destination's Retry-After, a full
 *   destination queue, an open breaker) — the Broker should redeliver after it;
 * - 429 + Retry-After: the request would put more actions in flight than allowed (per request, or for the
 *   whole process: MAX_ACTIONS_PER_REQUEST, MAX_ACTIONS_IN_FLIGHT) — refused before any action started;
 *   or its body would take the request bytes in flight past MAX_BODY_BYTES_IN_FLIGHT — refused unread;
 * - 503 + Retry-After: an action may succeed later (the destination failed, a template hit a guard, its rule is
 *   quarantined, the service is not ready) — the Broker redelivers and in the end dead-letters;
 * - 4xx + {error, detail}: the request itself is wrong; the Broker does not retry it.
 */
import type { CloudEvent } from 'cloudevents';
import type { Middleware, Next } from 'koa';
import getRawBody from 'raw-body';
import type { Config } from '../config.js';
import type { Metrics } from '../metrics.js';
import { typeLabel } from '../metrics.js';
import type { EventReport, Pipeline } from '../pipeline.js';
import { parseCloudEvents } from './parse-cloudevents.js';
import { answerStatus } from './error-middleware.js';
import type { RecentEvents } from '../playground/recent-events.js';
import type { ActionCapacity, Reservation } from './action-capacity.js';
import { bytesToReserve, type BodyBytesInFlight } from './body-bytes-in-flight.js';
import { NO_TRACING, type Tracing } from '../trace/tracing.js';
import type { EventTrace } from '../trace/event-trace.js';

export interface EventsRouteDeps {
  config: Config;
  pipeline: Pipeline;
  /** The same pipeline sending and remembering nothing (src/dry-run.ts), for POST /dry-run. */
  dryRunPipeline: Pipeline;
  /** Actions in flight, per request and for the process. */
  capacity: ActionCapacity;
  metrics: Metrics;
  /** False until rules were loaded, and while shutting down. */
  isReady: () => boolean;
  /** The last events received, for the playground (redacted, bounded). */
  recent?: RecentEvents;
  /** Request bytes held by requests in flight (MAX_BODY_BYTES_IN_FLIGHT); without it, unbounded. */
  bodyBytes?: BodyBytesInFlight;
  /** Continues each event's W3C trace into its deliveries, and records spans when exporting (default: none). */
  tracing?: Tracing;
}

/** How long the Broker should wait before redelivering a request refused for the bytes in flight. */
const BODY_BYTES_RETRY_AFTER_SECONDS = 1;

/**
 * reserveBodyBytes takes room for the request's body before it is read, or answers 429 + Retry-After
 * (counted) and returns undefined. The release is to be called once the request is answered.
 */
function reserveBodyBytes(
  ctx: Parameters<Middleware>[0],
  config: Config,
  bodyBytes: BodyBytesInFlight | undefined,
  metrics?: Metrics,
): (() => void) | undefined {
  if (!bodyBytes) return () => {};
  const bytes = bytesToReserve(ctx.get('content-length'), config.maxBodyBytes);
  const release = bodyBytes.reserve(bytes);
  if (release) return release;
  metrics?.eventsReceived.inc({ type: typeLabel(ctx.get('ce-type') || undefined), outcome: 'over_capacity' });
  ctx.status = 429;
  ctx.set('Retry-After', String(BODY_BYTES_RETRY_AFTER_SECONDS));
  ctx.body = {
    error: 'over capacity',
    detail: `requests in flight hold ${bodyBytes.inFlight} bytes of body; this one (${bytes} bytes) would pass MAX_BODY_BYTES_IN_FLIGHT (${config.maxBodyBytesInFlight}); retry`,
  };
  return undefined;
}

/** readEvents reads the body (bounded) and parses every CloudEvent of the request, or throws a 4xx. */
async function readEvents(ctx: Parameters<Middleware>[0], config: Config): Promise<CloudEvent<unknown>[]> {
  const body = await getRawBody(ctx.req, {
    length: ctx.get('content-length') || undefined,
    limit: config.maxBodyBytes,
    encoding: 'utf8',
  });
  return parseCloudEvents(ctx.headers, body);
}

/** POST /: answers the request itself (never calls next). */
export type EventsHandler = (ctx: Parameters<Middleware>[0], next: Next) => Promise<void>;

export function eventsRoute({
  config,
  pipeline,
  capacity,
  metrics,
  isReady,
  recent,
  bodyBytes,
  tracing = NO_TRACING,
}: EventsRouteDeps): EventsHandler {
  return async function receiveEvents(ctx) {
    if (!isReady()) {
      // Before the rules are loaded every event would look unmatched and be acknowledged — lost.
      metrics.eventsReceived.inc({ type: typeLabel(ctx.get('ce-type') || undefined), outcome: 'not_ready' });
      ctx.status = 503;
      ctx.set('Retry-After', '1');
      ctx.body = { error: 'not ready', detail: 'rules are not loaded yet, or the service is shutting down; retry' };
      return;
    }
    const releaseBody = reserveBodyBytes(ctx, config, bodyBytes, metrics);
    if (!releaseBody) return;
    // One frame for the whole request (frames that outlive a young-generation collection are copied by it).
    let traces: EventTrace[] = [];
    let reservation: Reservation | undefined;
    let failedWith: number | undefined;
    try {
      const events = await readEvents(ctx, config);
      recent?.record(events, ctx.request.length);
      traces = events.map((event) => tracing.begin(ctx.headers, event));
      const deadline = Date.now() + config.deliveryDeadlineMs;
      const prepared = await pipeline.prepare(events, traces);
      reservation = capacity.reserve(prepared.actions, prepared.teamActions);
      if (!reservation.ok) {
        for (const event of events)
          metrics.eventsReceived.inc({ type: typeLabel(event.type), outcome: 'over_capacity' });
        ctx.status = 429;
        ctx.set('Retry-After', String(Math.ceil(reservation.retryAfterMs / 1000)));
        ctx.body = { error: 'over capacity', detail: reservation.reason };
        return;
      }
      answer(ctx, await prepared.run(deadline), metrics);
    } catch (err) {
      failedWith = answerStatus(err); // what the error middleware will answer, once this frame is gone
      throw err;
    } finally {
      if (reservation?.ok) reservation.release();
      for (const trace of traces) trace.end(failedWith ?? ctx.status);
      releaseBody();
    }
  };
}

/**
 * POST /dry-run — the same input as POST /, answered with the report of what would happen: the rules
 * evaluated and the conditions that decided, and each rendered request (secrets redacted). Sends
 * nothing and changes no state: no delivery, no dedup or occurrence memory, no metrics.
 */
export function dryRunRoute({ config, dryRunPipeline, capacity, bodyBytes }: EventsRouteDeps): Middleware {
  return async function dryRun(ctx) {
    const releaseBody = reserveBodyBytes(ctx, config, bodyBytes);
    if (!releaseBody) return;
    try {
      await dryRunEvents(ctx);
    } finally {
      releaseBody();
    }
  };

  async function dryRunEvents(ctx: Parameters<Middleware>[0]): Promise<void> {
    const prepared = await dryRunPipeline.prepare(await readEvents(ctx, config));
    // Rendering is the work a dry run does: the same caps.
    const reservation = capacity.reserve(prepared.actions, prepared.teamActions);
    if (!reservation.ok) {
      ctx.status = 429;
      ctx.set('Retry-After', String(Math.ceil(reservation.retryAfterMs / 1000)));
      ctx.body = { error: 'over capacity', detail: reservation.reason };
      return;
    }
    try {
      ctx.body = { events: await prepared.run(Date.now() + config.deliveryDeadlineMs) };
    } finally {
      reservation.release();
    }
  }
}

/** countReport counts one processed event: its outcome, or `retry` when an action must be redelivered. */
export function countReport(metrics: Metrics, report: EventReport): void {
  const retry = report.outcome === 'retry' || report.actions.some((a) => a.outcome === 'failed');
  metrics.eventsReceived.inc({ type: typeLabel(report.type), outcome: retry ? 'retry' : report.outcome });
}

function answer(ctx: Parameters<Middleware>[0], reports: EventReport[], metrics: Metrics): void {
  for (const report of reports) countReport(metrics, report);
  if (reports.every((r) => r.outcome !== 'retry' && r.actions.every((a) => a.outcome !== 'failed'))) {
    ctx.status = 204;
    ctx.body = null;
    return;
  }
  // What must be redelivered: failed actions, and events whose rules (or reference) need a lookup that failed.
  const failed = [
    ...reports.flatMap((r) =>
      r.actions
        .filter((a) => a.outcome === 'failed')
        // The Broker forwards this to the dead-letter sink: a status, never the destination's answer.
        .map((a) => ({
          retryAfterMs: a.retryAfterMs,
          unavailable: a.unavailable,
          detail: `rule ${a.rule} → destination ${a.destination}: ${a.status !== undefined ? `HTTP ${a.status}` : (a.error ?? 'failed')}`,
        })),
    ),
    ...reports
      .filter((r) => r.outcome === 'retry')
      .map((r) => ({ retryAfterMs: r.retryAfterMs, unavailable: false, detail: r.detail ?? 'a lookup failed' })),
  ];
  if (failed.length === 0) {
    ctx.status = 204;
    ctx.body = null;
    return;
  }
  const held = failed.every((a) => a.retryAfterMs !== undefined && !a.unavailable);
  ctx.status = held ? 429 : 503;
  const longestWait = Math.max(0, ...failed.map((a) => a.retryAfterMs ?? 0));
  ctx.set('Retry-After', String(Math.max(1, Math.ceil(longestWait / 1000))));
  ctx.body = {
    error: 'delivery failed',
    detail: failed.map((f) => f.detail).join('; '),
  };
}
