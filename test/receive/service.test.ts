/**
 * End to end over real HTTP: ApiServerSource CloudEvents in, payloads out to a local capture server.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { startCaptureSink, type CaptureSink } from '../support/capture-sink.js';
import { bodyOf, fixtureNames, loadFixture, withEvent, type EventFixture } from '../support/fixtures.js';
import { startService, type RunningService } from '../support/running-service.js';

const rules = (sinkUrl: string) => `
destinations:
  chart:
    url: ${sinkUrl}/chart
    headers:
      Authorization: { env: CHART_TOKEN, prefix: "Bearer " }
      X-Event-Reason: { jsonata: reason }
  chat:
    url: { jsonata: '"${sinkUrl}/chat/" & involvedObject.namespace' }
  stdout: { kind: log }
rules:
  - name: hpa-rescale
    conditions:
      all:
        - { fact: event, path: $.involvedObject.kind, operator: equal, value: HorizontalPodAutoscaler }
        - { fact: event, path: $.reason, operator: equal, value: SuccessfulRescale }
    actions:
      - destination: chart
        body: |
          {
            "name": "HPA " & involvedObject.namespace & "/" & involvedObject.name,
            "details": message,
            "startTime": $toMillis(lastTimestamp),
            "occurrence": $occurrence,
            "rule": $rule.name,
            "ceType": $cloudevent.type
          }
  - name: crashloop
    conditions:
      all:
        - { fact: event, path: $.reason, operator: equal, value: BackOff }
        - { fact: event, path: $.message, operator: matches, value: "^Back-off restarting" }
    actions:
      - destination: chat
        body: '{ "text": reason & " " & involvedObject.name & " x" & count }'
  - name: warnings
    conditions:
      all:
        - { fact: event, path: $.type, operator: equal, value: Warning }
    actions:
      - destination: stdout
        body: '{ "reason": reason }'
  - name: expired
    on: [delete]
    conditions:
      all:
        - { fact: event, path: $.reason, operator: equal, value: SuccessfulRescale }
    actions:
      - destination: stdout
        body: '{ "expired": metadata.name }'
  - name: deploys
    conditions:
      all:
        - { fact: cloudevent, path: $.type, operator: equal, value: com.example.deploy }
    actions:
      - destination: chart
        body: '{ "name": "deploy " & app, "source": $cloudevent.source }'
`;

/** A distinct HPA rescale occurrence: its own Event uid and HPA name. */
function rescale(n: number, verb = 'add'): EventFixture {
  return withEvent(loadFixture('hpa-successful-rescale-up-resource-add'), (body, headers) => {
    body.metadata.uid = `uid-${n}`;
    body.involvedObject.name = `hpa-${n}`;
    body.message = `New size: ${n}; reason: test`;
    headers['ce-id'] = `ce-${n}-${verb}`;
    headers['ce-type'] = `dev.knative.apiserver.resource.${verb}`;
  });
}

