/**
 * Red team: POST // reaches the events route through the router (the hot-path dispatch matches only "/"), is
 * processed exactly like POST / — but a bad request there is answered 400 and never counted in
 * kube_event_rules_events_received_total{outcome="invalid"} (the error middleware counts path "/" only).
 * "Every bad input gets a precise message and a counted metric."
 * Run: node --import tsx --test test/redteam/double-slash-uncounted.test.ts
 */
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { crashLoop } from '../support/digest-events.js';
import { bodyOf } from '../support/fixtures.js';
import { startService, type RunningService } from '../support/running-service.js';

let svc: RunningService;
before(async () => {
  svc = await startService({ rules: {} });
});
after(() => svc.stop());

it('an invalid event POSTed to // is counted like one POSTed to /', async () => {
  const invalid = async (path: string) => {
    const event = crashLoop(1);
    const response = await fetch(`${svc.url}${path}`, {
      method: 'POST',
      headers: event.headers,
      body: bodyOf(event).slice(0, -3),
    });
    return response.status;
  };
  const counted = () => svc.metric('kube_event_rules_events_received_total', { outcome: 'invalid' });
  const valid = crashLoop(2);
  assert.equal(
    (await fetch(`${svc.url}//`, { method: 'POST', headers: valid.headers, body: bodyOf(valid) })).status,
    204,
    'POST // is processed as POST /',
  );
  const start = await counted();
  assert.equal(await invalid('/'), 400);
  assert.equal(await counted(), start + 1, 'POST / counted');
  assert.equal(await invalid('//'), 400);
  assert.equal(await counted(), start + 2, 'the invalid POST // was not counted');
});
