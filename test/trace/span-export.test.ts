/**
 * Spans exported over OTLP/HTTP to a real endpoint on 127.0.0.1 (OTEL_EXPORTER_OTLP_ENDPOINT set): one
 * `receive` span per event whose parent is the Broker's span, with `match`, `render` and `deliver`
 * children; the `deliver` span is the parent the destination sees. No URL, header value or body reaches
 * an attribute. Shutdown flushes the spans still buffered, and gives up after its limit on a collector
 * that hangs.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../src/config.js';
import { loadFixture, withEvent } from '../support/fixtures.js';
import { startCaptureSink, type CaptureSink } from '../support/capture-sink.js';
import { startService } from '../support/running-service.js';
import { startOtlpReceiver, type OtlpReceiver } from '../support/otlp-receiver.js';

const BROKER_TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const BROKER_SPAN = '00f067aa0ba902b7';
const TOKEN = 'sk-trace-secret-7d1f';

const event = (id: string, traceparent?: string) =>
  withEvent(loadFixture('hpa-successful-rescale-up-resource-add'), (body, headers) => {
    body.metadata.uid = id;
    headers['ce-id'] = id;
    if (traceparent) headers.traceparent = traceparent;
    else delete headers.traceparent;
  });

/** A secret URL (from env) and a secret header on one destination, a literal URL on the other. */
const rules = (sinkUrl: string) => ({
  'r.yaml': `
destinations:
  hook:
    url: { env: HOOK_URL }
    headers: { Authorization: { env: HOOK_TOKEN, prefix: "Bearer " } }
  second: { url: "${sinkUrl}/second" }
rules:
  - name: rescale
    conditions: { all: [ { fact: event, path: $.reason, operator: equal, value: SuccessfulRescale } ] }
    actions:
      - { destination: hook, body: '{ "uid": metadata.uid, "token": "${TOKEN}" }' }
      - { destination: second, body: '{ "uid": metadata.uid }' }
`,
});

