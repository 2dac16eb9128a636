/**
 * Fault runs for the Kubernetes side of the contract, each through a Broker emulator that retries like
 * Knative (5xx, 404, 408, 409, 429 and network errors; exponential backoff, a 429's Retry-After honoured;
 * 10 retries, then dead-letter):
 * - replicas: two replicas sharing Redis, the Broker picking a random replica for every attempt, Events
 *   repeating (count + 1) every 400 ms while the destination is down for 4 s — every occurrence answered
 *   2xx must have reached the destination;
 * - API faults: a rule that reads `object`, while the API server is down, answers 429 with Retry-After,
 *   accepts requests and never answers, then answers 500 — every event answered 2xx must have been delivered,
 *   and no request to the API may be left open.
 * Seeded (KUBE_FAULT_SEED). Figures in docs/reliability.md.
 */
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../src/config.js';
import { startFakeKubeApi } from '../support/fake-kube-api.js';
import { bodyOf, loadFixture, withEvent, type EventFixture } from '../support/fixtures.js';
import { connectionTo, waitUntil } from '../support/kube-fixtures.js';
import { needs } from '../support/needs.js';
import { seededRandom } from '../support/random.js';
import { startRedis } from '../support/real-receivers.js';
import { startService, type RunningService } from '../support/running-service.js';

