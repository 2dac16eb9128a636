/**
 * Digests with Redis (a real redis-server on 127.0.0.1): an occurrence Redis cannot record is answered 503;
 * replicas share their groups, so 50 events spread over two replicas are still one delivery with count 50,
 * flushed by exactly one replica; a replica killed with SIGKILL — while its group is open, or in the middle
 * of flushing it — loses nothing: the other replica (or the restarted one) flushes the group, once. Each
 * test has a Deployment of its own: Redis remembers recorded occurrences (DEDUP_WINDOW_SECONDS) from one
 * test to the next.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { PER_DEPLOYMENT, crashLoop, digestRules, waitUntil } from '../support/digest-events.js';
import { bodyOf, type EventFixture } from '../support/fixtures.js';
import { redisBehindSink } from '../support/redis-behind-sink.js';
import { needs } from '../support/needs.js';
import { closedPort } from '../support/ports.js';
import { startService, type RunningService } from '../support/running-service.js';

/** A replica as its own process (`serve`) with these rules, so it can be killed with SIGKILL. */
async function startReplicaProcess(
  rules: string,
  redisUrl: string,
  env: Record<string, string> = {},
): Promise<{ url: string; child: ChildProcess; post(f: EventFixture): Promise<number>; kill(): Promise<void> }> {
  const rulesDir = mkdtempSync(join(tmpdir(), 'digest-replica-'));
  writeFileSync(join(rulesDir, 'digest.yaml'), rules);
  const port = await closedPort();
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', 'serve'], {
    env: {
      ...process.env,
      PORT: String(port),
      HOST: '127.0.0.1',
      RULES_DIR: rulesDir,
      REDIS_URL: redisUrl,
      LOG_LEVEL: process.env.REPLICA_LOG ?? 'warn',
      DELIVERY_ATTEMPTS: '1',
      DELIVERY_DEADLINE_SECONDS: '1',
      DELIVERY_TIMEOUT_SECONDS: '0.5',
      ...env,
    },
    stdio: ['ignore', process.env.REPLICA_LOG ? 'inherit' : 'ignore', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  await waitUntil(
    'the replica to be ready',
    () =>
      fetch(`${url}/readyz`).then(
        (r) => r.ok,
        () => false,
      ),
    30_000,
  );
  return {
    url,
    child,
    post: (f) => fetch(`${url}/`, { method: 'POST', headers: f.headers, body: bodyOf(f) }).then((r) => r.status),
    async kill() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGKILL');
        await exited;
      }
      rmSync(rulesDir, { recursive: true, force: true });
    },
  };
}

