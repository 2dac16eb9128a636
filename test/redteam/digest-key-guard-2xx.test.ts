/**
 * Red team: a template guard trip (CPU budget, heap, output size) is "a 503, then quarantine" for every
 * action template (pipeline render(): "so the Broker redelivers … instead of the event being acknowledged
 * unsent"). Before the fix, a digest rule's key took another path: digest-recorder.ts turned any non-lookup
 * error of the key — a guard trip included — into outcome `error`, and the event was answered 204 with its
 * occurrence in no group: acknowledged, never delivered, though nothing about the event made that permanent.
 * Now it is a 503 like an action template's. (Key guard trips still do not count towards quarantine:
 * docs/security.md lists it as left.)
 * Run: node --import tsx --test test/redteam/digest-key-guard-2xx.test.ts
 */
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { startCaptureSink, type CaptureSink } from '../support/capture-sink.js';
import { crashLoop } from '../support/digest-events.js';
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
  - name: body-loop
    conditions: { all: [ { fact: event, path: $.reason, operator: equal, value: BodyLoop } ] }
    actions: [ { destination: chat, body: '${LOOP}' } ]
  - name: digest-key-loop
    conditions: { all: [ { fact: event, path: $.reason, operator: equal, value: BackOff } ] }
    digest: { key: '${LOOP}', window: 1s }
    actions: [ { destination: chat, body: '{ "n": $digest.count }' } ]
`,
    },
    config: { deliveryDeadlineMs: 20_000 },
  });
});
after(async () => {
  await svc.stop();
  await sink.close();
});

it('a guard trip of a digest key is answered like one of an action template: not 2xx', async () => {
  const body = await svc.post(withEvent(crashLoop(1), (b) => (b.reason = 'BodyLoop')));
  const digest = await svc.post(crashLoop(2));
  console.log(`action template guard trip: ${body.status}; digest key guard trip: ${digest.status} ${digest.text}`);
  assert.equal(body.status, 503);
  assert.equal(digest.status, 503, 'the occurrence must be redelivered, not acknowledged in no digest group');
  assert.match(digest.text, /digest key: CPU/);
});
