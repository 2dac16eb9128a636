/**
 * sendAction delivers one rendered request with its destination kind's sender (its policies may refuse at
 * once: lane full, breaker open), then times, logs and redacts the outcome.
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

/** `trace`: the traceparent (and tracestate) the request carries, when the event has a trace to continue. */
export type ActionSender = (
  rule: CompiledRule,
  action: CompiledAction,
  input: EventInput,
  request: RenderedRequest,
  deadline: number,
  trace?: TraceHeaders,
) => Promise<DeliveryResult>;

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

export function createActionSender(deps: SendDeps & { log: Logger }): ActionSender {
  const { log } = deps;
  return async function sendAction(rule, action, input, request, deadline, trace) {
    const destination = action.destination.name;
    const context = { rule: rule.name, ceId: input.cloudevent.id, occurrence: input.occurrence };
    const result = await sendRequest(deps, rule, action, request, deadline, context, trace);
    const fields = () => ({
      rule: rule.name,
      destination,
      occurrence: input.occurrence,
      ceId: input.cloudevent.id,
      status: result.status,
      attempts: result.attempts,
    });
    if (result.outcome === 'failed')
      log.warn({ ...fields(), error: result.error }, 'delivery failed; the Broker will redeliver');
    else if (result.outcome === 'rejected')
      log.error({ ...fields(), error: result.error }, 'delivery rejected by the destination; not retried');
    else if (log.isLevelEnabled('info')) log.info(fields(), 'delivered');
    return result;
  };
}
