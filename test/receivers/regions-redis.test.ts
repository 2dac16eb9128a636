/**
 * Change regions in Redis (Debian's redis-server): a region started on one replica is closed after a
 * restart or by another replica, the same end reaching two replicas at once is delivered once, a timeout
 * is delivered once by replicas that all sweep, and a start Redis cannot record is answered 503.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { redisBehindSink } from '../support/redis-behind-sink.js';
import { loadFixture, withEvent } from '../support/fixtures.js';
import { needs } from '../support/needs.js';
import { startService } from '../support/running-service.js';

const rules = (sinkUrl: string) => ({
  'regions.yaml': `
destinations:
  grafana: { url: "${sinkUrl}/grafana" }
  wavefront: { url: "${sinkUrl}/wavefront" }
rules:
  - name: node-ready
    region:
      key: involvedObject.name
      start: { all: [ { fact: event, path: $.reason, operator: equal, value: NodeNotReady } ] }
      end: { all: [ { fact: event, path: $.reason, operator: equal, value: NodeReady } ] }
      timeout: 3s
    actions:
      - { destination: grafana, preset: grafana-annotation }
      - { destination: wavefront, preset: wavefront-event }
`,
});

let uid = 0;
const nodeEvent = (node: string, reason: 'NodeNotReady' | 'NodeReady', at: number) =>
  withEvent(loadFixture('deployment-scaling-replica-set-resource-add'), (body, headers) => {
    const time = new Date(at).toISOString().replace(/\.\d+Z$/, 'Z');
    body.metadata = { name: `${node}.${++uid}`, namespace: 'default', uid: `${node}-${reason}-${at}` };
    body.involvedObject = { kind: 'Node', name: node, uid: node };
    Object.assign(body, {
      reason,
      message: `Node ${node} status is now: ${reason}`,
      firstTimestamp: time,
      lastTimestamp: time,
      count: 1,
    });
    headers['ce-id'] = `${node}-${reason}-${at}`;
    headers['ce-namespace'] = 'default';
  });

const second = (ms: number) => Math.floor(ms / 1000) * 1000;

async function waitUntil(what: string, condition: () => boolean, timeoutMs = 15_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > end) throw new Error(`waited ${timeoutMs} ms for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('change regions in Redis', { skip: needs('redis-server') }, () => {
  const setup = redisBehindSink();
  const replica = () => startService({ rules: rules(setup.sink.url), config: { redisUrl: setup.redis.url } });
  const sentFor = (path: string, node: string) =>
    setup.sink.received(path).filter((r) => JSON.stringify(r.json()).includes(`Node ${node}`));

  it('a region started before a restart completes after it, once, with both times', async () => {
    const started = second(Date.now()) - 1000; // region timeout 3s: the end comes well before the sweep
    const first = await replica();
    try {
      assert.equal((await first.post(nodeEvent('n1', 'NodeNotReady', started))).status, 204);
    } finally {
      await first.stop();
    }
    const second_ = await replica();
    try {
      assert.equal(await second_.metric('kube_event_rules_regions_open'), 1, 'the region is in Redis');
      assert.equal((await second_.post(nodeEvent('n1', 'NodeReady', started + 1000))).status, 204);
      const [annotation] = sentFor('/grafana', 'n1');
      assert.equal(sentFor('/grafana', 'n1').length, 1);
      assert.deepEqual(
        [(annotation.json() as any).time, (annotation.json() as any).timeEnd],
        [started, started + 1000],
      );
      const [event] = sentFor('/wavefront', 'n1');
      assert.equal(sentFor('/wavefront', 'n1').length, 1);
      assert.deepEqual([(event.json() as any).startTime, (event.json() as any).endTime], [started, started + 1000]);
      assert.equal(await second_.metric('kube_event_rules_regions_open'), 0);
    } finally {
      await second_.stop();
    }
  });

  it('the same end reaching two replicas at once is delivered once; the other answer asks for a redelivery or is 2xx', async () => {
    const [a, b] = await Promise.all([replica(), replica()]);
    try {
      for (const [i, node] of ['n2', 'n3', 'n4', 'n5'].entries()) {
        // Should a sweep reach it first (a loaded machine), its claim still makes it one delivery.
        const at = second(Date.now()) - 1000 + i;
        assert.equal((await a.post(nodeEvent(node, 'NodeNotReady', at))).status, 204);
        const end = nodeEvent(node, 'NodeReady', at + 500);
        const answers = await Promise.all([a.post(end), b.post(end)]);
        for (const [replicaIndex, answer] of answers.entries()) {
          // A non-2xx answer is redelivered by the Broker: do so until it is answered 2xx.
          let status = answer.status;
          for (let attempt = 0; status !== 204 && attempt < 20; attempt++) {
            assert.ok([429, 503].includes(status), `answered ${status}`);
            await new Promise((r) => setTimeout(r, 100));
            status = (await [a, b][replicaIndex].post(end)).status;
          }
          assert.equal(status, 204);
        }
        await new Promise((r) => setTimeout(r, 50));
        assert.equal(sentFor('/grafana', node).length, 1, `${node}: one Grafana annotation`);
        assert.equal(sentFor('/wavefront', node).length, 1, `${node}: one Wavefront event`);
      }
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }
  });

  it('a region whose end never comes is delivered once by replicas that all sweep, and after a restart', async () => {
    const [a, b] = await Promise.all([replica(), replica()]);
    const at = second(Date.now());
    try {
      assert.equal((await a.post(nodeEvent('n6', 'NodeNotReady', at))).status, 204);
      await waitUntil('the timeout of n6', () => sentFor('/grafana', 'n6').length > 0);
      await new Promise((r) => setTimeout(r, 2500)); // more sweeps on both replicas
      assert.equal(sentFor('/grafana', 'n6').length, 1);
      assert.equal(sentFor('/wavefront', 'n6').length, 1);
      const body = sentFor('/grafana', 'n6')[0].json() as any;
      assert.deepEqual([body.time, body.timeEnd], [at, at + 3000]);
      assert.match(body.text, /NodeNotReady → no end within the timeout/);
      assert.equal(
        (await a.metric('kube_event_rules_regions_closed_total', { how: 'timeout' })) +
          (await b.metric('kube_event_rules_regions_closed_total', { how: 'timeout' })),
        1,
      );
    } finally {
      await Promise.all([a.stop(), b.stop()]);
    }

    // Started, then every replica gone before the timeout: the next one to start closes it.
    const started = second(Date.now());
    const first = await replica();
    assert.equal((await first.post(nodeEvent('n7', 'NodeNotReady', started))).status, 204);
    await first.stop();
    const next = await replica();
    try {
      await waitUntil('the timeout of n7', () => sentFor('/wavefront', 'n7').length > 0);
      const event = sentFor('/wavefront', 'n7')[0].json() as any;
      assert.deepEqual(
        [event.startTime, event.endTime, event.annotations.endedBy],
        [started, started + 3000, 'timeout'],
      );
    } finally {
      await next.stop();
    }
  });

  it('a start Redis cannot record is answered 503 (not acknowledged)', async () => {
    const svc = await replica();
    try {
      setup.redis.pause();
      const answer = await svc.post(nodeEvent('n8', 'NodeNotReady', second(Date.now())));
      assert.equal(answer.status, 503);
      assert.match(answer.text, /region start not recorded/);
    } finally {
      setup.redis.resume();
      await svc.stop();
    }
  });
});
