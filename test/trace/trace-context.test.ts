/**
 * Trace context without span export (no OTEL_EXPORTER_OTLP_ENDPOINT): every delivery continues the
 * Broker's trace — its trace id and sampled flag, a span id of its own, its tracestate — whether the
 * context came as the W3C `traceparent` header or as the CloudEvent's distributed-tracing extension. A
 * malformed value is ignored, counted and logged; the event is still delivered.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadFixture, withEvent } from '../support/fixtures.js';
import { serviceBehindSink } from '../support/service-behind-sink.js';
import type { Captured } from '../support/capture-sink.js';

const BROKER_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const BROKER_SPAN = '00f067aa0ba902b7';
const BROKER_PARENT = `00-${BROKER_TRACE}-${BROKER_SPAN}-01`;
const EXTENSION_TRACE = '0af7651916cd43dd8448eb211c80319c';
const EXTENSION_PARENT = `00-${EXTENSION_TRACE}-b7ad6b7169203331-01`;

let n = 0;
/** An HPA rescale fixture without its traceparent, with these headers added (null removes one). */
const event = (headers: Record<string, string | null> = {}) =>
  withEvent(loadFixture('hpa-successful-rescale-up-resource-add'), (body, h) => {
    n++;
    body.metadata.uid = `trace-${n}`;
    h['ce-id'] = `trace-${n}`;
    delete h.traceparent;
    for (const [name, value] of Object.entries(headers)) {
      if (value === null) delete h[name];
      else h[name] = value;
    }
  });

/** A traceparent a rule sets itself on destination b. */
const RULE_TRACEPARENT = '00-11111111111111111111111111111111-2222222222222222-01';

/** The same event in structured (and batch) mode, its attributes in the JSON with this traceparent. */
function structuredEvent(traceparent: string): Record<string, unknown> {
  const fixture = event();
  const attributes = Object.entries(fixture.headers).filter(([name]) => name.startsWith('ce-'));
  return {
    ...Object.fromEntries(attributes.map(([name, value]) => [name.slice(3), value])),
    datacontenttype: 'application/json',
    traceparent,
    data: fixture.body,
  };
}

const TRACEPARENT = /^00-([0-9a-f]{32})-([0-9a-f]{16})-(0[01])$/;

function traceOf(request: Captured): { traceId: string; spanId: string; flags: string } | undefined {
  const header = request.headers.traceparent;
  if (header === undefined) return undefined;
  const match = TRACEPARENT.exec(String(header));
  assert.ok(match, `a W3C traceparent: ${String(header)}`);
  return { traceId: match[1], spanId: match[2], flags: match[3] };
}

