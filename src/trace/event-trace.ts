/**
 * One received event's trace as the pipeline sees it: a span per stage, and the headers each delivery
 * carries. The implementations: NO_TRACE (nothing to continue, nothing recorded), a propagated trace
 * (./tracing.ts) and a recorded one (./otel-export.ts).
 */
/** What a delivery adds to its request. */
export interface TraceHeaders {
  traceparent: string;
  tracestate?: string;
}

/** The match stage of one event. */
export interface MatchSpan {
  end(matched: readonly { name: string }[]): void;
}

/** Rendering one action; `failure` is the action's outcome when it could not be rendered. */
export interface RenderSpan {
  end(failure?: string): void;
}

/** Delivering one action (all its attempts: they carry the same traceparent). */
export interface DeliverSpan {
  /** The headers this delivery's request carries; undefined when there is no trace to continue. */
  readonly headers: TraceHeaders | undefined;
  end(result: { outcome: string; status?: number; attempts: number }): void;
}

/** One received event's trace. */
export interface EventTrace {
  match(): MatchSpan;
  render(rule: string, destination: string): RenderSpan;
  deliver(rule: string, destination: string): DeliverSpan;
  /** The event's request was answered with this status. */
  end(status: number): void;
}

export const NO_SPAN: MatchSpan & RenderSpan & DeliverSpan = { headers: undefined, end() {} };

/** An event with no trace context while nothing is exported: every call is a constant. */
export const NO_TRACE: EventTrace = {
  match: () => NO_SPAN,
  render: () => NO_SPAN,
  deliver: () => NO_SPAN,
  end() {},
};
