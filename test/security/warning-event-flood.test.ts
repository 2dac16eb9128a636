/**
 * Quotas were per document and the number of a team's documents was not limited: one ConfigMap write with
 * N broken keys made the service create N Warning Events at once (outside KUBE_QPS) and N
 * rule_load_errors{source} series. Now a team namespace has at most TEAM_MAX_DOCUMENTS documents (the
 * keys beyond are not loaded), a ConfigMap version gets one Warning Event, and Warning Events take tokens
 * of the service's API rate limit.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../src/config.js';
import { pino } from 'pino';
import { createRuleErrorReporter } from '../../src/kube/warning-events.js';
import { TokenBucket } from '../../src/kube/token-bucket.js';
import { startFakeKubeApi, type FakeKubeApi } from '../support/fake-kube-api.js';
import { connectionTo, ruleConfigMap, waitUntil } from '../support/kube-fixtures.js';
import { startService, type RunningService } from '../support/running-service.js';

describe('a team cannot flood Warning Events or metric series with rule documents', () => {
  let fake: FakeKubeApi;
  let svc: RunningService;
  before(async () => {
    fake = await startFakeKubeApi();
    const defaults = loadConfig({});
    svc = await startService({
      kube: connectionTo(fake),
      config: {
        kube: { ...defaults.kube, relistAfterMs: 60_000, requestsPerSecond: 5, burst: 10 },
        tenancy: { ...defaults.tenancy, documentsPerNamespace: 5 },
      },
    });
  });
  after(async () => {
    await svc.stop();
    await fake.close();
  });

  it('one ConfigMap write with 400 broken keys: at most TEAM_MAX_DOCUMENTS sources, one Warning Event', async () => {
    const data: Record<string, string> = {};
    for (let i = 0; i < 400; i++) data[`k${String(i).padStart(3, '0')}.yaml`] = `rules: [ { name: x${i} } ]`;
    const before = fake.count('POST', /\/namespaces\/aaa\/events$/);
    fake.apply(ruleConfigMap('aaa', 'spam', data));
    await waitUntil(
      'judged',
      () =>
        svc.service.store.status().filter((s) => s.source.startsWith('configmap:aaa/spam/') && s.errors.length > 0)
          .length === 5,
      20_000,
    );
    await waitUntil('Warning Event', () => fake.count('POST', /\/namespaces\/aaa\/events$/) > before, 5000);
    await new Promise((r) => setTimeout(r, 1000)); // anything more would arrive now
    const events = fake.count('POST', /\/namespaces\/aaa\/events$/) - before;
    const sources = svc.service.store.status().filter((s) => s.source.startsWith('configmap:aaa/spam/')).length;
    const series = (await (await fetch(`${svc.url}/metrics`)).text())
      .split('\n')
      .filter((l) => l.startsWith('kube_event_rules_rule_load_errors{source="configmap:aaa/spam/')).length;
    assert.equal(sources, 5, 'TEAM_MAX_DOCUMENTS=5 documents loaded');
    assert.ok(series <= 5, `rule_load_errors series: ${series}`);
    // One Event gathers the keys rejected together (two if a key is judged after the gathering moment).
    assert.ok(events >= 1 && events <= 2, `Warning Event creates: ${events}`);
    assert.ok(
      fake.list('v1', 'Event').some((e) => /TEAM_MAX_DOCUMENTS/.test(String(e.message))),
      'the quota is in a Warning Event',
    );
    assert.match(
      JSON.stringify(svc.logs),
      /namespace aaa would have 400 rule documents; at most 5 are allowed per team namespace \(TEAM_MAX_DOCUMENTS\): 395 key\(s\) not loaded/,
    );
  });

  it("Warning Events take tokens of the API rate limit: with 3 tokens and no refill, 3 of 10 ConfigMaps' Events are created", async () => {
    const bucket = new TokenBucket(0.001, 3);
    const reporter = createRuleErrorReporter(fake.kubeConfig(), pino({ level: 'silent' }), bucket);
    const before = fake.count('POST', /\/namespaces\/ccc\/events$/);
    for (let i = 0; i < 10; i++) {
      reporter.report(
        { metadata: { name: `cm-${i}`, namespace: 'ccc', uid: `u${i}`, resourceVersion: '1' }, data: { 'r.yaml': '' } },
        'r.yaml',
        ['broken'],
      );
      reporter.report(
        { metadata: { name: `cm-${i}`, namespace: 'ccc', uid: `u${i}`, resourceVersion: '1' }, data: { 'r.yaml': '' } },
        'r.yaml',
        ['broken again'],
      );
    }
    await waitUntil('created', () => fake.count('POST', /\/namespaces\/ccc\/events$/) - before >= 3, 5000);
    await new Promise((r) => setTimeout(r, 800)); // anything more would arrive now
    assert.equal(fake.count('POST', /\/namespaces\/ccc\/events$/) - before, 3);
    assert.equal(bucket.take(), false, 'the bucket is empty: the Events used its tokens');
  });
});
