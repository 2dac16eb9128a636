/**
 * withTraceHeaders: the network sender that adds a delivery's trace context to its request. Ours replace
 * a `traceparent`/`tracestate` a rule set itself (in any letter case): a destination must see one parent.
 */
import type { Sender } from '../deliver/destination.js';
import type { RenderedRequest } from '../render/rendered-request.js';
import type { TraceHeaders } from './event-trace.js';

export function withTraceHeaders(sender: Sender): Sender {
  return {
    send: (request, options) => sender.send(options.trace ? traced(request, options.trace) : request, options),
  };
}

function traced(request: RenderedRequest, trace: TraceHeaders): RenderedRequest {
  const headers: Record<string, string> = {};
  for (const name in request.headers) {
    const lower = name.toLowerCase();
    if (lower !== 'traceparent' && lower !== 'tracestate') headers[name] = request.headers[name];
  }
  headers.traceparent = trace.traceparent;
  if (trace.tracestate !== undefined) headers.tracestate = trace.tracestate;
  return { ...request, headers };
}
