/**
 * Red team: a region's start time is the Event's own lastTimestamp (hostile data) and its timeout is counted
 * from it (expiresAt = lastTimestamp + timeout). An Event stamped in year 2999 opens a region that no sweep
 * closes before 2999 (docs/security.md: "ends at its timeout (at most 24 h)"), holds a place of
 * REGION_MAX_OPEN / TEAM_MAX_OPEN_REGIONS for ever (with Redis: across restarts), and — first start wins,
 * an end "before the start" is unmatched — every real end of that key is refused, so the region rule's
 * deliveries for that key are gone. Through a cluster region rule (keyed by the involved object, as the
 * guide's Node example is), an Event any team creates in its own namespace does this to the platform.
 * Run: node --import tsx --test test/redteam/region-future-start.test.ts
 */
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { startCaptureSink, type CaptureSink } from '../support/capture-sink.js';
import { loadFixture, type EventFixture } from '../support/fixtures.js';
import { startService, type RunningService } from '../support/running-service.js';

const RULE = (sink: string) => `
destinations:
  sink: { url: "${sink}/region" }
rules:
  - name: backoff-region
    region:
      key: involvedObject.name
      start: { all: [ { fact: event, path: $.reason, operator: equal, value: BackOff } ] }
      end: { all: [ { fact: event, path: $.reason, operator: equal, value: Started } ] }
      timeout: 1s
    actions:
      - destination: sink
        body: '{ "by": $region.endedBy }'
`;

let n = 0;
function event(name: string, reason: string, at: number, namespace = 'aaa'): EventFixture {
  const fixture = loadFixture('deployment-scaling-replica-set-resource-add');
  const body = fixture.body as Record<string, any>;
  const time = new Date(at).toISOString().replace(/\.\d+Z$/, 'Z');
  body.metadata = { name: `${name}.${++n}`, namespace, uid: `uid-${n}` };
  body.involvedObject = { kind: 'Pod', name, namespace, uid: `pod-${name}` };
  Object.assign(body, { reason, message: reason, firstTimestamp: time, lastTimestamp: time, count: 1, type: 'Normal' });
  fixture.headers = { ...fixture.headers, 'ce-id': `ce-${n}`, 'ce-namespace': namespace };
  return fixture;
}

let sink: CaptureSink;
let svc: RunningService;
before(async () => {
  sink = await startCaptureSink();
  // REGION_MAX_OPEN small so the test is quick; the default 10,000 takes 10,000 Events.
  svc = await startService({
    rules: { 'r.yaml': RULE(sink.url) },
    config: { regions: { maxOpen: 5, maxOpenPerTeam: 1 } },
  });
});
after(async () => {
  await svc.stop();
  await sink.close();
});

it('a start stamped in 2999 is closed by its 1 s timeout like any other', async () => {
  assert.equal((await svc.post(event('web', 'BackOff', Date.parse('2999-01-01T00:00:00Z')))).status, 204);
  assert.equal(await svc.metric('kube_event_rules_regions_open'), 1);
  await new Promise((r) => setTimeout(r, 3000)); // three sweeps
  // The real pair: a start now (refused: "already open") and its end a second later.
  assert.equal((await svc.post(event('web', 'BackOff', Date.now()))).status, 204);
  assert.equal((await svc.post(event('web', 'Started', Date.now() + 1000))).status, 204);
  await new Promise((r) => setTimeout(r, 1500));
  const open = await svc.metric('kube_event_rules_regions_open');
  const unmatched = await svc.metric('kube_event_rules_region_unmatched_ends_total');
  console.log(`regions open: ${open}; unmatched ends: ${unmatched}; deliveries: ${sink.received('/region').length}`);
  assert.equal(open, 0, 'the forged region is still open after its 1 s timeout');
  assert.ok(sink.received('/region').length >= 1, 'nothing delivered for the real region: its end was refused');
});

it('Events a team creates in its own namespace cannot take every place of a cluster region rule for good', async () => {
  // The cluster rule's regions belong to no team: TEAM_MAX_OPEN_REGIONS does not apply, whoever made the Events.
  // As many as REGION_MAX_OPEN: were they kept open, no place would be left for prod (not even in test order).
  for (let i = 0; i < 5; i++)
    assert.equal(
      (await svc.post(event(`forged-${i}`, 'BackOff', Date.parse('2999-01-01T00:00:00Z'), 'aaa'))).status,
      204,
    );
  await new Promise((r) => setTimeout(r, 2500)); // their 1 s timeout, and two sweeps, are past
  const platform = await svc.post(event('checkout', 'BackOff', Date.now(), 'prod'));
  console.log(
    `regions open: ${await svc.metric('kube_event_rules_regions_open')}; a start in namespace prod is answered ${platform.status}`,
  );
  assert.equal(
    platform.status,
    204,
    "namespace prod's start refused: the places are held by aaa's Events stamped 2999",
  );
});
