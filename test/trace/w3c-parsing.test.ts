/**
 * The W3C Trace Context grammar the receiver uses (src/trace/trace-context.ts) against OpenTelemetry's own
 * (@opentelemetry/core, which it stands in for while spans are not exported): the same traceparents are
 * accepted with the same ids and flags; a tracestate is accepted exactly when OpenTelemetry keeps every one
 * of its members, and then reads the same. Fixtures first, then thousands of seeded mutations.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseTraceParent, TraceState } from '@opentelemetry/core';
import { newSpanId, parseTraceparent, parseTracestate } from '../../src/trace/trace-context.js';
import { seededRandom } from '../support/random.js';

const VALID = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';

const traceparents = [
  VALID,
  '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00',
  '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-ff',
  '01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future',
  '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra',
  'ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',
  '00-00000000000000000000000000000000-00f067aa0ba902b7-01',
  '00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01',
  '00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01',
  ` ${VALID} `,
  `${VALID}\n`,
  '',
  '00--00f067aa0ba902b7-01',
];

const tracestates = [
  'a=1',
  'a=1, b=2 ,c=3',
  'vendor@sys=x',
  'a=1,,b=2',
  ' , ',
  'a=1,a=2',
  'A=1',
  'a=',
  '=1',
  'a=b=c',
  'a=1,b',
  'a= x',
  'a=x ',
  Array.from({ length: 32 }, (_, i) => `k${i}=v`).join(','),
  Array.from({ length: 33 }, (_, i) => `k${i}=v`).join(','),
  `a=${'x'.repeat(250)},b=${'y'.repeat(250)}`,
  `a=${'x'.repeat(250)},b=${'y'.repeat(255)}`,
];

/** What OpenTelemetry makes of a tracestate: null when it dropped a member (so ours must refuse it). */
function otelTracestate(raw: string): string | undefined | null {
  const members = raw.split(',').filter((member) => member.trim() !== '').length;
  const kept = new TraceState(raw).serialize();
  if ((kept === '' ? 0 : kept.split(',').length) !== members) return null;
  return kept === '' ? undefined : kept;
}

function sameTraceparent(value: string): void {
  const ours = parseTraceparent(value);
  const theirs = parseTraceParent(value);
  assert.deepEqual(
    ours && { ...ours },
    theirs ? { traceId: theirs.traceId, spanId: theirs.spanId, flags: theirs.traceFlags } : undefined,
    JSON.stringify(value),
  );
}

function sameTracestate(value: string): void {
  const ours = parseTracestate(value);
  assert.deepEqual(typeof ours === 'object' ? null : ours, otelTracestate(value), JSON.stringify(value));
}

/** mutate: a few random edits — characters from the grammar's alphabet and its edges. */
function mutate(text: string, random: () => number, alphabet: string): string {
  let out = text;
  for (let edits = 1 + Math.floor(random() * 3); edits > 0; edits--) {
    const at = Math.floor(random() * (out.length + 1));
    const char = alphabet[Math.floor(random() * alphabet.length)];
    const op = random();
    out =
      op < 0.4
        ? out.slice(0, at) + char + out.slice(at + 1)
        : op < 0.7
          ? out.slice(0, at) + char + out.slice(at)
          : out.slice(0, at) + out.slice(at + 1);
  }
  return out;
}

describe('W3C trace context parsing, held to OpenTelemetry', () => {
  it('traceparent fixtures', () => {
    for (const value of traceparents) sameTraceparent(value);
  });

  it('tracestate fixtures', () => {
    for (const value of tracestates) sameTracestate(value);
  });

  it('5,000 mutated traceparents and tracestates', () => {
    const random = seededRandom(20261129);
    for (let i = 0; i < 5000; i++) {
      sameTraceparent(mutate(VALID, random, '0123456789abcdefF- \t0f'));
      sameTracestate(mutate(tracestates[i % tracestates.length], random, 'az09=,@ *-/_\t~A'));
    }
  });

  it('a new span id is 16 lower-case hex digits, not all zero, and differs each time', () => {
    const ids = new Set(Array.from({ length: 1000 }, () => newSpanId()));
    assert.equal(ids.size, 1000);
    for (const id of ids) assert.match(id, /^(?!0{16})[0-9a-f]{16}$/);
  });
});