describe('trace context, not exported', () => {
  const t = serviceBehindSink((sinkUrl) => ({
    'r.yaml': `
destinations:
  a: { url: "${sinkUrl}/a" }
  b:
    url: "${sinkUrl}/b"
    headers: { TraceParent: "${RULE_TRACEPARENT}" }
rules:
  - name: rescale
    conditions: { all: [ { fact: event, path: $.reason, operator: equal, value: SuccessfulRescale } ] }
    actions:
      - { destination: a, body: '{ "uid": metadata.uid }' }
      - { destination: b, body: '{ "uid": metadata.uid }' }
`,
  }));
  const delivered = async () => {
    const [a, b] = await Promise.all([t.sink.waitFor('/a', 1), t.sink.waitFor('/b', 1)]);
    const requests = [a.at(-1)!, b.at(-1)!];
    t.sink.requests.length = 0;
    return requests;
  };

  it("the W3C traceparent header is continued: the Broker's trace id and flag, a new span id per delivery, the tracestate", async () => {
    const response = await t.svc.post(event({ traceparent: BROKER_PARENT, tracestate: 'broker=b1, vendor@k=x' }));
    assert.equal(response.status, 204, response.text);
    const requests = await delivered();
    const traces = requests.map((request) => traceOf(request));
    for (const trace of traces) {
      assert.equal(trace?.traceId, BROKER_TRACE);
      assert.equal(trace?.flags, '01');
      assert.notEqual(trace?.spanId, BROKER_SPAN, 'a child span, not the Broker’s own');
    }
    assert.notEqual(traces[0]?.spanId, traces[1]?.spanId, 'each delivery has its own span id');
    for (const request of requests) assert.equal(request.headers.tracestate, 'broker=b1,vendor@k=x');
    // The rule's own TraceParent header is replaced, not sent beside ours.
    assert.equal(requests[1].headers.traceparent, `00-${BROKER_TRACE}-${traces[1]?.spanId}-01`);
  });

  it('the unsampled flag is kept', async () => {
    await t.svc.post(event({ traceparent: `00-${BROKER_TRACE}-${BROKER_SPAN}-00` }));
    for (const request of await delivered()) {
      assert.equal(traceOf(request)?.flags, '00');
      assert.equal(request.headers.tracestate, undefined);
    }
  });

  it('binary mode: the ce-traceparent extension is continued when there is no traceparent header', async () => {
    await t.svc.post(event({ 'ce-traceparent': EXTENSION_PARENT, 'ce-tracestate': 'src=1' }));
    for (const request of await delivered()) {
      assert.equal(traceOf(request)?.traceId, EXTENSION_TRACE);
      assert.equal(request.headers.tracestate, 'src=1');
    }
  });

  it('the header (the hop that delivered the request) wins over the extension', async () => {
    await t.svc.post(event({ traceparent: BROKER_PARENT, 'ce-traceparent': EXTENSION_PARENT }));
    for (const request of await delivered()) assert.equal(traceOf(request)?.traceId, BROKER_TRACE);
  });

  it('structured mode: the traceparent attribute is continued', async () => {
    const structured = JSON.stringify(structuredEvent(EXTENSION_PARENT));
    assert.equal((await t.svc.postRaw({ 'content-type': 'application/cloudevents+json' }, structured)).status, 204);
    for (const request of await delivered()) assert.equal(traceOf(request)?.traceId, EXTENSION_TRACE);
  });

  it('batch mode: each entry continues its own traceparent attribute', async () => {
    const entries = [EXTENSION_PARENT, BROKER_PARENT].map(structuredEvent);
    const response = await t.svc.postRaw(
      { 'content-type': 'application/cloudevents-batch+json' },
      JSON.stringify(entries),
    );
    assert.equal(response.status, 204, response.text);
    const [a] = await Promise.all([t.sink.waitFor('/a', 2), t.sink.waitFor('/b', 2)]);
    t.sink.requests.length = 0;
    const traces = a.map((request) => traceOf(request)?.traceId).sort();
    assert.deepEqual(traces, [EXTENSION_TRACE, BROKER_TRACE].sort());
  });

  it('no trace context: deliveries carry none (nothing would record a span of ours); the rule’s own header stays', async () => {
    await t.svc.post(event());
    const [a, b] = await delivered();
    assert.equal(a.headers.traceparent, undefined);
    assert.equal(b.headers.traceparent, RULE_TRACEPARENT);
  });

  const malformed: [string, string][] = [
    ['upper-case hex', `00-${BROKER_TRACE.toUpperCase()}-${BROKER_SPAN}-01`],
    ['an all-zero trace id', `00-${'0'.repeat(32)}-${BROKER_SPAN}-01`],
    ['an all-zero span id', `00-${BROKER_TRACE}-${'0'.repeat(16)}-01`],
    ['version ff', `ff-${BROKER_TRACE}-${BROKER_SPAN}-01`],
    ['version 00 with more fields', `${BROKER_PARENT}-extra`],
    ['a short trace id', `00-${BROKER_TRACE.slice(1)}-${BROKER_SPAN}-01`],
    ['text', 'not a traceparent at all'],
  ];
  for (const [what, value] of malformed) {
    it(`a traceparent header with ${what} is ignored, counted and logged; the event is still delivered`, async () => {
      const before = await t.svc.metric('kube_event_rules_trace_context_invalid_total', {
        field: 'traceparent',
        from: 'header',
      });
      const response = await t.svc.post(event({ traceparent: value }));
      assert.equal(response.status, 204, response.text);
      const [a, b] = await delivered();
      assert.equal(a.headers.traceparent, undefined, 'nothing valid to continue');
      assert.equal(b.headers.traceparent, RULE_TRACEPARENT, "the rule's own header stays");
      assert.equal(
        await t.svc.metric('kube_event_rules_trace_context_invalid_total', { field: 'traceparent', from: 'header' }),
        before + 1,
      );
      const line = t.svc.logs.findLast((l) => l.msg === 'malformed traceparent header ignored');
      assert.ok(line, 'logged');
      assert.equal(line.ceId, `trace-${n}`);
      assert.match(String(line.reason), /is not version-traceid-parentid-flags/);
    });
  }

  it('a malformed header with a valid extension: the extension is continued', async () => {
    await t.svc.post(event({ traceparent: 'garbage', 'ce-traceparent': EXTENSION_PARENT }));
    for (const request of await delivered()) assert.equal(traceOf(request)?.traceId, EXTENSION_TRACE);
  });

  it('a malformed extension is counted as such', async () => {
    const before = await t.svc.metric('kube_event_rules_trace_context_invalid_total', {
      field: 'traceparent',
      from: 'extension',
    });
    assert.equal((await t.svc.post(event({ 'ce-traceparent': '00-abc-def-01' }))).status, 204);
    const [a] = await delivered();
    assert.equal(a.headers.traceparent, undefined);
    assert.equal(
      await t.svc.metric('kube_event_rules_trace_context_invalid_total', { field: 'traceparent', from: 'extension' }),
      before + 1,
    );
  });

  it('a malformed tracestate is dropped whole (counted); the traceparent is still continued', async () => {
    const huge = Array.from({ length: 40 }, (_, i) => `k${i}=v`).join(',');
    for (const tracestate of ['ok=1,Bad Key=2', 'a=1,a=2', huge, 'x'.repeat(600)]) {
      const before = await t.svc.metric('kube_event_rules_trace_context_invalid_total', {
        field: 'tracestate',
        from: 'header',
      });
      assert.equal((await t.svc.post(event({ traceparent: BROKER_PARENT, tracestate }))).status, 204);
      for (const request of await delivered()) {
        assert.equal(traceOf(request)?.traceId, BROKER_TRACE);
        assert.equal(request.headers.tracestate, undefined, tracestate);
      }
      assert.equal(
        await t.svc.metric('kube_event_rules_trace_context_invalid_total', { field: 'tracestate', from: 'header' }),
        before + 1,
        tracestate,
      );
    }
  });
});
