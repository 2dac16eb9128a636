/**
 * Lookups against a failing Kubernetes API (fake server, real client): a lookup a rule needs that fails
 * for any reason but 404 is answered 503 (or 429 + Retry-After when rate limited) — never a silent
 * no-match — every request is aborted at its deadline, and Reference mode does the same.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { loadConfig } from '../../src/config.js';
import { startCaptureSink, type CaptureSink } from '../support/capture-sink.js';
import { startFakeKubeApi, type FakeKubeApi } from '../support/fake-kube-api.js';
import { loadFixture, withEvent } from '../support/fixtures.js';
import { OWN_NAMESPACE, connectionTo, secret, waitUntil } from '../support/kube-fixtures.js';
import { startService, type RunningService } from '../support/running-service.js';

const rules = (sinkUrl: string) => `
destinations:
  hook: { url: "${sinkUrl}/hook" }
rules:
  - name: scheduled-pods
    conditions:
      all:
        - { fact: event, path: $.reason, operator: equal, value: BackOff }
        - { fact: object, path: $.spec.nodeName, operator: startsWith, value: node- }
    actions:
      - destination: hook
        body: '{ "pod": involvedObject.name }'
  - name: hpa-with-object
    conditions: { all: [ { fact: event, path: $.reason, operator: equal, value: SuccessfulRescale } ] }
    actions:
      - destination: hook
        body: '{ "hpa": $object.metadata.name }'
`;

let n = 0;
const podEvent = (pod: string) =>
  withEvent(loadFixture('pod-backoff-crashloop-resource-update'), (body, headers) => {
    body.metadata.uid = `pod-${pod}-${++n}`;
    body.involvedObject.name = pod;
    body.involvedObject.namespace = 'shop';
    headers['ce-id'] = `ce-${n}`;
  });
const POD = /\/api\/v1\/namespaces\/shop\/pods\//;

describe('lookups against a failing API', () => {
  let fake: FakeKubeApi;
  let sink: CaptureSink;
  let svc: RunningService;

  before(async () => {
    fake = await startFakeKubeApi();
    sink = await startCaptureSink();
    for (let i = 0; i < 5; i++)
      fake.apply({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: `web-${i}`, namespace: 'shop' },
        spec: { nodeName: `node-${i}` },
      });
    const hpa = loadFixture('hpa-successful-rescale-up-resource-add').body as Record<string, any>;
    fake.apply({
      apiVersion: 'autoscaling/v2',
      kind: 'HorizontalPodAutoscaler',
      metadata: { name: hpa.involvedObject.name, namespace: hpa.involvedObject.namespace },
    });
    fake.apply({
      ...hpa,
      metadata: { name: hpa.metadata.name, namespace: hpa.involvedObject.namespace, uid: 'stored-event-uid' },
    });
    svc = await startService({
      rules: { 'r.yaml': rules(sink.url) },
      kube: connectionTo(fake),
      config: {
        kube: {
          ...loadConfig({}).kube,
          rulesSelector: '',
          cacheTtlMs: 0,
          timeoutMs: 300,
          requestsPerSecond: 1000,
          burst: 1000,
        },
      },
    });
  });
  after(async () => {
    await svc.stop();
    await sink.close();
    await fake.close();
  });
  beforeEach(() => {
    fake.clearFaults();
    fake.up();
    sink.requests.length = 0;
  });

  it('a 404 is an absent object: no match, 204', async () => {
    assert.equal((await svc.post(podEvent('gone'))).status, 204);
    assert.equal(sink.received('/hook').length, 0);
  });

  it('a 403 is absent too, and reported as a configuration problem (log + metric)', async () => {
    fake.fail('GET', POD, 403);
    assert.equal((await svc.post(podEvent('web-1'))).status, 204);
    assert.equal(sink.received('/hook').length, 0);
    assert.equal(await svc.metric('kube_event_rules_kube_requests_total', { kind: 'Pod', outcome: 'forbidden' }), 1);
    assert.ok(svc.logs.some((l) => l.level === 50 && String(l.msg).startsWith('configuration problem')));
  });

  it('a 500 is answered 503 and nothing is sent; the redelivery, once the API answers, is delivered', async () => {
    fake.fail('GET', POD, 500);
    const failed = await svc.post(podEvent('web-2'));
    assert.equal(failed.status, 503);
    assert.match(
      JSON.parse(failed.text).detail,
      /rule scheduled-pods not decided: .*Pod shop\/web-2: API server answered 500/,
    );
    assert.equal(sink.received('/hook').length, 0);
    const again = withEvent(podEvent('web-2'), (body, headers) => {
      body.metadata.uid = `pod-web-2-${n - 1}`;
      headers['ce-id'] = `ce-${n - 1}`;
    });
    assert.equal((await svc.post(again)).status, 204);
    assert.equal(sink.received('/hook').length, 1);
    assert.ok((await svc.metric('kube_event_rules_events_received_total', { outcome: 'retry' })) >= 1);
  });

  it('an API outage (connections reset) is answered 503', async () => {
    fake.down();
    assert.equal((await svc.post(podEvent('web-3'))).status, 503);
    fake.up();
    assert.equal((await svc.post(podEvent('web-3'))).status, 204);
  });

  it('a 429 with Retry-After is answered 429 with that Retry-After, and the API is not asked again meanwhile', async () => {
    fake.fail('GET', POD, 429, 1, { 'retry-after': '3' });
    const first = await svc.post(podEvent('web-4'));
    assert.equal(first.status, 429);
    assert.equal(first.headers.get('retry-after'), '3');
    const asked = fake.count('GET', POD);
    const second = await svc.post(podEvent('web-0'));
    assert.equal(second.status, 429, 'refused locally while the API asked us to wait');
    assert.ok(Number(second.headers.get('retry-after')) >= 1);
    assert.equal(fake.count('GET', POD), asked, 'no request to the API during its Retry-After');
    assert.equal(sink.received('/hook').length, 0);
  });

  it('a lookup a template needs ($object) that fails is answered 503, not sent without it', async () => {
    await new Promise((r) => setTimeout(r, 3000)); // the previous test's Retry-After
    fake.fail('GET', /horizontalpodautoscalers/, 500);
    const hpa = withEvent(
      loadFixture('hpa-successful-rescale-up-resource-add'),
      (_b, headers) => (headers['ce-id'] = 'hpa-1'),
    );
    assert.equal((await svc.post(hpa)).status, 503);
    assert.equal(sink.received('/hook').length, 0);
    assert.equal((await svc.post(hpa)).status, 204);
    assert.equal(sink.received('/hook').length, 1);
  });

  it('an API that accepts and never answers: 503 at the deadline, and the request is aborted (no socket left open)', async () => {
    const baseline = await fake.openConnections();
    fake.hang('GET', POD);
    const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => svc.post(podEvent(`web-${i % 5}`))));
    assert.deepEqual([...new Set(answers.map((a) => a.status))], [503]);
    await waitUntil('hung lookups aborted', async () => (await fake.openConnections()) <= baseline + 1, 3000);
    assert.ok((await svc.metric('kube_event_rules_kube_requests_total', { kind: 'Pod', outcome: 'timeout' })) >= 1);
    const lines = svc.logs.filter(
      (l) => l.msg === 'API lookup failed; the event will be redelivered' && /no answer within/.test(String(l.error)),
    );
    assert.equal(lines.length, 1, 'one line for 20 timed-out lookups, not one per event');
  });

  it('Reference mode: an Event lookup answered 500 is 503, rate limited is 429 — not 204', async () => {
    const reference = withEvent(
      loadFixture('hpa-successful-rescale-up-reference-add'),
      (_b, headers) => (headers['ce-id'] = 'ref-1'),
    );
    fake.fail('GET', /\/events\//, 500);
    assert.equal((await svc.post(reference)).status, 503);
    fake.fail('GET', /\/events\//, 429, 1, { 'retry-after': '1' });
    const limited = await svc.post(reference);
    assert.equal(limited.status, 429);
    assert.equal(limited.headers.get('retry-after'), '1');
    assert.equal(sink.received('/hook').length, 0);
    await new Promise((r) => setTimeout(r, 1100));
    assert.equal((await svc.post(reference)).status, 204);
    assert.equal(sink.received('/hook').length, 1, 'resolved and delivered once the API answers');
  });
});

describe('the client-side rate limit', () => {
  it("an event refused by the service's own token bucket is answered 429 with Retry-After, not dropped", async () => {
    const fake = await startFakeKubeApi();
    const sink = await startCaptureSink();
    for (let i = 0; i < 5; i++)
      fake.apply({
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: `web-${i}`, namespace: 'shop' },
        spec: { nodeName: `node-${i}` },
      });
    const svc = await startService({
      rules: { 'r.yaml': rules(sink.url) },
      kube: connectionTo(fake),
      config: { kube: { ...loadConfig({}).kube, rulesSelector: '', cacheTtlMs: 0, requestsPerSecond: 0.5, burst: 3 } }, // one discovery request, then two Pods
    });
    try {
      const answers = [];
      for (let i = 0; i < 4; i++) answers.push(await svc.post(podEvent(`web-${i}`)));
      assert.deepEqual(
        answers.map((a) => a.status),
        [204, 204, 429, 429],
      );
      assert.ok(Number(answers[2].headers.get('retry-after')) >= 1);
      assert.equal(sink.received('/hook').length, 2);
      assert.equal(await svc.metric('kube_event_rules_kube_requests_total', { outcome: 'rate_limited' }), 2);
    } finally {
      await svc.stop();
      await sink.close();
      await fake.close();
    }
  });
});

describe('discovery through a failing API', () => {
  it('a kind discovery that fails (500) is a failed lookup (503), never "no such kind"', async () => {
    const fake = await startFakeKubeApi();
    const sink = await startCaptureSink();
    fake.apply({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'web-1', namespace: 'shop' },
      spec: { nodeName: 'node-1' },
    });
    const svc = await startService({
      rules: { 'r.yaml': rules(sink.url) },
      kube: connectionTo(fake),
      config: { kube: { ...loadConfig({}).kube, rulesSelector: '', timeoutMs: 300 } },
    });
    try {
      fake.fail('GET', /^\/api\/v1$/, 500);
      assert.equal((await svc.post(podEvent('web-1'))).status, 503);
      assert.equal(sink.received('/hook').length, 0);
      assert.equal((await svc.post(podEvent('web-1'))).status, 204);
      assert.equal(sink.received('/hook').length, 1);
    } finally {
      await svc.stop();
      await sink.close();
      await fake.close();
    }
  });
});

describe('Secret reads through a failing API', () => {
  it("share the rate limit, honour the API's Retry-After (429 to the Broker), and serve a known value stale", async () => {
    const fake = await startFakeKubeApi();
    const sink = await startCaptureSink();
    fake.apply(secret(OWN_NAMESPACE, 'hook', { token: 'abc' }));
    const svc = await startService({
      rules: {
        'r.yaml': `
destinations:
  hook: { url: "${sink.url}/hook", headers: { Authorization: { secretKeyRef: { name: hook, key: token }, prefix: "Bearer " } } }
rules:
  - name: every-backoff
    conditions: { all: [ { fact: event, path: $.reason, operator: equal, value: BackOff } ] }
    actions: [ { destination: hook } ]
`,
      },
      kube: connectionTo(fake),
      config: { kube: { ...loadConfig({}).kube, rulesSelector: '', secretTtlMs: 0, secretStaleMs: 60_000 } },
    });
    const SECRET = /\/secrets\/hook$/;
    try {
      // No value known yet and the API says 429: the event waits for the API's Retry-After.
      fake.fail('GET', SECRET, 429, 1, { 'retry-after': '2' });
      const limited = await svc.post(podEvent('web-1'));
      assert.equal(limited.status, 429);
      assert.equal(limited.headers.get('retry-after'), '2');
      const asked = fake.count('GET', SECRET);
      assert.equal((await svc.post(podEvent('web-2'))).status, 429, 'refused locally during the Retry-After');
      assert.equal(fake.count('GET', SECRET), asked, 'the API was not asked again');
      await new Promise((r) => setTimeout(r, 2100));
      assert.equal((await svc.post(podEvent('web-3'))).status, 204);
      assert.equal(sink.received('/hook').at(-1)?.headers.authorization, 'Bearer abc');
      // Now a value is known: while the API fails, it is served stale and counted.
      fake.fail('GET', SECRET, 500, 100);
      assert.equal((await svc.post(podEvent('web-4'))).status, 204);
      assert.equal(sink.received('/hook').at(-1)?.headers.authorization, 'Bearer abc');
      assert.equal(await svc.metric('kube_event_rules_kube_requests_total', { kind: 'Secret', outcome: 'stale' }), 1);
    } finally {
      await svc.stop();
      await sink.close();
      await fake.close();
    }
  });
});