const SEED = Number(process.env.KUBE_FAULT_SEED ?? 1414);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A destination that records what it accepted (200) per occurrence key, and answers `failing()` otherwise. */
async function startDestination(
  failing: () => number | undefined,
): Promise<{ url: string; accepted: Map<string, number>; requests: number; close(): Promise<void> }> {
  const accepted = new Map<string, number>();
  const state = { requests: 0 };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      state.requests++;
      const status = failing();
      if (status) return void res.writeHead(status).end('{}');
      const { key } = JSON.parse(Buffer.concat(chunks).toString()) as { key: string };
      accepted.set(key, (accepted.get(key) ?? 0) + 1);
      res.writeHead(200).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    accepted,
    get requests() {
      return state.requests;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** The Broker emulator: one CloudEvent, attempts to a replica `pick` chooses, Knative's retry rule. */
async function broker(
  fixture: EventFixture,
  pick: () => RunningService,
  rnd: () => number,
): Promise<{ status: number; attempts: number }> {
  const body = bodyOf(fixture);
  for (let attempt = 0; ; attempt++) {
    const response = await fetch(`${pick().url}/`, {
      method: 'POST',
      headers: fixture.headers,
      body,
      signal: AbortSignal.timeout(10_000),
    }).then(
      (r) => r.arrayBuffer().then(() => r),
      () => undefined,
    );
    const status = response?.status ?? 0;
    const retryable = status === 0 || status >= 500 || [404, 408, 409, 429].includes(status);
    if (!retryable || attempt === 10) return { status, attempts: attempt + 1 };
    const retryAfter = Number(response?.headers.get('retry-after') ?? NaN);
    await sleep(Number.isFinite(retryAfter) ? retryAfter * 1000 : 50 * 2 ** Math.min(attempt, 6) * (0.5 + rnd()));
  }
}

const ruleText = (url: string, condition: string) => `
destinations:
  sink: { url: "${url}/event", timeoutSeconds: 3 }
rules:
  - name: every-occurrence
    conditions: { all: [ ${condition} ] }
    actions: [ { destination: sink, body: '{ "key": $occurrence }' } ]
`;

describe(`Kubernetes-side fault runs (seed ${SEED})`, { skip: needs('redis-server') }, () => {
  let redis: Awaited<ReturnType<typeof startRedis>>;
  before(async () => {
    redis = await startRedis();
  });
  after(() => redis.stop());

  it(
    'two replicas, random replica per attempt, repeating Events, a 4 s destination outage: no occurrence 2xx without delivery',
    { timeout: 120_000 },
    async () => {
      const rnd = seededRandom(SEED);
      const started = Date.now();
      const outage = (t: number) => t >= 1500 && t < 5500;
      const destination = await startDestination(() => (outage(Date.now() - started) ? 503 : undefined));
      const config = {
        redisUrl: redis.url,
        deliveryAttempts: 2,
        deliveryDeadlineMs: 5000,
        destinations: { ...loadConfig({}).destinations, failureThreshold: 1000 },
      };
      const replicas = await Promise.all(
        [0, 1].map(() =>
          startService({
            rules: {
              'r.yaml': ruleText(destination.url, '{ fact: event, path: $.reason, operator: equal, value: BackOff }'),
            },
            config,
          }),
        ),
      );
      const template = loadFixture('pod-backoff-crashloop-resource-update');
      const EVENTS = 30;
      const REPEATS = 20;
      const results: { key: string; status: number; attempts: number }[] = [];
      let timeouts = 0;
      try {
        const sends: Promise<void>[] = [];
        for (let count = 2; count < 2 + REPEATS; count++) {
          for (let e = 0; e < EVENTS; e++) {
            const fixture = withEvent(template, (body, headers) => {
              body.metadata.uid = `repeating-${e}`;
              body.count = count;
              headers['ce-id'] = `repeating-${e}-${count}`;
            });
            sends.push(
              broker(fixture, () => replicas[Math.floor(rnd() * 2)], rnd).then(
                (r) => void results.push({ key: `repeating-${e}/${count}`, ...r }),
              ),
            );
          }
          await sleep(400);
        }
        await Promise.all(sends);
        for (const replica of replicas)
          timeouts += await replica.metric('kube_event_rules_delivery_attempts_total', { result: 'timeout' });
      } finally {
        await Promise.all(replicas.map((r) => r.stop()));
        await destination.close();
      }
      const acknowledged = results.filter((r) => r.status >= 200 && r.status < 300);
      const unsent = acknowledged.filter((r) => !destination.accepted.has(r.key));
      const deadLettered = results.filter((r) => r.status < 200 || r.status >= 300);
      const duplicates = [...destination.accepted.values()].filter((n) => n > 1).length;
      const retried = results.filter((r) => r.attempts > 1).length;
      console.log(
        `replica run: ${results.length} occurrences (${EVENTS} Events × ${REPEATS} repeats), ${retried} needed a redelivery, ` +
          `2xx without delivery ${unsent.length}, dead-lettered ${deadLettered.length}, delivered twice ${duplicates} (attempts timed out: ${timeouts}), destination requests ${destination.requests}`,
      );
      assert.equal(results.length, EVENTS * REPEATS);
      assert.deepEqual(
        unsent.map((r) => r.key),
        [],
        'no occurrence answered 2xx without delivery',
      );
      assert.deepEqual(
        deadLettered.map((r) => r.key),
        [],
        'nothing dead-lettered',
      );
      assert.ok(retried > 0, 'the outage did make the Broker redeliver');
      // A duplicate needs an attempt whose outcome was unknown (timed out after the destination had it).
      if (duplicates > 0) assert.ok(timeouts > 0, `${duplicates} duplicates without a timed-out attempt`);
    },
  );

  it(
    'a rule reading `object` while the API is down, rate limiting, hanging and failing: every 2xx delivered, no socket left open',
    { timeout: 120_000 },
    async () => {
      const rnd = seededRandom(SEED + 1);
      const fake = await startFakeKubeApi();
      for (let i = 0; i < 20; i++)
        fake.apply({
          apiVersion: 'v1',
          kind: 'Pod',
          metadata: { name: `web-${i}`, namespace: 'shop' },
          spec: { nodeName: `node-${i % 3}` },
        });
      const destination = await startDestination(() => undefined);
      const svc = await startService({
        rules: {
          'r.yaml': ruleText(
            destination.url,
            '{ fact: event, path: $.reason, operator: equal, value: BackOff }, { fact: object, path: $.spec.nodeName, operator: startsWith, value: node- }',
          ),
        },
        kube: connectionTo(fake),
        config: {
          redisUrl: redis.url,
          kube: {
            ...loadConfig({}).kube,
            rulesSelector: '',
            cacheTtlMs: 0,
            timeoutMs: 500,
            requestsPerSecond: 50,
            burst: 50,
          },
        },
      });
      const template = loadFixture('pod-backoff-crashloop-resource-update');
      const results: { key: string; status: number; attempts: number }[] = [];
      const phases: [string, () => void][] = [
        ['healthy', () => undefined],
        ['down', () => fake.down()],
        [
          '429 + Retry-After: 1',
          () => (fake.up(), fake.fail('GET', /\/pods\//, 429, 1_000_000, { 'retry-after': '1' })),
        ],
        ['hang', () => (fake.clearFaults(), fake.hang('GET', /\/pods\//))],
        ['500', () => (fake.clearFaults(), fake.fail('GET', /\/pods\//, 500, 1_000_000))],
        ['healthy again', () => fake.clearFaults()],
      ];
      const openDuring: number[] = [];
      try {
        const sends: Promise<void>[] = [];
        let n = 0;
        for (const [, enter] of phases) {
          enter();
          for (let tick = 0; tick < 10; tick++) {
            for (let k = 0; k < 5; k++) {
              const i = n++;
              const fixture = withEvent(template, (body, headers) => {
                body.metadata.uid = `api-${i}`;
                body.count = 2;
                body.involvedObject.namespace = 'shop';
                body.involvedObject.name = `web-${i % 20}`;
                headers['ce-id'] = `api-ce-${i}`;
              });
              sends.push(broker(fixture, () => svc, rnd).then((r) => void results.push({ key: `api-${i}/2`, ...r })));
            }
            await sleep(200);
          }
          openDuring.push(await fake.openConnections());
        }
        await Promise.all(sends);
        await waitUntil('API connections closed', async () => (await fake.openConnections()) <= 2, 5000);
      } finally {
        await svc.stop();
        await destination.close();
        await fake.close();
      }
      const acknowledged = results.filter((r) => r.status >= 200 && r.status < 300);
      const unsent = acknowledged.filter((r) => !destination.accepted.has(r.key));
      const deadLettered = results.filter((r) => r.status < 200 || r.status >= 300);
      const attempts = results.reduce((a, r) => a + r.attempts, 0);
      console.log(
        `API fault run: ${results.length} events over ${phases.map(([p]) => p).join(' → ')} (2 s each), ${attempts} Broker attempts, ` +
          `2xx without delivery ${unsent.length}, dead-lettered ${deadLettered.length}, open API connections at each phase end ${openDuring.join('/')}`,
      );
      assert.deepEqual(
        unsent.map((r) => r.key),
        [],
        'no event answered 2xx without delivery',
      );
      assert.deepEqual(
        deadLettered.map((r) => r.key),
        [],
        'nothing dead-lettered: every event delivered once the API answered',
      );
      assert.ok(Math.max(...openDuring) <= 60, `hung lookups are aborted: ${openDuring.join('/')}`);
    },
  );
});
