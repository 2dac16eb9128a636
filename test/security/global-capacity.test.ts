/**
 * MAX_ACTIONS_IN_FLIGHT was one pool for the whole process: a team's rules (within every quota) to a
 * destination of its own that answers slowly held it, and every other namespace's events were answered 429.
 * Each team namespace now has its own share (TEAM_MAX_ACTIONS_IN_FLIGHT) and half the pool is kept for
 * cluster rules; only the namespace over its share is refused. Scaled down: MAX_ACTIONS_IN_FLIGHT=100.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../src/config.js';
import { startCaptureSink, type CaptureSink } from '../support/capture-sink.js';
import { startFakeKubeApi, type FakeKubeApi } from '../support/fake-kube-api.js';
import { loadFixture, withEvent } from '../support/fixtures.js';
import { connectionTo, ruleConfigMap, waitUntil } from '../support/kube-fixtures.js';
import { startService, type RunningService } from '../support/running-service.js';

let n = 0;
const backoff = (namespace: string) =>
  withEvent(loadFixture('pod-backoff-crashloop-resource-update'), (body, headers) => {
    n++;
    body.metadata.uid = `backoff-${n}`;
    body.metadata.namespace = namespace;
    body.involvedObject.namespace = namespace;
    headers['ce-id'] = `ce-b-${n}`;
  });

describe('one team cannot hold the action capacity of the others', () => {
  let fake: FakeKubeApi;
  let sink: CaptureSink;
  let svc: RunningService;
  before(async () => {
    fake = await startFakeKubeApi();
    sink = await startCaptureSink();
    const platform = `
destinations:
  hook: { url: ${sink.url}/platform }
rules:
  - name: platform-backoff
    conditions: { all: [ { fact: event, path: $.reason, operator: equal, value: BackOff } ] }
    actions: [ { destination: hook } ]
`;
    svc = await startService({
      rules: { 'platform.yaml': platform },
      kube: connectionTo(fake),
      config: {
        kube: { ...loadConfig({}).kube, relistAfterMs: 60_000 },
        maxActionsInFlight: 100,
        teamMaxActionsInFlight: 40,
      },
    });
    // 8 rules x 5 actions: 40 actions per event, exactly its share, so a second event of it is over.
    const dests = Array.from({ length: 40 }, (_, i) => `  d${i}: { url: ${sink.url}/slow }`).join('\n');
    const rules = Array.from(
      { length: 8 },
      (_, r) => `  - name: r${r}
    conditions: { all: [ { fact: event, path: $.reason, operator: equal, value: BackOff } ] }
    actions: [${[0, 1, 2, 3, 4].map((a) => `{ destination: d${r * 5 + a} }`).join(', ')}]`,
    ).join('\n');
    fake.apply(ruleConfigMap('aaa', 'hog', { 'r.yaml': `destinations:\n${dests}\nrules:\n${rules}\n` }));
    await waitUntil(
      'loaded',
      () => svc.service.store.current.rules.filter((r) => r.scope === 'aaa').length === 8,
      10_000,
    );
  });
  after(async () => {
    sink.release('/slow');
    await svc.stop();
    await sink.close();
    await fake.close();
  });

  it('while one event of aaa hangs, another of aaa is refused and team-b and the platform are served', async () => {
    sink.respond('/slow', ...Array(300).fill('hang'));
    const hog = svc.post(backoff('aaa'));
    await waitUntil('aaa holds its share', () => sink.received('/slow').length >= 40, 5000);
    const second = await svc.post(backoff('aaa'));
    const victim = await svc.post(backoff('team-b'));
    sink.release('/slow');
    await hog;
    assert.equal(second.status, 429, `aaa's second event: ${second.status} ${second.text}`);
    assert.match(
      second.text,
      /namespace aaa: 40 of its rules' actions in flight; 40 more would pass TEAM_MAX_ACTIONS_IN_FLIGHT \(40\)/,
    );
    assert.equal(victim.status, 204, `team-b's event: ${victim.status} ${victim.text}`);
    assert.equal(
      sink.received('/platform').length,
      2,
      "the platform rule delivered for aaa's first event and for team-b",
    );
  });
});
