/**
 * W3C Trace Context as it reaches us: the request's `traceparent`/`tracestate` headers (what the Broker's
 * HTTP client sets) or the CloudEvent's distributed-tracing extension (`ce-traceparent`/`ce-tracestate` in
 * binary mode, `traceparent`/`tracestate` attributes in structured and batch mode — the SDK exposes both
 * as `event.traceparent`/`event.tracestate`; it ignores the bare W3C headers). Both are untrusted text:
 * a malformed value is reported and ignored, never thrown.
 *
 * The grammar is OpenTelemetry's (@opentelemetry/core's W3C propagator and TraceState), written out here
 * because that package costs ≈ 5 MB of memory and up to 0.1 s of start-up, and it is loaded only when
 * spans are exported; test/trace/w3c-parsing.test.ts holds the two to the same answers.
 */

import { randomFillSync } from 'node:crypto';

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

/** W3C limits of a tracestate list. */
const MAX_TRACESTATE_CHARS = 512;
const MAX_TRACESTATE_MEMBERS = 32;

/** version-traceid-parentid-flags: lower-case hex, ids not all zero, version not ff (OpenTelemetry's expression). */
const TRACEPARENT = /^\s?((?!ff)[\da-f]{2})-((?![0]{32})[\da-f]{32})-((?![0]{16})[\da-f]{16})-([\da-f]{2})(-.*)?\s?$/;
const TRACESTATE_KEY = /^(?:[a-z][_0-9a-z\-*/]{0,255}|[a-z0-9][_0-9a-z\-*/]{0,240}@[a-z][_0-9a-z\-*/]{0,13})$/;
const TRACESTATE_VALUE = /^[ -~]{0,255}[!-~]$/;

/**
 * parseTraceparent: the parent a traceparent names, or undefined (version 00 has exactly four fields; later versions
 * may add some).
 */
export function parseTraceparent(value: string): { traceId: string; spanId: string; flags: number } | undefined {
  const match = TRACEPARENT.exec(value);
  if (!match || (match[1] === '00' && match[5] !== undefined)) return undefined;
  return { traceId: match[2], spanId: match[3], flags: parseInt(match[4], 16) };
}

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
  const parsed = typeof traceparent === 'string' ? parseTraceparent(traceparent) : undefined;
  if (!parsed) {
    malformed({ field: 'traceparent', from, reason: reasonOf(traceparent) }, ceId);
    return undefined;
  }
  const context: IncomingContext = {
    traceId: parsed.traceId,
    spanId: parsed.spanId,
    sampled: (parsed.flags & 1) === 1,
  };
  if (tracestate === undefined || tracestate === '') return context;
  const state = typeof tracestate === 'string' ? parseTracestate(tracestate) : { invalid: 'repeated or not text' };
  if (typeof state === 'string') context.tracestate = state;
  else if (state) malformed({ field: 'tracestate', from, reason: state.invalid }, ceId);
  return context;
}

/**
 * parseTracestate: the list with its members trimmed (undefined when it has none), or why it is not a valid
 * list. One bad member, a repeated key, more than 32 members or 512 characters make the whole list invalid
 * (W3C lets a receiver drop such a list; OpenTelemetry drops the bad members silently instead).
 */
export function parseTracestate(raw: string): string | undefined | { invalid: string } {
  const members: string[] = [];
  const keys = new Set<string>();
  for (const part of raw.split(',')) {
    const member = part.trim();
    if (member === '') continue;
    const at = member.indexOf('=');
    const key = member.slice(0, at);
    if (
      at === -1 ||
      !TRACESTATE_KEY.test(key) ||
      !TRACESTATE_VALUE.test(member.slice(at + 1)) ||
      /[,=]/.test(member.slice(at + 1))
    ) {
      return { invalid: `list member ${members.length + 1} is not key=value as W3C Trace Context defines them` };
    }
    if (keys.has(key)) return { invalid: `key ${JSON.stringify(key)} is repeated` };
    keys.add(key);
    members.push(member);
  }
  if (members.length > MAX_TRACESTATE_MEMBERS)
    return { invalid: `${members.length} list members; at most ${MAX_TRACESTATE_MEMBERS}` };
  const list = members.join(',');
  if (list.length > MAX_TRACESTATE_CHARS)
    return { invalid: `${list.length} characters; at most ${MAX_TRACESTATE_CHARS}` };
  return list === '' ? undefined : list;
}

/** reasonOf says what is wrong with a traceparent without quoting it at length (it is sender-controlled). */
function reasonOf(value: unknown): string {
  if (typeof value !== 'string') return 'repeated or not text';
  const shown =
    value.length > 64 ? `${JSON.stringify(value.slice(0, 64))}… (${value.length} characters)` : JSON.stringify(value);
  return `${shown} is not version-traceid-parentid-flags (lower-case hex 2-32-16-2, ids not all zero, version not ff)`;
}

/** traceparentOf: the W3C header value for a span of this trace. */
export function traceparentOf(traceId: string, spanId: string, sampled: boolean): string {
  return `00-${traceId}-${spanId}-${sampled ? '01' : '00'}`;
}

/**
 * Random bytes for span ids, refilled 512 ids at a time: an id is one 8-byte hex slice (≈ 0.15 µs; formatting
 * two Math.random numbers in hex took ten times as long).
 */
const SPAN_ID_POOL = Buffer.allocUnsafe(8 * 512);
let nextSpanId = SPAN_ID_POOL.length;

/** newSpanId: 8 random bytes as 16 lower-case hex digits, never all zero. */
export function newSpanId(): string {
  if (nextSpanId === SPAN_ID_POOL.length) {
    randomFillSync(SPAN_ID_POOL);
    nextSpanId = 0;
  }
  const id = SPAN_ID_POOL.toString('hex', nextSpanId, (nextSpanId += 8));
  return id === '0000000000000000' ? newSpanId() : id;
}
