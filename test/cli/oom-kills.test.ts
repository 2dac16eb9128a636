/**
 * docs/examples/oom-kills.yaml does what the guide says: a container OOM kill is caught on the Pod's
 * BackOff through its status (from --objects manifests, no cluster), the node's OOMKilling separately.
 */
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { runTests } from '../../src/cli/test-rules.js';
import { EXAMPLES_DIR } from '../support/fixtures.js';

const RULES = new URL('../../docs/examples/oom-kills.yaml', import.meta.url).pathname;

/** A Pod with a sidecar first and the app second, the app's last run ended OOMKilled. */
const POD = `apiVersion: v1
kind: Pod
metadata: { name: payment-5c7d9b8f6-2m4rt, namespace: shop }
spec:
  containers:
  - { name: proxy, resources: { limits: { memory: 64Mi } } }
  - { name: payment, resources: { limits: { memory: 256Mi } } }
status:
  containerStatuses:
  - { name: proxy, restartCount: 0, lastState: {} }
  - name: payment
    restartCount: 4
    lastState: { terminated: { reason: OOMKilled, exitCode: 137 } }
`;

const NODE_OOM = {
  apiVersion: 'v1',
  kind: 'Event',
  count: 1,
  type: 'Warning',
  reason: 'OOMKilling',
  metadata: { name: 'node-1.oom', namespace: 'default', uid: 'node-oom-1' },
  involvedObject: { kind: 'Node', name: 'node-1', uid: 'node-1' },
  source: { component: 'kernel-monitor', host: 'node-1' },
  firstTimestamp: '2024-05-14T09:00:00Z',
  lastTimestamp: '2024-05-14T09:00:00Z',
  message: 'Memory cgroup out of memory: Killed process 4242 (java) total-vm:123kB, anon-rss:100kB',
};

describe('OOM kills (docs/examples/oom-kills.yaml)', () => {
  it("catches the container OOM kill on the Pod's BackOff, from its status; the node OOM separately", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ker-oom-'));
    await writeFile(join(dir, 'pod.yaml'), POD);
    await writeFile(join(dir, 'node-oom.json'), JSON.stringify(NODE_OOM));
    process.env.SLACK_WEBHOOK_URL = 'https://hooks.slack.com/services/T/B/X';
    const { problems, results } = await runTests(
      {
        rules: [RULES],
        secrets: [],
        objects: [join(dir, 'pod.yaml')],
        events: [join(EXAMPLES_DIR, 'pod-backoff-crashloop-resource-update.json'), join(dir, 'node-oom.json')],
        json: true,
        updateExpect: false,
      },
      async () => '',
    );
    assert.deepEqual(problems, []);
    const [backoff, node] = results;
    assert.ok('matched' in backoff && 'matched' in node);
    assert.deepEqual(backoff.matched, ['container-oom-killed']);
    assert.deepEqual(backoff.actions[0].request!.body, {
      text: ':boom: shop/payment-5c7d9b8f6-2m4rt: container payment was OOM-killed (memory limit 256Mi, restarted 4 times)',
    });
    assert.deepEqual(node.matched, ['node-oom-killing']);
  });

  it('without the Pod (no --objects, no cluster) the container rule cannot tell, and does not match', async () => {
    const { results } = await runTests(
      {
        rules: [RULES],
        secrets: [],
        events: [join(EXAMPLES_DIR, 'pod-backoff-crashloop-resource-update.json')],
        json: true,
        updateExpect: false,
      },
      async () => '',
    );
    assert.ok('matched' in results[0]);
    assert.deepEqual(results[0].matched, []);
  });
});
