/**
 * Red team: while the template workers are busy (TEMPLATE_QUEUE full — e.g. another rule's slow templates,
 * any team's), a digest key or a region key that is not on the template fast path (the documented
 * PER_DEPLOYMENT key uses $replace) throws TemplateQueueError. An action template in that state is a 503
 * (renderFailure: retryAfterMs, the Broker redelivers). Before the fix a digest key's or region key's was
 * outcome `error`: the event was answered 204 — the digest occurrence in no group, the region start (or end)
 * not recorded — acknowledged and lost, only because of load. Now each is a 429 with Retry-After.
 * Run: node --import tsx --test test/redteam/keys-under-load-2xx.test.ts
 */
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { startCaptureSink, type CaptureSink } from '../support/capture-sink.js';
import { PER_DEPLOYMENT, crashLoop } from '../support/digest-events.js';
import { withEvent } from '../support/fixtures.js';
import { startService, type RunningService } from '../support/running-service.js';

const LOOP = '($f := function($x){ $f($x + 1) }; $f(0))';
let sink: CaptureSink;
let svc: RunningService;
before(async () => {
  sink = await startCaptureSink();
  svc = await startService({
    rules: {
      'r.yaml': `
destinations:
  chat: { url: "${sink.url}/x" }
rules:
  - name: slow
    conditions: { all: [ { fact: event, path: $.reason, operator: equal, value: Slow } ] }
    actions: [ { destination: chat, body: '${LOOP}' } ]
  - name: digest
    conditions: { all: [ { fact: event, path: $.reason, operator: equal, value: BackOff } ] }
    digest: { key: ${PER_DEPLOYMENT}, window: 1h }
    actions: [ { destination: chat, body: '{ "n": $digest.count }' } ]
  - name: region
    region:
      key: ${PER_DEPLOYMENT}
      start: { all: [ { fact: event, path: $.reason, operator: equal, value: BackOff } ] }
      end: { all: [ { fact: event, path: $.reason, operator: equal, value: Started } ] }
      timeout: 1h
    actions: [ { destination: chat, body: '{ "r": $region.key }' } ]
`,
    },
    config: { templateWorkers: 1, templateQueue: 2, templateTimeoutMs: 500, deliveryDeadlineMs: 20_000 },
  });
});
after(async () => {
  await svc.stop();
  await sink.close();
});

it('a digest or region occurrence whose key could not be evaluated for load is not answered 204', async () => {
  // Fill the one worker and its queue with slow evaluations (each runs to its CPU budget).
  const slow = Array.from({ length: 4 }, (_, i) =>
    svc.post(withEvent(crashLoop(100 + i, `slow${i}`), (b) => (b.reason = 'Slow'))),
  );
  await new Promise((r) => setTimeout(r, 100));
  const answer = await svc.post(crashLoop(1));
  await Promise.all(slow);
  const recorded = await svc.metric('kube_event_rules_digest_occurrences_total', { outcome: 'recorded' });
  const open = await svc.metric('kube_event_rules_regions_open');
  console.log(
    `answer ${answer.status} ${answer.text}; digest occurrences recorded: ${recorded}; regions open: ${open}`,
  );
  // Control: the same kind of event once the workers are free is recorded in both.
  assert.equal((await svc.post(crashLoop(2, 'control'))).status, 204);
  assert.equal(
    await svc.metric('kube_event_rules_digest_occurrences_total', { outcome: 'recorded' }),
    recorded + 1,
    'control recorded',
  );
  assert.equal(await svc.metric('kube_event_rules_regions_open'), open + 1, 'control region opened');
  if (answer.status === 204) {
    // The workers were free after all (a slow machine): then both must have been recorded.
    assert.equal(recorded, 1, 'answered 204 although its digest occurrence was not recorded');
    assert.equal(open, 1, 'answered 204 although its region start was not recorded');
    return;
  }
  // Refused for load: each key on its own asks for a redelivery (one rule's regression is not hidden by the other's).
  assert.equal(answer.status, 429);
  assert.match(answer.text, /digest key: template workers busy/);
  assert.match(answer.text, /region\.key: template workers busy/);
  assert.equal(recorded, 0);
  assert.equal(open, 0);
});
