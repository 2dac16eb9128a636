/**
 * Digests in one service (memory group store): a storm of matching events is one delivery with the count
 * and the first and last few occurrences; a Broker redelivery counts once; `maxEvents` flushes early; a
 * destination failing at flush time is tried again and then delivered; a dry run records nothing; a
 * graceful shutdown flushes what is held.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startCaptureSink, type CaptureSink } from '../support/capture-sink.js';
import { startService, type RunningService } from '../support/running-service.js';
import { PER_DEPLOYMENT, crashLoop, digestRules, waitUntil } from '../support/digest-events.js';
import { bodyOf } from '../support/fixtures.js';
import { readFileSync } from 'node:fs';

const names = (from: number, to: number) =>
  Array.from({ length: to - from + 1 }, (_, i) => `payment-5c7d9b8f6-p${String(from + i).padStart(3, '0')}`);

describe('digests (memory store)', () => {
  let sink: CaptureSink;
  let svc: RunningService;
  const start = async (digest: string) => {
    svc = await startService({
      rules: { 'digest.yaml': digestRules(sink.url, digest) },
      config: { deliveryAttempts: 1, deliveryDeadlineMs: 2000 },
    });
  };
  before(async () => {
    sink = await startCaptureSink();
  });
  after(() => sink.close());

  it('50 matching events inside the window (and redeliveries of 10 of them) are one delivery with count 50', async () => {
    sink.requests.length = 0;
    await start(`{ key: ${PER_DEPLOYMENT}, window: 3s, keep: 3 }`);
    try {
      const statuses = await Promise.all(
        Array.from({ length: 50 }, (_, i) => svc.post(crashLoop(i + 1)).then((r) => r.status)),
      );
      assert.deepEqual(new Set(statuses), new Set([204]), 'each answered once its occurrence is recorded');
      // The Broker redelivers ten of them (a lost 2xx): already recorded, they count once.
      const again = await Promise.all(
        Array.from({ length: 10 }, (_, i) => svc.post(crashLoop(i + 1)).then((r) => r.status)),
      );
      assert.deepEqual(new Set(again), new Set([204]));
      assert.equal(await svc.metric('kube_event_rules_digest_groups_open'), 1);
      assert.equal(sink.received('/digest').length, 0, 'nothing sent before the window ends');

      const [delivery] = await sink.waitFor('/digest', 1, 15_000);
      const body = delivery.json() as Record<string, any>;
      assert.equal(body.key, 'shop/payment');
      assert.equal(body.count, 50);
      // Posted at once, they are recorded in any order: six different pods of the fifty are kept.
      assert.equal(new Set([...body.first, ...body.last].filter((n: string) => names(1, 50).includes(n))).size, 6);
      assert.ok(Date.parse(body.end) >= Date.parse(body.start));
      await waitUntil(
        'the group to be completed',
        async () => (await svc.metric('kube_event_rules_digest_groups_open')) === 0,
      );
      assert.equal(sink.received('/digest').length, 1, 'one delivery');
      assert.equal(await svc.metric('kube_event_rules_digest_occurrences_total', { outcome: 'recorded' }), 50);
      assert.equal(await svc.metric('kube_event_rules_digest_occurrences_total', { outcome: 'duplicate' }), 10);
      assert.equal(await svc.metric('kube_event_rules_digest_flushes_total', { outcome: 'delivered' }), 1);
    } finally {
      await svc.stop();
    }
  });

  it('two Deployments are two groups; maxEvents flushes a group as soon as it is full', async () => {
    sink.requests.length = 0;
    await start(`{ key: ${PER_DEPLOYMENT}, window: 1h, maxEvents: 5 }`);
    try {
      for (let i = 1; i <= 5; i++) assert.equal((await svc.post(crashLoop(i, 'cart'))).status, 204);
      assert.equal((await svc.post(crashLoop(1, 'search'))).status, 204);
      const [delivery] = await sink.waitFor('/digest', 1);
      assert.deepEqual(
        { key: (delivery.json() as any).key, count: (delivery.json() as any).count },
        { key: 'shop/cart', count: 5 },
      );
      assert.equal(
        await svc.metric('kube_event_rules_digest_groups_open'),
        1,
        'the other Deployment still open (its window is an hour)',
      );
    } finally {
      await svc.stop(); // graceful: the open group is flushed now
    }
    const flushed = sink.received('/digest').map((r) => r.json() as any);
    assert.deepEqual(
      flushed.map((b) => [b.key, b.count]),
      [
        ['shop/cart', 5],
        ['shop/search', 1],
      ],
    );
  });

  it('a destination failing at flush time is tried again later, then delivered once', async () => {
    sink.requests.length = 0;
    sink.respond('/digest', 503, 500);
    await start(`{ key: ${PER_DEPLOYMENT}, window: 1s }`);
    try {
      for (let i = 1; i <= 4; i++) assert.equal((await svc.post(crashLoop(i))).status, 204);
      const requests = await sink.waitFor('/digest', 3, 20_000);
      assert.deepEqual(
        requests.map((r) => (r.json() as any).count),
        [4, 4, 4],
        'the same digest each time',
      );
      await waitUntil(
        'the group to be completed',
        async () => (await svc.metric('kube_event_rules_digest_groups_open')) === 0,
      );
      assert.equal(await svc.metric('kube_event_rules_digest_flushes_total', { outcome: 'retry' }), 2);
      assert.equal(await svc.metric('kube_event_rules_digest_flushes_total', { outcome: 'delivered' }), 1);
      assert.equal(sink.received('/digest').length, 3, 'two failures, one delivery, nothing after');
    } finally {
      await svc.stop();
    }
  });

  it('a dry run shows the group an event would join and the digest it would send, and records nothing', async () => {
    sink.requests.length = 0;
    await start(`{ key: ${PER_DEPLOYMENT}, window: 1h }`);
    try {
      assert.equal((await svc.post(crashLoop(1))).status, 204);
      const fixture = crashLoop(2);
      const response = await fetch(`${svc.url}/dry-run`, {
        method: 'POST',
        headers: fixture.headers,
        body: bodyOf(fixture),
      });
      assert.equal(response.status, 200);
      const [action] = ((await response.json()) as { events: { actions: Record<string, any>[] }[] }).events[0].actions;
      assert.equal(action.outcome, 'rendered');
      assert.deepEqual(action.digest, { key: 'shop/payment', group: 'open', count: 2 });
      assert.equal(action.request.body.count, 2);
      // The playground evaluates a draft the same way: the group the event would open, the digest it would send.
      const draft = digestRules(sink.url, `{ key: ${PER_DEPLOYMENT}, window: 10m }`);
      const evaluated = await fetch(`${svc.url}/playground/api/evaluate`, {
        method: 'POST',
        body: JSON.stringify({
          document: draft,
          event: JSON.stringify({ headers: fixture.headers, body: fixture.body }),
        }),
      });
      const [drafted] = ((await evaluated.json()) as { results: { actions: Record<string, any>[] }[] }).results[0]
        .actions;
      assert.deepEqual(drafted.digest, { key: 'shop/payment', group: 'new', count: 1 });
      assert.deepEqual(drafted.request.body.first, ['payment-5c7d9b8f6-p002']);
      assert.equal(
        await svc.metric('kube_event_rules_digest_occurrences_total', { outcome: 'recorded' }),
        1,
        'the real event recorded once (dry runs count in a registry nobody scrapes: the flushed count below is the check)',
      );
    } finally {
      await svc.stop();
    }
    assert.equal((sink.received('/digest')[0].json() as any).count, 1, 'the group held only the real event');
  });

  it("the guide's example: 50 crash-looping pods of a Deployment are one Slack message (flushed at a graceful shutdown)", async () => {
    sink.requests.length = 0;
    const guide = readFileSync(new URL('../../docs/examples/crashloop-digest.yaml', import.meta.url), 'utf8');
    svc = await startService({
      rules: { 'crashloop-digest.yaml': guide },
      env: { SLACK_WEBHOOK_URL: `${sink.url}/slack` },
    });
    const statuses = await Promise.all(
      Array.from({ length: 50 }, (_, i) => svc.post(crashLoop(i + 1)).then((r) => r.status)),
    );
    assert.deepEqual(new Set(statuses), new Set([204]));
    assert.equal(sink.received('/slack').length, 0, 'the window is 5 minutes');
    await svc.stop(); // the memory store's groups are flushed at a graceful shutdown
    const messages = sink
      .received('/slack')
      .map((r) => r.json() as { text: string; blocks: { text?: { text: string } }[] });
    assert.equal(messages.length, 1);
    assert.match(messages[0].text, /^50 × BackOff — shop\/payment \(/);
    const lines = messages[0].blocks[1].text!.text.split('\n');
    assert.equal(lines.length, 7, 'three first, "… and 44 more …", three last');
    assert.match(lines[0], /Pod shop\/payment-5c7d9b8f6-p\d{3}: Back-off restarting failed container in pod/);
    assert.equal(lines[3], '… and 44 more …');
  });

  it('a graceful shutdown that cannot deliver a group in time counts it as lost, by rule, and says so', async () => {
    sink.requests.length = 0;
    sink.always('/digest', 'hang');
    svc = await startService({
      rules: { 'digest.yaml': digestRules(sink.url, `{ key: ${PER_DEPLOYMENT}, window: 1h }`) },
      config: { deliveryAttempts: 1, deliveryDeadlineMs: 1000, deliveryTimeoutMs: 500, shutdownTimeoutMs: 1500 },
    });
    try {
      for (let i = 1; i <= 3; i++) assert.equal((await svc.post(crashLoop(i, 'ledger'))).status, 204);
    } finally {
      await svc.stop();
      sink.always('/digest', undefined);
    }
    assert.ok(sink.received('/digest').length >= 1, 'the shutdown tried to send it');
    const lost = (await svc.service.metrics.digestFlushes.get()).values.filter((v) => v.labels.outcome === 'lost');
    assert.deepEqual(
      lost.map((v) => [v.labels.rule, v.value]),
      [['crashloops', 1]],
    );
    assert.ok(
      svc.logs.some((l) =>
        String(l.msg).startsWith('shutdown: digest groups held in memory could not be flushed in time'),
      ),
    );
  });

  it('a rule at DIGEST_MAX_GROUPS answers a new key 429 (never 2xx unrecorded); its open groups still take occurrences', async () => {
    sink.requests.length = 0;
    svc = await startService({
      rules: { 'digest.yaml': digestRules(sink.url, `{ key: ${PER_DEPLOYMENT}, window: 1h }`) },
      config: { digest: { maxGroups: 2, flushAttempts: 10 } },
    });
    try {
      assert.equal((await svc.post(crashLoop(1, 'alpha'))).status, 204);
      assert.equal((await svc.post(crashLoop(1, 'beta'))).status, 204);
      const refused = await svc.post(crashLoop(1, 'gamma'));
      assert.equal(refused.status, 429);
      assert.equal(refused.headers.get('retry-after'), '3600');
      assert.equal((await svc.post(crashLoop(2, 'alpha'))).status, 204, 'an open group still records');
      assert.equal(await svc.metric('kube_event_rules_digest_occurrences_total', { outcome: 'over_capacity' }), 1);
    } finally {
      await svc.stop();
    }
    const sent = sink.received('/digest').map((r) => r.json() as { key: string; count: number });
    assert.deepEqual(sent.map((b) => [b.key, b.count]).sort(), [
      ['shop/alpha', 2],
      ['shop/beta', 1],
    ]);
  });
});