describe('service end to end', () => {
  let sink: CaptureSink;
  let svc: RunningService;

  before(async () => {
    sink = await startCaptureSink();
  });
  after(async () => {
    await sink.close();
  });
  beforeEach(async () => {
    await svc?.stop();
    sink.requests.length = 0;
    svc = await startService({ rules: { 'rules.yaml': rules(sink.url) }, env: { CHART_TOKEN: 's3cret' } });
  });
  after(async () => {
    await svc?.stop();
  });

  it('answers every example event with the right status, an empty 2xx body, and sends exactly the expected payloads', async () => {
    const expected: Record<string, number> = {
      'malformed-invalid-json-body.json': 400,
      'malformed-missing-ce-type.json': 400,
    };
    for (const name of fixtureNames()) {
      const response = await svc.post(loadFixture(name));
      assert.equal(response.status, expected[name] ?? 204, name);
      if (response.status === 204) assert.equal(response.text, '', `${name}: a 2xx body must be empty`);
      else assert.ok((JSON.parse(response.text) as { error: string }).error, `${name}: 4xx body says what is wrong`);
    }
    const chart = sink.received('/chart').map((r) => r.json() as Record<string, unknown>);
    // Scale-up (add), scale-down (add), scale-down repeated (update, count 2). The events.k8s.io copy of
    // the scale-up is the same occurrence (uid/1) and is not sent twice; the reference is unresolved.
    assert.deepEqual(chart.map((p) => p.occurrence).sort(), [
      '30bb0794-6ac6-4f3f-8bb8-03a49c20486a/1',
      '322c9a28-b0d7-4b46-9419-c45a2c0dad1e/1',
      '322c9a28-b0d7-4b46-9419-c45a2c0dad1e/2',
    ]);
    const up = chart.find((p) => p.occurrence === '30bb0794-6ac6-4f3f-8bb8-03a49c20486a/1')!;
    assert.deepEqual(up, {
      name: 'HPA shop/checkout',
      details: 'New size: 4; reason: cpu resource utilization (percentage of request) above target',
      startTime: Date.parse('2024-05-14T09:12:03Z'),
      occurrence: '30bb0794-6ac6-4f3f-8bb8-03a49c20486a/1',
      rule: 'hpa-rescale',
      ceType: 'dev.knative.apiserver.resource.add',
    });
    const repeat = chart.find((p) => p.occurrence === '322c9a28-b0d7-4b46-9419-c45a2c0dad1e/2')!;
    assert.equal(
      repeat.startTime,
      Date.parse('2024-05-14T10:03:48Z'),
      'a repeat is marked at its own time, not the first one',
    );
    const headers = sink.received('/chart')[0].headers;
    assert.equal(headers.authorization, 'Bearer s3cret');
    assert.equal(headers['x-event-reason'], 'SuccessfulRescale');
    assert.equal(headers['content-type'], 'application/json');

    assert.deepEqual(
      sink.received('/chat/shop').map((r) => r.json()),
      [{ text: 'BackOff payment-5c7d9b8f6-2m4rt x7' }],
    );
    assert.deepEqual(
      svc.lines.map((l) => l.request.body),
      [{ reason: 'FailedGetResourceMetric' }, { reason: 'BackOff' }],
    );

    assert.equal(await svc.metric('kube_event_rules_events_received_total', { outcome: 'invalid' }), 2);
    assert.equal(
      await svc.metric('kube_event_rules_events_received_total', {
        type: 'dev.knative.apiserver.ref.add',
        outcome: 'unresolved',
      }),
      1,
    );
    assert.equal(await svc.metric('kube_event_rules_rule_matches_total', { rule: 'hpa-rescale' }), 4);
    assert.equal(
      await svc.metric('kube_event_rules_deliveries_total', { rule: 'hpa-rescale', outcome: 'delivered' }),
      3,
    );
    assert.equal(
      await svc.metric('kube_event_rules_deliveries_total', { rule: 'hpa-rescale', outcome: 'skipped_duplicate' }),
      1,
    );
    assert.equal(await svc.metric('kube_event_rules_delivery_duration_seconds_count', { destination: 'chart' }), 3);
  });

  it('accepts structured and batch mode', async () => {
    const fixture = rescale(1);
    const attributes = Object.fromEntries(
      Object.entries(fixture.headers)
        .filter(([k]) => k.startsWith('ce-'))
        .map(([k, v]) => [k.slice(3), v]),
    );
    const structured = await svc.postRaw(
      { 'content-type': 'application/cloudevents+json' },
      JSON.stringify({ ...attributes, datacontenttype: 'application/json', data: fixture.body }),
    );
    assert.equal(structured.status, 204);
    const batch = [2, 3].map((n) => {
      const f = rescale(n);
      return {
        ...Object.fromEntries(
          Object.entries(f.headers)
            .filter(([k]) => k.startsWith('ce-'))
            .map(([k, v]) => [k.slice(3), v]),
        ),
        datacontenttype: 'application/json',
        data: f.body,
      };
    });
    const response = await svc.postRaw({ 'content-type': 'application/cloudevents-batch+json' }, JSON.stringify(batch));
    assert.equal(response.status, 204);
    assert.deepEqual(
      sink
        .received('/chart')
        .map((r) => (r.json() as { name: string }).name)
        .sort(),
      ['HPA shop/hpa-1', 'HPA shop/hpa-2', 'HPA shop/hpa-3'],
    );
  });

  it('rejects malformed requests with a 4xx that says what is wrong, and keeps serving', async () => {
    const hpa = loadFixture('hpa-successful-rescale-up-resource-add');
    const cases: { name: string; headers: Record<string, string>; body: string; status: number; error: RegExp }[] = [
      {
        name: 'plain JSON, no CloudEvent',
        headers: { 'content-type': 'application/json' },
        body: '{}',
        status: 400,
        error: /not a CloudEvent/,
      },
      {
        name: 'truncated JSON',
        headers: hpa.headers,
        body: bodyOf(hpa).slice(0, 100),
        status: 400,
        error: /invalid JSON/,
      },
      { name: 'data is a string', headers: hpa.headers, body: '"just text"', status: 400, error: /invalid data/ },
      { name: 'data is an array', headers: hpa.headers, body: '[1,2]', status: 400, error: /invalid data/ },
      {
        name: 'missing ce-source',
        headers: { ...hpa.headers, 'ce-source': '' },
        body: bodyOf(hpa),
        status: 400,
        error: /invalid CloudEvent/,
      },
      {
        name: 'structured mode without type',
        headers: { 'content-type': 'application/cloudevents+json' },
        body: '{"specversion":"1.0","id":"1","source":"s"}',
        status: 400,
        error: /invalid CloudEvent/,
      },
      {
        name: 'body over the limit',
        headers: hpa.headers,
        body: JSON.stringify({ ...(hpa.body as object), message: 'x'.repeat(1024 * 1024) }),
        status: 413,
        error: /body too large/,
      },
    ];
    for (const c of cases) {
      const response = await svc.postRaw(c.headers, c.body);
      assert.equal(response.status, c.status, c.name);
      const body = JSON.parse(response.text) as { error: string; detail: string };
      assert.match(body.error, c.error, c.name);
      assert.ok(body.detail.length > 0, `${c.name}: has a detail`);
    }
    assert.equal((await svc.post(rescale(9))).status, 204, 'still serving');
    assert.equal(await svc.metric('kube_event_rules_events_received_total', { outcome: 'invalid' }), 6);
    assert.equal(await svc.metric('kube_event_rules_events_received_total', { outcome: 'too_large' }), 1);
    assert.ok(svc.logs.some((l) => l.msg === 'request rejected' && l.status === 413));
  });

  it('fires on new occurrences only: not on a no-op update, not on the TTL delete (unless a rule opts in)', async () => {
    await svc.post(rescale(5, 'add'));
    const noop = await svc.post(withEvent(rescale(5, 'update'), (_b, h) => (h['ce-id'] = 'ce-noop')));
    const gone = await svc.post(rescale(5, 'delete'));
    assert.equal(noop.status, 204);
    assert.equal(gone.status, 204);
    assert.equal(sink.received('/chart').length, 1);
    assert.deepEqual(
      svc.lines.map((l) => l.request.body),
      [{ expired: 'checkout.17cf4ffb2470c4d5' }],
      'the opted-in delete rule fired',
    );
  });

  it('evaluates other CloudEvent types with their attributes and data', async () => {
    const response = await svc.postRaw(
      {
        'ce-specversion': '1.0',
        'ce-id': 'd1',
        'ce-source': 'ci/pipeline',
        'ce-type': 'com.example.deploy',
        'content-type': 'application/json',
      },
      '{"app":"web"}',
    );
    assert.equal(response.status, 204);
    assert.deepEqual(
      sink.received('/chart').map((r) => r.json()),
      [{ name: 'deploy web', source: 'ci/pipeline' }],
    );
    assert.equal(
      sink.received('/chart')[0].headers['x-event-reason'],
      undefined,
      'a header expression without a value leaves the header out',
    );
    assert.equal(await svc.metric('kube_event_rules_events_received_total', { type: 'other', outcome: 'matched' }), 1);
  });

  it('parses binary-mode JSON data sent with a non-canonical content type', async () => {
    const fixture = withEvent(
      rescale(40),
      (_b, headers) => (headers['content-type'] = 'application/json;charset=UTF-8'),
    );
    assert.equal((await svc.post(fixture)).status, 204);
    assert.equal((sink.received('/chart')[0].json() as { name: string }).name, 'HPA shop/hpa-40');
  });

  it('answers 503 when a destination keeps failing, so the Broker redelivers; the redelivery does not resend what was delivered', async () => {
    const backoff = loadFixture('pod-backoff-crashloop-resource-update');
    // Make it an HPA-independent event matched by two rules: crashloop (chat, failing) and warnings (log).
    sink.always('/chat/shop', 500);
    const first = await svc.post(backoff);
    assert.equal(first.status, 503);
    const error = JSON.parse(first.text) as { error: string; detail: string };
    assert.equal(error.error, 'delivery failed');
    assert.match(error.detail, /rule crashloop → destination chat: HTTP 500/);
    assert.equal(svc.lines.length, 1, 'the log action was delivered');
    assert.ok(svc.logs.some((l) => l.msg === 'delivery failed; the Broker will redeliver' && l.rule === 'crashloop'));

    sink.always('/chat/shop', undefined);
    const redelivery = await svc.post(backoff);
    assert.equal(redelivery.status, 204);
    assert.equal(svc.lines.length, 1, 'the delivered log action was not sent again');
    assert.equal(sink.received('/chat/shop').filter((r) => r.method === 'POST').length, 3 + 1);
    assert.equal(await svc.metric('kube_event_rules_events_received_total', { outcome: 'retry' }), 1);
    assert.equal(await svc.metric('kube_event_rules_deliveries_total', { rule: 'crashloop', outcome: 'failed' }), 1);
    assert.equal(
      await svc.metric('kube_event_rules_deliveries_total', { rule: 'warnings', outcome: 'skipped_duplicate' }),
      1,
    );
  });

  it('passes a destination 429 with a long Retry-After on to the Broker', async () => {
    sink.respond('/chart', { status: 429, retryAfter: '20' });
    const response = await svc.post(rescale(11));
    assert.equal(response.status, 429);
    assert.equal(response.headers.get('retry-after'), '20');
  });

  it('counts a permanent 4xx of a destination and does not ask for a redelivery', async () => {
    sink.respond('/chart', { status: 400, body: '{"message":"bad event"}' });
    const response = await svc.post(rescale(12));
    assert.equal(response.status, 204);
    assert.equal(
      await svc.metric('kube_event_rules_deliveries_total', { rule: 'hpa-rescale', outcome: 'rejected' }),
      1,
    );
    assert.ok(
      svc.logs.some(
        (l) => l.msg === 'delivery rejected by the destination; not retried' && /bad event/.test(String(l.error)),
      ),
    );
  });

  it('counts a template error, keeps the other actions going and answers 2xx', async () => {
    await svc.writeRules(
      'broken.yaml',
      `
destinations: { stdout: { kind: log } }
rules:
  - name: broken-template
    conditions: { all: [ { fact: event, path: $.reason, operator: equal, value: SuccessfulRescale } ] }
    actions: [ { destination: stdout, body: '{ "n": reason + 1 }' } ]
`,
    );
    const response = await svc.post(rescale(13));
    assert.equal(response.status, 204);
    assert.equal(sink.received('/chart').length, 1);
    assert.equal(await svc.metric('kube_event_rules_template_errors_total', { rule: 'broken-template' }), 1);
    const logged = svc.logs.find((l) => l.msg === 'action not rendered');
    assert.match(String(logged?.error), /rule broken-template action 0 body: T2001/);
  });

  it('keeps 250 concurrent events apart: each gets exactly its own payload', async () => {
    const responses = await Promise.all(Array.from({ length: 250 }, (_, i) => svc.post(rescale(1000 + i))));
    assert.ok(responses.every((r) => r.status === 204));
    const names = sink.received('/chart').map((r) => r.json() as { name: string; details: string; occurrence: string });
    assert.equal(names.length, 250);
    for (const payload of names) {
      const n = payload.name.replace('HPA shop/hpa-', '');
      assert.equal(payload.details, `New size: ${n}; reason: test`);
      assert.equal(payload.occurrence, `uid-${n}/1`);
    }
    assert.equal(new Set(names.map((p) => p.name)).size, 250);
  });

  it('redacts secret values in log-destination output', async () => {
    await svc.writeRules(
      'secret-log.yaml',
      `
destinations:
  stdout: { kind: log, headers: { Authorization: { env: CHART_TOKEN } } }
rules:
  - name: secret-log
    conditions: { all: [ { fact: event, path: $.reason, operator: equal, value: SuccessfulRescale } ] }
    actions: [ { destination: stdout } ]
`,
    );
    await svc.post(rescale(14));
    const line = svc.lines.find((l) => l.destination === 'stdout');
    assert.equal(line?.request.headers.authorization, '[redacted]');
    assert.ok(!JSON.stringify(svc.lines).includes('s3cret'));
    assert.ok(!JSON.stringify(svc.logs).includes('s3cret'));
  });

  it('serves health, readiness, status and metrics', async () => {
    assert.equal((await fetch(`${svc.url}/healthz`)).status, 200);
    assert.equal((await fetch(`${svc.url}/readyz`)).status, 200);
    const status = (await (await fetch(`${svc.url}/status`)).json()) as {
      rulesLoaded: number;
      sources: { source: string; errors: string[] }[];
    };
    assert.equal(status.rulesLoaded, 5);
    assert.deepEqual(
      status.sources.map((s) => s.source),
      ['file:rules.yaml'],
    );
    const metrics = await (await fetch(`${svc.url}/metrics`)).text();
    for (const name of [
      'events_received_total',
      'rule_matches_total',
      'deliveries_total',
      'delivery_duration_seconds',
      'template_errors_total',
      'rules_loaded',
      'rule_load_errors',
    ]) {
      assert.match(metrics, new RegExp(`kube_event_rules_${name}`), name);
    }
    svc.service.drain();
    assert.equal((await fetch(`${svc.url}/readyz`)).status, 503, 'not ready once draining');
    const refused = await svc.post(rescale(99));
    assert.equal(
      refused.status,
      503,
      'events are refused (the Broker retries elsewhere) rather than acknowledged unprocessed',
    );
    assert.equal(refused.headers.get('retry-after'), '1');
  });

  it('hot-reloads the rules directory: add, break (last good kept), fix, delete', async () => {
    const doc = (value: string) => `
destinations: { hook: { url: "${sink.url}/reload" } }
rules:
  - name: reloaded
    conditions: { all: [ { fact: event, path: $.reason, operator: ${value}, value: SuccessfulRescale } ] }
    actions: [ { destination: hook, body: '{ "v": 1 }' } ]
`;
    await svc.writeRules('reload.yaml', doc('equal'));
    await svc.post(rescale(20));
    assert.equal(sink.received('/reload').length, 1);

    await svc.writeRules('reload.yaml', doc('equalz'));
    const status = (await (await fetch(`${svc.url}/status`)).json()) as {
      sources: { source: string; errors: string[]; rules: string[] }[];
    };
    const source = status.sources.find((s) => s.source === 'file:reload.yaml')!;
    assert.match(source.errors[0], /unknown operator "equalz"/);
    assert.deepEqual(source.rules, ['reloaded']);
    assert.equal(await svc.metric('kube_event_rules_rule_load_errors', { source: 'file:reload.yaml' }), 1);
    await svc.post(rescale(21));
    assert.equal(sink.received('/reload').length, 2, 'the last good version still fires');

    await svc.writeRules('reload.yaml', doc('equal'));
    assert.equal(await svc.metric('kube_event_rules_rule_load_errors', { source: 'file:reload.yaml' }), 0);

    const { rm } = await import('node:fs/promises');
    await rm(`${svc.rulesDir}/reload.yaml`);
    await svc.service.rules.reload();
    await svc.post(rescale(22));
    assert.equal(sink.received('/reload').length, 2, 'deleted rule no longer fires');
    assert.equal(
      await svc.metric('kube_event_rules_rule_matches_total', { rule: 'reloaded' }),
      0,
      'its series are gone',
    );
  });

  it('picks up a rule file change through the directory watch, without an explicit reload', async () => {
    const { writeFile } = await import('node:fs/promises');
    await writeFile(
      `${svc.rulesDir}/watched.yaml`,
      `
destinations: { hook: { url: "${sink.url}/watched" } }
rules:
  - name: watched
    conditions: { all: [ { fact: event, path: $.reason, operator: equal, value: SuccessfulRescale } ] }
    actions: [ { destination: hook } ]
`,
    );
    const deadline = Date.now() + 5000;
    while (!svc.service.store.current.rules.some((r) => r.name === 'watched')) {
      assert.ok(Date.now() < deadline, 'the watcher loaded the new file within 5 s');
      await new Promise((r) => setTimeout(r, 20));
    }
    await svc.post(rescale(30));
    const [captured] = await sink.waitFor('/watched', 1);
    assert.equal(
      (captured.json() as { reason: string }).reason,
      'SuccessfulRescale',
      'without a body template the normalized Event is sent',
    );
  });
});
