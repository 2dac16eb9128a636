/**
 * W3C Trace Context as it reaches us: the request's `traceparent`/`tracestate` headers (what the Broker's
 * HTTP client sets) or the CloudEvent's distributed-tracing extension (`ce-traceparent`/`ce-tracestate` in
 * binary mode, `traceparent`/`tracestate` attributes in structured and batch mode — the SDK exposes both
 * as `event.traceparent`/`event.tracestate`; it ignores the bare W3C headers). Both are untrusted text:
 * parsed with OpenTelemetry's W3C parser, a malformed value is reported and ignored, never thrown.
 */
import { parseTraceParent, TraceState } from '@opentelemetry/core';

/** A parent we continue: the sender's trace and span, its sampled flag, and its tracestate when valid. */
export interface IncomingContext {
  traceId: string;
  spanId: string;
  /** Only the sampled bit (W3C: flags we do not know are sent as 0). */
  sampled: boolean;
  tracestate?: string;
}

/** A value that could not be used: which field, from where, and why (for the log line and the metric). */
export interface MalformedContext {
  field: 'traceparent' | 'tracestate';
  from: 'header' | 'extension';
  reason: string;
}

/** W3C: a tracestate of more than 512 characters may be dropped whole; we do. */
const MAX_TRACESTATE_CHARS = 512;

/**
 * readContext reads one pair (a header pair or an extension pair). `undefined` traceparent: nothing there.
 * A valid traceparent with a malformed tracestate is continued without the tracestate.
 */
export function readContext(
  traceparent: unknown,
  tracestate: unknown,
  from: MalformedContext['from'],
  ceId: string,
  malformed: (problem: MalformedContext, ceId: string) => void,
): IncomingContext | undefined {
  if (traceparent === undefined) return undefined;
  const parsed = typeof traceparent === 'string' ? parseTraceParent(traceparent) : null;
  if (!parsed) {
    malformed({ field: 'traceparent', from, reason: reasonOf(traceparent) }, ceId);
    return undefined;
  }
  const context: IncomingContext = { traceId: parsed.traceId, spanId: parsed.spanId, sampled: (parsed.traceFlags & 1) === 1 };
  if (tracestate === undefined || tracestate === '') return context;
  const state = readTracestate(tracestate);
  if (typeof state === 'string') context.tracestate = state;
  else if (state) malformed({ field: 'tracestate', from, reason: state.invalid }, ceId);
  return context;
}

/** readTracestate: the list normalized (members trimmed), undefined when empty, or why it is not a valid list. */
function readTracestate(raw: unknown): string | undefined | { invalid: string } {
  if (typeof raw !== 'string') return { invalid: 'repeated or not text' };
  if (raw.length > MAX_TRACESTATE_CHARS) return { invalid: `${raw.length} characters; at most ${MAX_TRACESTATE_CHARS}` };
  const members = raw.split(',').filter((member) => member.trim() !== '').length;
  const kept = new TraceState(raw).serialize();
  // The library drops members it cannot read (and repeated keys) silently; one dropped is a malformed list.
  const keptMembers = kept === '' ? 0 : kept.split(',').length;
  if (keptMembers !== members) return { invalid: `${members - keptMembers} of ${members} list members are not key=value as W3C Trace Context defines them (or repeat a key, or pass 32 members)` };
  return kept === '' ? undefined : kept;
}

/** reasonOf says what is wrong with a traceparent without quoting it at length (it is sender-controlled). */
function reasonOf(value: unknown): string {
  if (typeof value !== 'string') return 'repeated or not text';
  const shown = value.length > 64 ? `${JSON.stringify(value.slice(0, 64))}… (${value.length} characters)` : JSON.stringify(value);
  return `${shown} is not version-traceid-parentid-flags (lower-case hex 2-32-16-2, ids not all zero, version not ff)`;
}

/** traceparentOf: the W3C header value for a span of this trace. */
export function traceparentOf(traceId: string, spanId: string, sampled: boolean): string {
  return `00-${traceId}-${spanId}-${sampled ? '01' : '00'}`;
}

/**
 * newSpanId: 8 random bytes as 16 hex digits, never all zero. Span ids need to be unique, not secret
 * (OpenTelemetry's own generator uses Math.random too); two 32-bit halves avoid building a buffer.
 */
export function newSpanId(): string {
  const high = (Math.random() * 0x1_0000_0000) >>> 0;
  const low = ((Math.random() * 0x1_0000_0000) >>> 0) || 1;
  return high.toString(16).padStart(8, '0') + low.toString(16).padStart(8, '0');
}
