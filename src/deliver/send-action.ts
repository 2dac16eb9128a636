/**
 * sendRequest delivers one rendered request with its destination kind's sender (its policies may refuse at
 * once: lane full, breaker open), then times and redacts the outcome; logDelivery logs a pipeline delivery.
 */
import type { Config } from '../config.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { EventInput } from '../normalize/kube-event.js';
import { knownSecrets } from '../redact.js';
import type { RenderedRequest } from '../render/rendered-request.js';
import type { CompiledAction, CompiledRule } from '../rules/compiled-rule.js';
import type { DeliveryResult, SendOptions } from './destination.js';
import { hideOwnSecrets } from './error-excerpt.js';
import type { Senders } from './kinds/registry.js';
import type { TraceHeaders } from '../trace/event-trace.js';

export interface SendDeps {
  senders: Senders;
  config: Config;
  metrics: Metrics;
}

/**
 * sendRequest: one rendered request through its kind's sender and policies, timed, its error redacted — what
 * the pipeline's deliveries and background deliveries (digest flushes, region timeouts) share.
 */
export async function sendRequest(
  { senders, config, metrics }: SendDeps,
  rule: CompiledRule,
  action: CompiledAction,
  request: RenderedRequest,
  deadline: number,
  context: SendOptions['context'],
  trace?: TraceHeaders,
): Promise<DeliveryResult> {
  const destination = action.destination.name;
  const started = performance.now();
  const result = await senders[action.destination.kind].send(request, {
    timeoutMs: action.destination.timeoutMs ?? config.deliveryTimeoutMs,
    deadline,
    destination,
    // Destinations are per document, so the same name in two documents is two bulkhead lanes.
    lane: `${rule.source}#${destination}`,
    context,
    trace,
  });
  metrics.deliveryDuration.observe({ destination }, (performance.now() - started) / 1000);
  // A destination may echo what it was sent (the Authorization header, a secret URL path) in its error body.
  return result.error ? { ...result, error: knownSecrets.redact(hideOwnSecrets(result.error, request)) } : result;
}

/** logDelivery logs one pipeline delivery's outcome (a delivery is logged at info, which production runs without). */
export function logDelivery(
  log: Logger,
  rule: CompiledRule,
  action: CompiledAction,
  input: EventInput,
  result: DeliveryResult,
): void {
  if (result.outcome === 'delivered' && !log.isLevelEnabled('info')) return;
  const fields = {
    rule: rule.name,
    destination: action.destination.name,
    occurrence: input.occurrence,
    ceId: input.cloudevent.id,
    status: result.status,
    attempts: result.attempts,
  };
  if (result.outcome === 'failed')
    log.warn({ ...fields, error: result.error }, 'delivery failed; the Broker will redeliver');
  else if (result.outcome === 'rejected')
    log.error({ ...fields, error: result.error }, 'delivery rejected by the destination; not retried');
  else log.info(fields, 'delivered');
}
