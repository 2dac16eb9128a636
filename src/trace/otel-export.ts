/**
 * Recorded tracing: the OpenTelemetry SDK with a batching OTLP/HTTP (JSON) exporter, loaded only when an
 * endpoint is configured. Spans per event: `receive` (its parent the sender's span) with the children
 * `match`, one `render` per action and one `deliver` per action (its attempts share it, and its id is
 * the parent the destination sees). Attributes name the event (id, type), rules and destinations, outcomes
 * and statuses — never a URL, a header or a body: those may hold secrets.
 *
 * The SDK reads the rest of its settings from the process environment (sampler, batch sizes, exporter
 * headers, timeout, compression, certificates, resource attributes); the tracer is not registered
 * globally, and nothing else in the process is instrumented.
 */
import {
  diag,
  DiagLogLevel,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  trace,
  type Context,
  type Span,
  type Tracer,
} from '@opentelemetry/api';
import { TraceState } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { detectResources, envDetector, resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { CloudEvent } from 'cloudevents';
import type { Logger } from '../log.js';
import { traceparentOf, type IncomingContext } from './trace-context.js';
import type { DeliverSpan, EventTrace, MatchSpan, RenderSpan, TraceHeaders } from './event-trace.js';

export const SERVICE_NAME = 'kube-event-rules';

/** Matched rule names listed on a match span; the count is always there. */
const MAX_NAMES = 20;

export interface SpanExport {
  start(parent: IncomingContext | undefined, event: CloudEvent<unknown>): EventTrace;
  shutdown(): Promise<void>;
}

export function startExport({ url, version, log }: { url: string; version: string; log: Logger }): SpanExport {
  // The SDK reports export failures through its diagnostic logger; ours shows warnings and errors.
  diag.setLogger(
    {
      error: (message) => log.warn({ component: 'opentelemetry' }, `tracing: ${message}`),
      warn: (message) => log.warn({ component: 'opentelemetry' }, `tracing: ${message}`),
      info: () => {},
      debug: () => {},
      verbose: () => {},
    },
    { logLevel: DiagLogLevel.WARN, suppressOverrideMessage: true },
  );
  // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win over our defaults, as the specification asks.
  const resource = resourceFromAttributes({ 'service.name': SERVICE_NAME, 'service.version': version }).merge(
    detectResources({ detectors: [envDetector] }),
  );
  const provider = new BasicTracerProvider({
    resource,
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter({ url }))],
  });
  const tracer = provider.getTracer(SERVICE_NAME, version);
  return {
    start(parent, event) {
      const parentContext = parent
        ? trace.setSpanContext(ROOT_CONTEXT, {
            traceId: parent.traceId,
            spanId: parent.spanId,
            traceFlags: parent.sampled ? 1 : 0,
            isRemote: true,
            traceState: parent.tracestate === undefined ? undefined : new TraceState(parent.tracestate),
          })
        : ROOT_CONTEXT;
      const root = tracer.startSpan(
        'receive',
        {
          kind: SpanKind.SERVER,
          attributes: {
            'cloudevents.event_id': event.id,
            'cloudevents.event_type': event.type,
            'cloudevents.event_spec_version': event.specversion,
          },
        },
        parentContext,
      );
      return new RecordedTrace(tracer, root, trace.setSpan(ROOT_CONTEXT, root));
    },
    shutdown: () => provider.shutdown(),
  };
}

class RecordedTrace implements EventTrace {
  constructor(
    private readonly tracer: Tracer,
    private readonly root: Span,
    private readonly context: Context,
  ) {}

  match(): MatchSpan {
    const span = this.tracer.startSpan('match', undefined, this.context);
    return {
      end(matched) {
        span.setAttribute('kube_event_rules.rules_matched', matched.length);
        if (matched.length > 0)
          span.setAttribute(
            'kube_event_rules.rule_names',
            matched.slice(0, MAX_NAMES).map((rule) => rule.name),
          );
        span.end();
      },
    };
  }

  render(rule: string, destination: string): RenderSpan {
    const span = this.tracer.startSpan(
      'render',
      { attributes: { 'kube_event_rules.rule': rule, 'kube_event_rules.destination': destination } },
      this.context,
    );
    return {
      end(failure) {
        if (failure !== undefined) {
          span.setAttribute('kube_event_rules.outcome', failure);
          span.setStatus({ code: SpanStatusCode.ERROR, message: 'not rendered' });
        }
        span.end();
      },
    };
  }

  deliver(rule: string, destination: string): DeliverSpan {
    const span = this.tracer.startSpan(
      'deliver',
      {
        kind: SpanKind.CLIENT,
        attributes: { 'kube_event_rules.rule': rule, 'kube_event_rules.destination': destination },
      },
      this.context,
    );
    const context = span.spanContext();
    const headers: TraceHeaders = {
      traceparent: traceparentOf(context.traceId, context.spanId, (context.traceFlags & 1) === 1),
    };
    const tracestate = context.traceState?.serialize();
    if (tracestate) headers.tracestate = tracestate;
    return {
      headers,
      end(result) {
        span.setAttribute('kube_event_rules.outcome', result.outcome);
        span.setAttribute('kube_event_rules.attempts', result.attempts);
        if (result.status !== undefined) span.setAttribute('http.response.status_code', result.status);
        if (result.outcome !== 'delivered') span.setStatus({ code: SpanStatusCode.ERROR, message: result.outcome });
        span.end();
      },
    };
  }

  end(status: number): void {
    this.root.setAttribute('http.response.status_code', status);
    if (status >= 500) this.root.setStatus({ code: SpanStatusCode.ERROR });
    this.root.end();
  }
}