describe('span export over OTLP/HTTP', () => {
  let sink: CaptureSink;
  let otlp: OtlpReceiver;
  const env = () => ({ HOOK_URL: `${sink.url}/hook/${TOKEN}`, HOOK_TOKEN: TOKEN });
  before(async () => {
    sink = await startCaptureSink();
    otlp = await startOtlpReceiver();
  });
  after(async () => {
    await sink.close();
    await otlp.close();
  });

  it('the span tree of one event: receive (child of the Broker span) → match, render ×2, deliver ×2', async () => {
    const svc = await startService({
      rules: rules(sink.url),
      env: env(),
      config: { tracing: { tracesUrl: otlp.url } },
    });
    let status: number;
    try {
      status = (await svc.post(event('export-1', `00-${BROKER_TRACE}-${BROKER_SPAN}-01`))).status;
    } finally {
      await svc.stop(); // flushes the batch
    }
    assert.equal(status, 204);
    assert.deepEqual(otlp.refused, []);
    const spans = otlp.spans.filter((span) => span.traceId === BROKER_TRACE);
    assert.deepEqual(spans.map((span) => span.name).sort(), [
      'deliver',
      'deliver',
      'match',
      'receive',
      'render',
      'render',
    ]);

    const root = spans.find((span) => span.name === 'receive')!;
    assert.equal(root.parentSpanId, BROKER_SPAN, "the root's parent is the Broker's span");
    assert.equal(root.kind, 2, 'SERVER');
    assert.equal(root.attributes['cloudevents.event_id'], 'export-1');
    assert.equal(root.attributes['http.response.status_code'], 204);
    for (const child of spans.filter((span) => span !== root))
      assert.equal(child.parentSpanId, root.spanId, `${child.name} is a child of receive`);

    const match = spans.find((span) => span.name === 'match')!;
    assert.equal(match.attributes['kube_event_rules.rules_matched'], 1);
    assert.deepEqual(match.attributes['kube_event_rules.rule_names'], ['rescale']);

    // Each delivery's traceparent names its deliver span.
    const delivers = spans.filter((span) => span.name === 'deliver');
    for (const [path, destination] of [
      [`/hook/${TOKEN}`, 'hook'],
      ['/second', 'second'],
    ]) {
      const [request] = sink.received(path);
      const span = delivers.find((s) => s.attributes['kube_event_rules.destination'] === destination)!;
      assert.equal(request.headers.traceparent, `00-${BROKER_TRACE}-${span.spanId}-01`, destination);
      assert.equal(span.attributes['kube_event_rules.rule'], 'rescale');
      assert.equal(span.attributes['kube_event_rules.outcome'], 'delivered');
      assert.equal(span.attributes['http.response.status_code'], 200);
      assert.equal(span.kind, 3, 'CLIENT');
    }

    assert.equal(root.resource['service.name'], 'kube-event-rules');
    assert.equal(typeof root.resource['service.version'], 'string');

    // Nothing secret, and no URL, header or body, in any attribute.
    const exported = JSON.stringify(spans.map((span) => span.attributes));
    for (const forbidden of [TOKEN, sink.url, '127.0.0.1', 'Bearer', '"uid"'])
      assert.ok(!exported.includes(forbidden), `${forbidden} in ${exported}`);
  });

  it('an event without trace context starts a trace of its own, and its deliveries continue it', async () => {
    sink.requests.length = 0;
    const before = otlp.spans.length;
    const svc = await startService({
      rules: rules(sink.url),
      env: env(),
      config: { tracing: { tracesUrl: otlp.url } },
    });
    try {
      assert.equal((await svc.post(event('export-2'))).status, 204);
    } finally {
      await svc.stop();
    }
    const spans = otlp.spans.slice(before);
    const root = spans.find((span) => span.name === 'receive')!;
    assert.equal(root.parentSpanId, '');
    const deliver = spans.find(
      (span) => span.name === 'deliver' && span.attributes['kube_event_rules.destination'] === 'second',
    )!;
    assert.equal(sink.received('/second')[0].headers.traceparent, `00-${root.traceId}-${deliver.spanId}-01`);
  });

  it('shutdown gives up on a collector that does not answer, after its limit', async () => {
    const hung = await startOtlpReceiver();
    hung.hang();
    const svc = await startService({
      rules: rules(sink.url),
      env: env(),
      config: { tracing: { tracesUrl: hung.url }, shutdownTimeoutMs: 300 },
    });
    try {
      assert.equal((await svc.post(event('export-3', `00-${BROKER_TRACE}-${BROKER_SPAN}-01`))).status, 204);
    } finally {
      await svc.stop(); // resolves: the limit is 300 ms, the exporter's own timeout 10 s
      await hung.close();
    }
    assert.ok(
      svc.logs.some((line) => line.msg === 'tracing: the last spans were not exported within the shutdown limit'),
    );
  });
});

describe('tracing settings', () => {
  it('OTEL_EXPORTER_OTLP_ENDPOINT gets /v1/traces; the traces endpoint is taken as is and wins', () => {
    assert.equal(loadConfig({}).tracing.tracesUrl, '');
    assert.equal(
      loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://collector:4318' }).tracing.tracesUrl,
      'http://collector:4318/v1/traces',
    );
    assert.equal(
      loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'https://collector:4318/otlp/' }).tracing.tracesUrl,
      'https://collector:4318/otlp/v1/traces',
    );
    assert.equal(
      loadConfig({
        OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4318',
        OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: 'http://b:4318/custom',
      }).tracing.tracesUrl,
      'http://b:4318/custom',
    );
  });

  it('OTEL_SDK_DISABLED=true and OTEL_TRACES_EXPORTER=none turn export off; another exporter or a URL that is not http(s) is refused without printing it', () => {
    assert.equal(
      loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4318', OTEL_SDK_DISABLED: 'true' }).tracing.tracesUrl,
      '',
    );
    assert.equal(
      loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4318', OTEL_TRACES_EXPORTER: 'none' }).tracing.tracesUrl,
      '',
    );
    assert.throws(
      () => loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'http://a:4318', OTEL_TRACES_EXPORTER: 'zipkin' }),
      /OTEL_TRACES_EXPORTER="zipkin": only otlp/,
    );
    assert.throws(
      () => loadConfig({ OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318?token=s3cr3t' }),
      (err: Error) =>
        /OTEL_EXPORTER_OTLP_ENDPOINT is not an http\(s\) URL/.test(err.message) && !err.message.includes('s3cr3t'),
    );
  });
});
