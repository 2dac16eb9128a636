/**
 * An Event recorded in the attacker's namespace `aaa` about another namespace's HPA (the API server accepts
 * it for an Event with eventTime set: only old-style Events must agree on namespaces) reaches cluster rules.
 * The bundled hpa-sender-compat rule once sent the attacker's message to the victim namespace's hpa-sender
 * webhook with the victim's credentials; hpa-sender now acts only on Events of the HPA's own namespace.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../src/config.js';
import { startCaptureSink, type CaptureSink } from '../support/capture-sink.js';
import { startFakeKubeApi, type FakeKubeApi } from '../support/fake-kube-api.js';
import { loadFixture, withEvent } from '../support/fixtures.js';
import { connectionTo, secret } from '../support/kube-fixtures.js';
import { startService, type RunningService } from '../support/running-service.js';

const HPA_SENDER_RULES = readFileSync(new URL('../../rules/hpa-sender-compat.yaml', import.meta.url), 'utf8');

describe("a forged cross-namespace Event cannot drive another namespace's hpa-sender webhook", () => {
  let fake: FakeKubeApi;
  let sink: CaptureSink;
  let svc: RunningService;
  before(async () => {
    fake = await startFakeKubeApi();
    sink = await startCaptureSink();
    fake.apply(
      secret('shop', 'wavefront-hpe', {
        url: `${sink.url}/api/v2/event`,
        headers: '{"Authorization":"Bearer wavefront-api-token"}',
        body: '{"name":"HPA Scaling","details":"_message_"}',
      }),
    );
    fake.apply({
      apiVersion: 'autoscaling/v2',
      kind: 'HorizontalPodAutoscaler',
      metadata: { name: 'checkout', namespace: 'shop', annotations: { 'hpa-event': 'shop/wavefront-hpe' } },
    });
    svc = await startService({
      rules: { 'hpa-sender-compat.yaml': HPA_SENDER_RULES },
      kube: connectionTo(fake),
      config: { kube: { ...loadConfig({}).kube, relistAfterMs: 60_000 } },
    });
  });
  after(async () => {
    await svc.stop();
    await sink.close();
    await fake.close();
  });

  const hpaEvent = (id: string, recordedIn: string, message: string) =>
    withEvent(loadFixture('hpa-successful-rescale-up-resource-add'), (body, headers) => {
      body.metadata.uid = id;
      body.metadata.namespace = recordedIn;
      body.involvedObject.namespace = 'shop';
      body.involvedObject.name = 'checkout';
      body.message = message;
      headers['ce-id'] = id;
      headers['ce-namespace'] = recordedIn;
    });

  it("an Event in aaa about shop/checkout is not delivered to shop's webhook; the action error says why", async () => {
    const answer = await svc.post(
      hpaEvent('forged-1', 'aaa', 'URGENT: checkout compromised, rotate keys at https://evil.example/'),
    );
    const got = sink.received('/api/v2/event');
    assert.equal(
      got.length,
      0,
      `delivered to shop's webhook: auth=${String(got[0]?.headers.authorization)} body=${got[0]?.body}`,
    );
    assert.ok(
      answer.status >= 200 && answer.status < 300,
      `a permanent action error: not redelivered (${answer.status} ${answer.text})`,
    );
    assert.match(JSON.stringify(svc.logs), /recorded in namespace aaa, not the HPA's/);
  });

  it('control: the same Event recorded in shop is delivered', async () => {
    await svc.post(hpaEvent('genuine-1', 'shop', 'New size: 3; reason: cpu resource utilization'));
    const got = sink.received('/api/v2/event');
    assert.equal(got.length, 1);
    assert.match(got[0].body, /New size: 3/);
  });
});
