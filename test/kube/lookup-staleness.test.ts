/**
 * What a lookup may remember (fake API server, real client): a discovery glitch (a 404 from an API server
 * starting, a group briefly unserved) is a failed lookup, never "this kind does not exist" for the cache's
 * TTL; a 404 of an object is remembered about a second, and a cached object whose uid is not the one the
 * Event refers to (the name reused by a recreated Pod) is read again.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadConfig } from '../../src/config.js';
import { startCaptureSink, type CaptureSink } from '../support/capture-sink.js';
import { startFakeKubeApi, type FakeKubeApi } from '../support/fake-kube-api.js';
import { loadFixture, withEvent } from '../support/fixtures.js';
import { connectionTo } from '../support/kube-fixtures.js';
import { startService, type RunningService } from '../support/running-service.js';
import { KindDiscovery } from '../../src/kube/kind-discovery.js';
import { abortingConfiguration } from '../../src/kube/aborting-configuration.js';

const rules = (sinkUrl: string) => `
destinations:
  hook: { url: "${sinkUrl}/hook" }
rules:
  - name: scheduled
    conditions:
      all:
        - { fact: event, path: $.reason, operator: equal, value: BackOff }
        - { fact: object, path: $.spec.nodeName, operator: startsWith, value: node- }
    actions: [ { destination: hook, body: '{ "name": involvedObject.name, "node": $object.spec.nodeName }' } ]
`;

let n = 0;
const eventAbout = (involved: { name: string; apiVersion?: string; kind?: string; uid?: string }) =>
  withEvent(loadFixture('pod-backoff-crashloop-resource-update'), (body, headers) => {
    body.metadata.uid = `ev-${++n}`;
    body.involvedObject = { apiVersion: 'v1', kind: 'Pod', namespace: 'shop', ...involved };
    headers['ce-id'] = `ce-${n}`;
    headers['ce-type'] = 'dev.knative.apiserver.resource.add';
  });

describe('lookup staleness', () => {
  let fake: FakeKubeApi;
  let sink: CaptureSink;
  let svc: RunningService;
  const kube = { ...loadConfig({}).kube, rulesSelector: '', timeoutMs: 500, requestsPerSecond: 1000, burst: 1000 };
  before(async () => {
    fake = await startFakeKubeApi();
    sink = await startCaptureSink();
    fake.apply({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'web-1', namespace: 'shop', uid: 'web-1-uid' },
      spec: { nodeName: 'node-1' },
    });
    fake.apply({
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: 'api', namespace: 'shop', uid: 'api-uid' },
      spec: { nodeName: 'node-9' },
    });
    // Default cache (KUBE_CACHE_SECONDS = 60): what is remembered is what is under test.
    svc = await startService({ rules: { 'r.yaml': rules(sink.url) }, kube: connectionTo(fake), config: { kube } });
  });
  after(async () => {
    await svc.stop();
    await sink.close();
    await fake.close();
  });
  const delivered = (name: string) =>
    sink.received('/hook').filter((r) => (r.json() as { name: string }).name === name);

  it('a discovery 404 of the core v1 (never listed yet) is 503, and the Pod is found on the redelivery', async () => {
    fake.fail('GET', /^\/api\/v1$/, 404, 1);
    const during = await svc.post(eventAbout({ name: 'web-1' }));
    assert.equal(during.status, 503, 'a failed discovery was taken for "no such kind" and answered 204');
    const again = await svc.post(eventAbout({ name: 'web-1' }));
    assert.equal(again.status, 204, again.text);
    assert.equal(delivered('web-1').length, 1);
  });

  it('a discovery 404 of a group version the API server lists is 503; a made-up apiVersion stays absent (204)', async () => {
    fake.fail('GET', /^\/apis\/apps\/v1$/, 404, 1);
    assert.equal((await svc.post(eventAbout({ name: 'api', apiVersion: 'apps/v1', kind: 'Deployment' }))).status, 503);
    const found = await svc.metric('kube_event_rules_kube_requests_total', { kind: 'Deployment', outcome: 'found' });
    assert.equal((await svc.post(eventAbout({ name: 'api', apiVersion: 'apps/v1', kind: 'Deployment' }))).status, 204);
    assert.equal(
      await svc.metric('kube_event_rules_kube_requests_total', { kind: 'Deployment', outcome: 'found' }),
      found + 1,
      'the redelivery read the Deployment',
    );
    assert.equal(
      (await svc.post(eventAbout({ name: 'x', apiVersion: 'made.up.example/v1', kind: 'Thing' }))).status,
      204,
    );
    assert.equal(delivered('x').length, 0);
  });

  it('a Pod recreated under its name is found a second after a 404 (not absent for the cache TTL)', async () => {
    const gap = await svc.post(eventAbout({ name: 'web-0', uid: 'old-uid' }));
    assert.equal(gap.status, 204, 'the old web-0 is gone: absent');
    fake.apply({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'web-0', namespace: 'shop', uid: 'new-uid' },
      spec: { nodeName: 'node-3' },
    });
    await sleep(1200);
    const answer = await svc.post(eventAbout({ name: 'web-0', uid: 'new-uid' }));
    assert.equal(answer.status, 204, answer.text);
    assert.equal(delivered('web-0').length, 1, 'the recreated Pod matches: answered 204 and nothing sent');
  });

  it('a cached object of another uid is read again', async () => {
    fake.apply({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'db-0', namespace: 'shop', uid: 'db-old' },
      spec: { nodeName: 'none' },
    });
    assert.equal((await svc.post(eventAbout({ name: 'db-0', uid: 'db-old' }))).status, 204);
    assert.equal(delivered('db-0').length, 0, 'not scheduled on a node-: no match');
    fake.apply({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: { name: 'db-0', namespace: 'shop', uid: 'db-new' },
      spec: { nodeName: 'node-4' },
    });
    const reads = fake.count('GET', /\/pods\/db-0$/);
    assert.equal((await svc.post(eventAbout({ name: 'db-0', uid: 'db-old' }))).status, 204);
    assert.equal(fake.count('GET', /\/pods\/db-0$/), reads, 'same uid: served from the cache');
    assert.equal((await svc.post(eventAbout({ name: 'db-0', uid: 'db-new' }))).status, 204);
    assert.equal(
      fake.count('GET', /\/pods\/db-0$/),
      reads,
      'read within the last second: not read again (event data names any uid)',
    );
    await sleep(1100);
    assert.equal((await svc.post(eventAbout({ name: 'db-0', uid: 'db-new' }))).status, 204);
    assert.deepEqual(
      delivered('db-0').map((r) => (r.json() as { node: string }).node),
      ['node-4'],
      'the old cached Pod stood in for the new one',
    );
  });
});

describe('kind discovery', () => {
  it('never makes a kind it saw served absent: a 404 of its apiVersion, or a listing without it, is unavailable', async () => {
    const fake = await startFakeKubeApi();
    try {
      // TTL 1 ms: listed every time.
      const listings = new KindDiscovery(abortingConfiguration(fake.kubeConfig(), 500), 1, () => true);
      const discovery = {
        find: async (apiVersion: string, kind: string) => (await sleep(5), listings.find(apiVersion, kind)),
      };
      assert.deepEqual(await discovery.find('apps/v1', 'Deployment'), { status: 'known', namespaced: true });
      fake.fail('GET', /^\/apis\/apps\/v1$/, 404, 1);
      fake.fail('GET', /^\/apis$/, 404, 1); // the group list cannot vouch for it either: what was served decides
      assert.equal((await discovery.find('apps/v1', 'Deployment')).status, 'unavailable');
      assert.deepEqual(await discovery.find('apps/v1', 'Deployment'), { status: 'known', namespaced: true });
      fake.fail('GET', /^\/apis\/apps\/v1$/, 200, 1); // a body that lists nothing
      assert.equal((await discovery.find('apps/v1', 'Deployment')).status, 'unavailable');
      assert.equal((await discovery.find('apps/v1', 'NoSuchKind')).status, 'unknown');
      assert.equal((await discovery.find('made.up.example/v1', 'Thing')).status, 'unknown');
    } finally {
      await fake.close();
    }
  });
});
