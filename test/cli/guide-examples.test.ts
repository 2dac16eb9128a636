/**
 * The worked examples of docs/rule-authoring.md (docs/examples/beyond-hpa.yaml) do what the guide says,
 * on events shaped like the ones Kubernetes writes.
 */
import assert from 'node:assert/strict';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { runTests, type TestResult } from '../../src/cli/test-rules.js';
import { loadFixture } from '../support/fixtures.js';

const RULES = new URL('../../docs/examples/beyond-hpa.yaml', import.meta.url).pathname;

const base = {
  apiVersion: 'v1',
  kind: 'Event',
  count: 1,
  firstTimestamp: '2024-05-14T09:00:00Z',
  lastTimestamp: '2024-05-14T09:00:00Z',
};
const EVENTS: Record<string, object> = {
  oom: {
    ...base,
    metadata: { uid: 'oom', namespace: 'default' },
    reason: 'OOMKilling',
    type: 'Warning',
    source: { component: 'kernel-monitor', host: 'node-1' },
    involvedObject: { kind: 'Node', name: 'node-1', uid: 'node-1' },
    message:
      'Memory cgroup out of memory: Killed process 4242 (java) total-vm:123kB, anon-rss:100kB, file-rss:0kB, shmem-rss:0kB, UID:0 pgtables:1kB oom_score_adj:0',
  },
  evicted: {
    ...base,
    metadata: { uid: 'ev', namespace: 'shop' },
    reason: 'Evicted',
    type: 'Warning',
    source: { component: 'kubelet', host: 'node-2' },
    involvedObject: { kind: 'Pod', namespace: 'shop', name: 'web-1' },
    message: 'The node was low on resource: memory.',
  },
  notReady: {
    ...base,
    metadata: { uid: 'nr', namespace: 'default' },
    reason: 'NodeNotReady',
    type: 'Normal',
    source: { component: 'node-controller' },
    involvedObject: { kind: 'Node', name: 'node-3' },
    message: 'Node node-3 status is now: NodeNotReady',
  },
  mount: {
    ...base,
    metadata: { uid: 'fm', namespace: 'shop' },
    reason: 'FailedMount',
    type: 'Warning',
    source: { component: 'kubelet' },
    involvedObject: { kind: 'Pod', namespace: 'shop', name: 'web-2' },
    message: 'MountVolume.SetUp failed for volume "cfg" : configmap "cfg" not found',
  },
};

async function evaluate(events: object[]): Promise<TestResult[]> {
  const dir = mkdtempSync(join(tmpdir(), 'ker-guide-'));
  const file = join(dir, 'events.json');
  writeFileSync(file, JSON.stringify(events));
  Object.assign(process.env, {
    SLACK_WEBHOOK_URL: 'https://hooks.slack.com/services/T/B/X',
    GRAFANA_ANNOTATIONS_URL: 'https://grafana.example.com/api/annotations',
    GRAFANA_TOKEN: 't',
  });
  const { problems, results } = await runTests(
    { rules: [RULES], secrets: [], events: [file], json: true, updateExpect: false },
    async () => '',
  );
  assert.deepEqual(problems, []);
  return results;
}

const bodies = (result: TestResult) =>
  'actions' in result ? result.actions.map((a) => [a.rule, a.request?.body]) : [];

describe('rule authoring guide examples', () => {
  it('each example fires on its event with the payload the guide shows', async () => {
    const [oom, evicted, notReady, mount, backoff] = await evaluate([
      EVENTS.oom,
      EVENTS.evicted,
      EVENTS.notReady,
      EVENTS.mount,
      loadFixture('pod-backoff-crashloop-resource-update').body as object,
    ]);
    assert.deepEqual(bodies(oom), [
      [
        'oomkill-grafana',
        {
          time: Date.parse('2024-05-14T09:00:00Z'),
          text: 'OOM kill on node node-1: 4242 (java)',
          tags: ['k8s', 'oom', 'node-1'],
        },
      ],
    ]);
    const [[rule, page]] = bodies(evicted) as [string, Record<string, any>][];
    assert.equal(rule, 'eviction-pagerduty');
    assert.equal(page.dedup_key, 'ev/1');
    assert.equal(page.payload.source, 'node-2');
    assert.deepEqual(bodies(notReady), [
      [
        'node-not-ready-grafana',
        {
          time: Date.parse('2024-05-14T09:00:00Z'),
          text: 'Node node-3 status is now: NodeNotReady',
          tags: ['k8s', 'node', 'node-3'],
        },
      ],
    ]);
    assert.deepEqual(bodies(mount), [], 'FailedMount needs the namespace fact (tier=prod), null without a cluster');
    assert.deepEqual(
      bodies(backoff).map(([r]) => r),
      ['crashloop-slack'],
    );
  });
});
