/**
 * A hostile team cannot push the platform's secret values out of the redaction registry: with the bundled
 * hpa-sender rule and an hpa-sender Secret of its own namespace whose body template has >10,000
 * `_message_`-separated parts, it once evicted them, and a platform destination echoing its secret webhook
 * path printed it in the log. Remembered values are never forgotten now (each namespace is bounded on its
 * own), a template has few parts, and an echo of this request's own secret URL is hidden by position.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../src/config.js';
import { startCaptureSink, type CaptureSink } from '../support/capture-sink.js';
import { startFakeKubeApi, type FakeKubeApi } from '../support/fake-kube-api.js';
import { loadFixture, withEvent } from '../support/fixtures.js';
import { OWN_NAMESPACE, connectionTo, secret } from '../support/kube-fixtures.js';
import { startService, type RunningService } from '../support/running-service.js';

const HPA_SENDER_RULES = readFileSync(new URL('../../rules/hpa-sender-compat.yaml', import.meta.url), 'utf8');
const SECRET_PATH = '/services/T0PLATFORM/B0PLATFORM/slackWebhookSecretXyZ123';

const platform = `
destinations:
  slack:
    url: { secretKeyRef: { name: slack-webhook, key: url } }
rules:
  - name: platform-backoff
    conditions:
      all:
        - { fact: event, path: $.reason, operator: equal, value: BackOff }
    actions:
      - destination: slack
        body: '{ "text": reason }'
`;

let n = 0;
const backoff = (namespace: string) =>
  withEvent(loadFixture('pod-backoff-crashloop-resource-update'), (body, headers) => {
    n++;
    body.metadata.uid = `backoff-${n}`;
    body.metadata.namespace = namespace;
    body.involvedObject.namespace = namespace;
    headers['ce-id'] = `ce-b-${n}`;
  });
const hpaEvent = (namespace: string, name: string) =>
  withEvent(loadFixture('hpa-successful-rescale-up-resource-add'), (body, headers) => {
    n++;
    body.metadata.uid = `hpa-${n}`;
    body.metadata.namespace = namespace;
    body.involvedObject.name = name;
    body.involvedObject.namespace = namespace;
    headers['ce-id'] = `ce-hpa-${n}`;
    headers['ce-namespace'] = namespace;
  });

describe('redaction registry cannot be flooded by a team', () => {
  let fake: FakeKubeApi;
  let sink: CaptureSink;
  let svc: RunningService;
  before(async () => {
    fake = await startFakeKubeApi();
    sink = await startCaptureSink();
    fake.apply(secret(OWN_NAMESPACE, 'slack-webhook', { url: `${sink.url}${SECRET_PATH}` }));
    // The attacker: one HPA and one hpa-sender Secret, both in its own namespace (allowed for teams).
    const parts = Array.from({ length: 10_050 }, (_, i) => `f${String(i).padStart(5, '0')}`);
    fake.apply(secret('aaa', 'flood', { url: `${sink.url}/flood`, body: `"${parts.join('_message_')}"` }));
    fake.apply({
      apiVersion: 'autoscaling/v2',
      kind: 'HorizontalPodAutoscaler',
      metadata: { name: 'flood', namespace: 'aaa', annotations: { 'hpa-event': 'aaa/flood' } },
    });
    svc = await startService({
      rules: { 'hpa-sender-compat.yaml': HPA_SENDER_RULES, 'platform.yaml': platform },
      kube: connectionTo(fake),
      config: { kube: { ...loadConfig({}).kube, relistAfterMs: 60_000 } },
    });
  });
  after(async () => {
    await svc.stop();
    await sink.close();
    await fake.close();
  });

  it('control: without the flood the echoed secret path is redacted', async () => {
    sink.respond(SECRET_PATH, { status: 400, body: `no such webhook: ${SECRET_PATH}` });
    await svc.post(backoff('shop'));
    const text = JSON.stringify(svc.logs);
    assert.ok(text.includes('no such webhook'), 'the error excerpt is logged');
    assert.ok(!text.includes('slackWebhookSecretXyZ123'), 'redacted');
  });

  it('a team flood leaves the platform secret redacted; the flood template is refused', async () => {
    svc.logs.length = 0;
    // The platform's destination answers slowly; meanwhile the attacker's HPA event is rendered.
    sink.respond(SECRET_PATH, { status: 400, body: `no such webhook: ${SECRET_PATH}`, delayMs: 800 });
    const victim = svc.post(backoff('shop'));
    await new Promise((r) => setTimeout(r, 150));
    const flood = await svc.post(hpaEvent('aaa', 'flood'));
    const answer = await victim;
    await new Promise((r) => setTimeout(r, 100)); // the log stream is asynchronous
    assert.ok(
      JSON.stringify(svc.logs).includes('placeholders; at most'),
      JSON.stringify(svc.logs).slice(0, 3000) + flood.text,
    );
    const leaked = [JSON.stringify(svc.logs), answer.text].filter((t) => t.includes('slackWebhookSecretXyZ123'));
    assert.equal(
      leaked.length,
      0,
      `secret URL path leaked: ${leaked.map((t) => t.slice(Math.max(0, t.indexOf('slackWebhook') - 200), t.indexOf('slackWebhook') + 40)).join(' ||| ')}`,
    );
  });
});
