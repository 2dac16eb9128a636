/**
 * Tracing: every received event continues its sender's W3C trace. Each delivery carries a `traceparent`
 * with the sender's trace id and a span id of its own (and the sender's `tracestate`), whether or not
 * spans are exported. Spans (receive → match, render, deliver) are recorded and exported over OTLP/HTTP
 * only when an OTLP endpoint is configured (./otel-export.ts, loaded only then); otherwise no
 * OpenTelemetry SDK is loaded and an event without trace context costs two property reads.
 */
import type { CloudEvent } from 'cloudevents';
import type { IncomingHttpHeaders } from 'node:http';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { newSpanId, readContext, traceparentOf, type IncomingContext, type MalformedContext } from './trace-context.js';
import {
  NO_SPAN,
  NO_TRACE,
  type DeliverSpan,
  type EventTrace,
  type MatchSpan,
  type RenderSpan,
} from './event-trace.js';

export { NO_TRACE, type EventTrace } from './event-trace.js';

export interface Tracing {
  /** Whether spans are recorded and exported. */
  readonly exporting: boolean;
  /**
   * begin: the trace of one received event. Its parent is the request's `traceparent` header when valid,
   * else the event's `traceparent` extension; a malformed one is counted, logged and ignored.
   */
  begin(headers: IncomingHttpHeaders | undefined, event: CloudEvent<unknown>): EventTrace;
  /** Flush the spans still buffered (bounded), then stop exporting. */
  close(): Promise<void>;
}

export interface TracingSettings {
  /** The OTLP/HTTP traces URL (…/v1/traces); empty: no export. */
  tracesUrl: string;
}

/** The no-op Tracing (dry runs, the CLI): no propagation, no spans. */
export const NO_TRACING: Tracing = { exporting: false, begin: () => NO_TRACE, close: async () => {} };

/**
 * PropagatedTrace continues the sender's trace without recording: each delivery gets a new span id under
 * the sender's trace id, with the sender's sampled flag, so the destination's spans join the same trace.
 */
class PropagatedTrace implements EventTrace {
  constructor(private readonly parent: IncomingContext) {}
  match(): MatchSpan {
    return NO_SPAN;
  }
  render(): RenderSpan {
    return NO_SPAN;
  }
  deliver(): DeliverSpan {
    const { traceId, sampled, tracestate } = this.parent;
    return new UnrecordedSpan({ traceparent: traceparentOf(traceId, newSpanId(), sampled), tracestate });
  }
  end(): void {}
}

/** A delivery's span that only carries its headers (a class: no closure per delivery for `end`). */
class UnrecordedSpan implements DeliverSpan {
  constructor(readonly headers: DeliverSpan['headers']) {}
  end(): void {}
}

/** How long shutdown waits for the last spans to be exported. */
const FLUSH_MS = 5000;

export async function createTracing(
  settings: TracingSettings,
  deps: { metrics: Metrics; log: Logger; version: string; shutdownTimeoutMs: number },
): Promise<Tracing> {
  const { metrics, log } = deps;
  const malformed = (problem: MalformedContext, ceId: string) => {
    metrics.traceContextInvalid.inc({ field: problem.field, from: problem.from });
    log.warn(
      { ceId, field: problem.field, from: problem.from, reason: problem.reason },
      `malformed ${problem.field} ${problem.from === 'header' ? 'header' : 'extension'} ignored`,
    );
  };
  const incoming = (
    headers: IncomingHttpHeaders | undefined,
    event: CloudEvent<unknown>,
  ): IncomingContext | undefined =>
    (headers && readContext(headers.traceparent, headers.tracestate, 'header', event.id, malformed)) ||
    readContext(event.traceparent, event.tracestate, 'extension', event.id, malformed);

  if (!settings.tracesUrl) {
    return {
      exporting: false,
      begin(headers, event) {
        const parent = incoming(headers, event);
        return parent ? new PropagatedTrace(parent) : NO_TRACE;
      },
      close: async () => {},
    };
  }
  const { startExport } = await import('./otel-export.js');
  const exporter = startExport({ url: settings.tracesUrl, version: deps.version, log });
  log.info({ endpoint: hostOf(settings.tracesUrl) }, 'tracing: spans exported over OTLP/HTTP');
  return {
    exporting: true,
    begin: (headers, event) => exporter.start(incoming(headers, event), event),
    async close() {
      const limitMs = Math.min(FLUSH_MS, deps.shutdownTimeoutMs);
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<boolean>((resolve) => {
        timer = setTimeout(() => resolve(true), limitMs);
      });
      try {
        const stopped = exporter.shutdown().then(
          () => false,
          (err: unknown) => {
            log.warn(
              { error: err instanceof Error ? err.message : String(err) },
              'tracing: the last spans could not be exported',
            );
            return false;
          },
        );
        if (await Promise.race([stopped, timedOut]))
          log.warn({ limitMs }, 'tracing: the last spans were not exported within the shutdown limit');
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

/** hostOf: where spans go, for the log — never the path or credentials of the URL. */
function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return '(unparsable URL)';
  }
}