describe('digests shared through Redis', { skip: needs('redis-server') }, () => {
  const infra = redisBehindSink();

  const replica = (digest: string) =>
    startService({
      rules: { 'digest.yaml': digestRules(infra.sink.url, digest) },
      config: { redisUrl: infra.redis.url, deliveryAttempts: 1, deliveryDeadlineMs: 1000, deliveryTimeoutMs: 500 },
    });
  const openGroups = (svc: RunningService) => svc.metric('kube_event_rules_digest_groups_open');

  it('a Redis that does not answer: the occurrence is answered 503, never 2xx unrecorded; its redelivery counts it', async () => {
    infra.sink.requests.length = 0;
    const svc = await replica(`{ key: ${PER_DEPLOYMENT}, window: 2s }`);
    try {
      infra.redis.pause(); // stalled: connected, answering nothing
      let status: number;
      try {
        status = (await svc.post(crashLoop(1, 'payroll'))).status;
      } finally {
        infra.redis.resume();
      }
      assert.equal(status, 503);
      assert.equal(await svc.metric('kube_event_rules_digest_occurrences_total', { outcome: 'failed' }), 1);
      // The Broker redelivers until Redis is back (skipped until a background PING answers).
      await waitUntil(
        'the redelivery to be recorded',
        async () => (await svc.post(crashLoop(1, 'payroll'))).status === 204,
      );
      const [delivery] = await infra.sink.waitFor('/digest', 1, 15_000);
      assert.deepEqual([(delivery.json() as any).key, (delivery.json() as any).count], ['shop/payroll', 1]);
    } finally {
      await svc.stop();
    }
  });

  it('50 events spread over two replicas are one delivery with count 50, flushed by one replica', async () => {
    infra.sink.requests.length = 0;
    const replicas = [
      await replica(`{ key: ${PER_DEPLOYMENT}, window: 3s }`),
      await replica(`{ key: ${PER_DEPLOYMENT}, window: 3s }`),
    ];
    try {
      const statuses = await Promise.all(
        Array.from({ length: 50 }, (_, i) => replicas[i % 2].post(crashLoop(i + 1)).then((r) => r.status)),
      );
      assert.deepEqual(new Set(statuses), new Set([204]));
      // Redeliveries of five of them, each to the other replica: recorded already, counted once.
      const again = await Promise.all(
        Array.from({ length: 5 }, (_, i) => replicas[(i + 1) % 2].post(crashLoop(i + 1)).then((r) => r.status)),
      );
      assert.deepEqual(new Set(again), new Set([204]));
      assert.equal(await openGroups(replicas[0]), 1, 'one group, seen by both replicas');
      const [delivery] = await infra.sink.waitFor('/digest', 1, 15_000);
      assert.equal((delivery.json() as any).count, 50);
      await waitUntil(
        'the group to be completed',
        async () => (await openGroups(replicas[0])) === 0 && (await openGroups(replicas[1])) === 0,
      );
      assert.equal(infra.sink.received('/digest').length, 1, 'exactly one replica flushed it');
      const flushed = await Promise.all(
        replicas.map((r) => r.metric('kube_event_rules_digest_flushes_total', { outcome: 'delivered' })),
      );
      assert.deepEqual(flushed.sort(), [0, 1]);
      const duplicates = await Promise.all(
        replicas.map((r) => r.metric('kube_event_rules_digest_occurrences_total', { outcome: 'duplicate' })),
      );
      assert.equal(duplicates[0] + duplicates[1], 5);
    } finally {
      for (const r of replicas) await r.stop();
    }
  });

  it(
    'kill -9 of the replica that recorded an open group loses nothing: the other replica flushes it',
    { timeout: 90_000 },
    async () => {
      infra.sink.requests.length = 0;
      const digest = `{ key: ${PER_DEPLOYMENT}, window: 3s }`;
      const survivor = await replica(digest);
      const doomed = await startReplicaProcess(digestRules(infra.sink.url, digest), infra.redis.url);
      try {
        const statuses = await Promise.all(
          Array.from({ length: 50 }, (_, i) =>
            i % 5 === 0
              ? survivor.post(crashLoop(i + 1, 'orders')).then((r) => r.status)
              : doomed.post(crashLoop(i + 1, 'orders')),
          ),
        );
        assert.deepEqual(new Set(statuses), new Set([204]));
        await doomed.kill(); // the group is open: its window has seconds to run
        assert.equal(infra.sink.received('/digest').length, 0);
        const [delivery] = await infra.sink.waitFor('/digest', 1, 15_000);
        assert.equal((delivery.json() as any).count, 50);
        await waitUntil('the group to be completed', async () => (await openGroups(survivor)) === 0);
        assert.equal(infra.sink.received('/digest').length, 1);
      } finally {
        await survivor.stop();
        await doomed.kill();
      }
    },
  );

  it(
    'kill -9 in the middle of a flush loses nothing: the restarted replica flushes the group when the claim ends, once',
    { timeout: 90_000 },
    async () => {
      infra.sink.requests.length = 0;
      const rules = digestRules(infra.sink.url, `{ key: ${PER_DEPLOYMENT}, window: 1s }`);
      // Attempts of 3 s: the kill comes while the flush waits for the destination, holding its claim (3 + 5 s).
      const slow = { DELIVERY_TIMEOUT_SECONDS: '3', DELIVERY_DEADLINE_SECONDS: '3' };
      let replicaProcess = await startReplicaProcess(rules, infra.redis.url, slow);
      try {
        infra.sink.respond('/digest', 'hang'); // the flush reaches the destination, which does not answer
        const statuses = await Promise.all(
          Array.from({ length: 50 }, (_, i) => replicaProcess.post(crashLoop(i + 1, 'billing'))),
        );
        assert.deepEqual(new Set(statuses), new Set([204]));
        await infra.sink.waitFor('/digest', 1, 15_000);
        await replicaProcess.kill(); // holding the claim, mid-delivery
        infra.sink.release('/digest', 503); // the hung request gets an answer nobody reads
        replicaProcess = await startReplicaProcess(rules, infra.redis.url, slow);
        const requests = await infra.sink.waitFor('/digest', 2, 30_000);
        assert.equal((requests[1].json() as any).count, 50);
        await waitUntil('the group to be completed', async () => (await sampleGroups(replicaProcess.url)) === 0);
        assert.equal(infra.sink.received('/digest').length, 2, 'the first, unanswered, attempt and one delivery');
      } finally {
        await replicaProcess.kill();
      }
    },
  );
});

async function sampleGroups(url: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('kube_event_rules_digest_groups_open '));
  return line ? Number(line.split(' ')[1]) : -1;
}
