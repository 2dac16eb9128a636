/**
 * keyFailure: what a digest or region key that could not be evaluated means for its occurrence. A lookup that
 * failed, a full template queue, a guard trip or a missing Secret may pass later: `failed`, so the Broker
 * redelivers (never acknowledged unrecorded). Anything else is the rule's error: counted, logged, not retried.
 */
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { knownSecrets } from '../redact.js';
import { mayPassLater } from '../render/render-action.js';

export type KeyFailure =
  { outcome: 'failed'; error: string; retryAfterMs?: number; unavailable?: true } | { outcome: 'error'; error: string };

export function keyFailure(
  err: unknown,
  message: string,
  {
    log,
    metrics,
    fields,
    what,
    notKept,
  }: {
    log: Logger;
    metrics: Metrics;
    fields: { rule: string } & Record<string, unknown>;
    /** "digest key", "region key" */
    what: string;
    /** what the occurrence is not, for the log line: "grouped", "paired" */
    notKept: string;
  },
): KeyFailure {
  const error = knownSecrets.redact(message);
  const later = mayPassLater(err);
  if (later) {
    log.warn({ ...fields, error }, `${what} not evaluated now; the Broker will redeliver`);
    return {
      outcome: 'failed',
      error,
      retryAfterMs: later.retryAfterMs,
      ...(later.unavailable ? { unavailable: true as const } : {}),
    };
  }
  metrics.templateErrors.inc({ rule: fields.rule });
  log.error({ ...fields, error }, `${what} failed; the occurrence is not ${notKept}`);
  return { outcome: 'error', error };
}
