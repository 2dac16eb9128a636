/**
 * Fault run: 5,000 occurrences through a Broker emulator that retries like Knative (exponential, faster
 * delays, 10 retries), into the real service (child process, Redis store), delivering to a destination
 * that fails at random (≈20 % 500, 5 % 429 + Retry-After, 3 % connection reset, 2 % hang past the
 * timeout, 3 % redirect, 3 % a 200 whose body never ends, 3 % a 200 after 0.2 s) — with one kill -9 +
 * restart of the service at 40 % and a 3 s Redis stall (SIGSTOP) at 70 %. Every occurrence must arrive at
 * least once; duplicates are reported and must be explained by an attempt that timed out after the
 * destination had received it, or by the kill. Seeded (FAULT_SEED); size with FAULT_EVENTS.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { Agent, createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { after, before, describe, it } from 'node:test';
import { bodyOf, loadFixture, withEvent } from '../support/fixtures.js';
import { closedPort } from '../support/ports.js';
import { needs } from '../support/needs.js';
import { startRedis } from '../support/real-receivers.js';
import { seededRandom } from '../support/random.js';

const EVENTS = Number(process.env.FAULT_EVENTS ?? 5000);
const SEED = Number(process.env.FAULT_SEED ?? 4242);
const FAULTS = ['500', '429', 'reset', 'hang', '302', 'slowbody', 'slow'] as const;
type Fault = (typeof FAULTS)[number];
const parseMix = (text: string) =>
  Object.fromEntries(
    text
      .split(',')
      .map((p) => p.split('='))
      .map(([k, v]) => [k, Number(v)]),
  ) as Partial<Record<Fault, number>>;
/**
 * The destination's fault mix, e.g. FAULT_MIX="500=0.2,429=0.05,reset=0.03,hang=0.02,302=0.03,slowbody=0.03,slow=0.03"
 * (the rest answers 200): `302` a redirect, `slowbody` a 200 whose body never ends, `slow` a 200 after 0.2 s.
 */
const MIX = parseMix(process.env.FAULT_MIX ?? '500=0.2,429=0.05,reset=0.03,hang=0.02');
const FAULT_RUN_MIX = parseMix(
  process.env.FAULT_MIX ?? '500=0.2,429=0.05,reset=0.03,hang=0.02,302=0.03,slowbody=0.03,slow=0.03',
);
/** Faults after which the destination has processed the request. */
const PROCESSED = new Set<Receipt['fault']>(['ok', 'hang', 'slowbody', 'slow']);

type Receipt = { fault: 'ok' | Fault; at: number };

/** The faulty destination: records every request it receives and what it did with it. */
async function startFaultyDestination(
  rnd: () => number,
  mix = MIX,
): Promise<{ url: string; receipts: Map<string, Receipt[]>; close(): Promise<void> }> {
  const receipts = new Map<string, Receipt[]>();
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const { key } = JSON.parse(Buffer.concat(chunks).toString()) as { key: string };
      let roll = rnd();
      let fault: Receipt['fault'] = 'ok';
      for (const kind of FAULTS) {
        if (roll < (mix[kind] ?? 0)) {
          fault = kind;
          break;
        }
        roll -= mix[kind] ?? 0;
      }
      receipts.set(key, [...(receipts.get(key) ?? []), { fault, at: Date.now() }]);
      if (fault === 'reset') return req.socket.destroy();
      if (fault === 'hang') return void setTimeout(() => res.writeHead(200).end('{}'), 800); // processed, but after the client gave up
      if (fault === '500') return res.writeHead(500).end('{"error":"boom"}');
      if (fault === '429') return res.writeHead(429, { 'retry-after': '0.05' }).end('{}');
      if (fault === '302') return res.writeHead(302, { location: 'http://elsewhere.invalid/event' }).end();
      if (fault === 'slowbody')
        return void res.writeHead(200, { 'content-type': 'application/json' }).write('{"accepted": true'); // never ends
      if (fault === 'slow') return void setTimeout(() => res.writeHead(200).end('{}'), 200);
      res.writeHead(200).end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    receipts,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

describe(
  `fault run (${EVENTS} events, seed ${SEED}, faults ${JSON.stringify(FAULT_RUN_MIX)})`,
  { skip: needs('redis-server') },
  () => {
    let redis: Awaited<ReturnType<typeof startRedis>>;
    before(async () => {
      redis = await startRedis();
    });
    after(() => redis.stop());

    it(
      'loses nothing; every duplicate is explained; no unhandled rejection; RSS bounded',
      { timeout: 240_000 },
      async () => {
        const rnd = seededRandom(SEED);
        const destination = await startFaultyDestination(seededRandom(SEED + 1), FAULT_RUN_MIX);
        const rulesDir = mkdtempSync(join(tmpdir(), 'fault-rules-'));
        writeFileSync(
          join(rulesDir, 'r.yaml'),
          `
destinations:
  flaky: { url: "${destination.url}/event", timeoutSeconds: 0.3 }
rules:
  - name: every-occurrence
    conditions: { all: [ { fact: event, path: $.reason, operator: equal, value: SuccessfulRescale } ] }
    actions: [ { destination: flaky, body: '{ "key": $occurrence }' } ]
`,
        );
        const port = await closedPort();
        const problems: string[] = [];
        let redisWarnings = 0;
        /** What the service said about each occurrence's deliveries (attempts, last error). */
        const serviceLog = new Map<string, { attempts: number; error?: string }[]>();
        let service: ChildProcess;
        const start = () => {
          service = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', 'serve'], {
            env: {
              ...process.env,
              PORT: String(port),
              HOST: '127.0.0.1',
              RULES_DIR: rulesDir,
              REDIS_URL: redis.url,
              LOG_LEVEL: 'info',
              DELIVERY_ATTEMPTS: '2',
              DELIVERY_DEADLINE_SECONDS: '1.5',
              RETRY_AFTER_MAX_SECONDS: '1',
              BREAKER_FAILURES: '20',
              BREAKER_OPEN_SECONDS: '0.2',
            },
            stdio: ['ignore', 'pipe', 'pipe'],
          });
          createInterface({ input: service.stdout! }).on('line', (line) => {
            if (/unhandled|uncaught/i.test(line)) problems.push(line);
            if (line.includes('redis unavailable')) redisWarnings++;
            if (line.includes('"msg":"delivered"') || line.includes('"msg":"delivery failed')) {
              const record = JSON.parse(line) as { occurrence: string; attempts: number; error?: string };
              serviceLog.set(record.occurrence, [...(serviceLog.get(record.occurrence) ?? []), record]);
            }
          });
          service.stderr!.on('data', (d: Buffer) => problems.push(d.toString()));
        };
        const ready = async () => {
          for (let i = 0; i < 300; i++) {
            if (
              await fetch(`http://127.0.0.1:${port}/readyz`).then(
                (r) => r.ok,
                () => false,
              )
            )
              return;
            await new Promise((r) => setTimeout(r, 50));
          }
          throw new Error('service not ready');
        };
        start();
        await ready();

        // The Broker emulator: Knative's retry rule (retry 5xx, 404, 408, 409, 429, network errors),
        // exponential backoff.
        const agent = new Agent({ keepAlive: true, maxSockets: 64 });
        const template = loadFixture('hpa-successful-rescale-up-resource-add');
        const post = (i: number) =>
          new Promise<number>((resolve) => {
            const fixture = withEvent(template, (body, headers) => {
              body.metadata.uid = `fault-${i}`;
              headers['ce-id'] = `fault-ce-${i}`;
            });
            const body = bodyOf(fixture);
            const req = request(
              `http://127.0.0.1:${port}/`,
              { method: 'POST', agent, headers: { ...fixture.headers, 'content-length': Buffer.byteLength(body) } },
              (res) => {
                res.resume();
                res.on('end', () => resolve(res.statusCode ?? 0));
              },
            );
            req.setTimeout(5000, () => req.destroy());
            req.on('error', () => resolve(0));
            req.end(body);
          });
        const retryable = (status: number) => status === 0 || status >= 500 || [404, 408, 409, 429].includes(status);
        const deadLetters: number[] = [];
        const latencies: number[] = [];
        let killedAt = 0;
        let stalledAt = 0;
        const STALL_MS = 3000;
        const stallLatencies: number[] = [];
        const attemptLatencies: number[] = [];
        let done = 0;
        const deliver = async (i: number) => {
          const started = Date.now();
          for (let attempt = 0; attempt <= 10; attempt++) {
            const attemptStarted = Date.now();
            const status = await post(i);
            if (stalledAt && attemptStarted >= stalledAt && attemptStarted < stalledAt + STALL_MS)
              stallLatencies.push(Date.now() - attemptStarted);
            else attemptLatencies.push(Date.now() - attemptStarted);
            if (!retryable(status)) {
              assert.ok(status >= 200 && status < 300, `event ${i}: ${status}`);
              latencies.push(Date.now() - started);
              return;
            }
            await new Promise((r) => setTimeout(r, 20 * 2 ** attempt * (0.5 + rnd())));
          }
          deadLetters.push(i);
        };
        let next = 0;
        const runStarted = Date.now();
        await Promise.all(
          Array.from({ length: 48 }, async () => {
            while (next < EVENTS) {
              const i = next++;
              if (!killedAt && i === Math.floor(EVENTS * 0.4)) {
                killedAt = Date.now();
                service.kill('SIGKILL'); // mid-run: in-flight requests die with it
                await new Promise((r) => service.once('exit', r));
                start();
                await ready();
              }
              if (!stalledAt && i === Math.floor(EVENTS * 0.7)) {
                stalledAt = Date.now();
                redis.pause(); // Redis stalls without disconnecting
                setTimeout(() => redis.resume(), STALL_MS);
              }
              await deliver(i);
              done++;
            }
          }),
        );
        const seconds = (Date.now() - runStarted) / 1000;
        const rssMb = Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${service!.pid}/status`, 'utf8'))![1]) / 1024;
        service!.kill('SIGTERM');
        await new Promise((r) => service.once('exit', r));
        agent.destroy();
        await destination.close();

        // What arrived: the destination processed it (answered 2xx, or answered late after the client gave up).
        const arrivedCount = (key: string) =>
          (destination.receipts.get(key) ?? []).filter((r) => PROCESSED.has(r.fault)).length;
        const keys = Array.from({ length: EVENTS }, (_, i) => `fault-${i}/1`);
        const lost = keys.filter((k) => arrivedCount(k) === 0);
        const duplicated = keys.filter((k) => arrivedCount(k) > 1);
        // 'slow' answers after 0.2 s: on a loaded machine that can be past the 0.3 s timeout too.
        const byTimeout = duplicated.filter((k) =>
          destination.receipts.get(k)!.some((r) => r.fault === 'hang' || r.fault === 'slow'),
        );
        const byKill = duplicated.filter(
          (k) => !byTimeout.includes(k) && destination.receipts.get(k)!.some((r) => Math.abs(r.at - killedAt) < 2000),
        );
        // The service itself saw an attempt the destination had processed as failed: a timeout (on a loaded
        // machine an immediate 200 can miss the 0.3 s timeout too) or a broken connection — an unknown outcome.
        const byUnknownOutcome = duplicated.filter(
          (k) =>
            !byTimeout.includes(k) &&
            !byKill.includes(k) &&
            (serviceLog.get(k) ?? []).some(
              (e) => e.attempts > 1 || /no response within|socket|ECONNRESET|closed/i.test(e.error ?? ''),
            ),
        );
        const explained = [...byTimeout, ...byKill, ...byUnknownOutcome];
        latencies.sort((a, b) => a - b);
        const p99 = latencies[Math.floor(latencies.length * 0.99)] ?? 0;
        stallLatencies.sort((a, b) => a - b);
        const stallP = (q: number) => stallLatencies[Math.floor(stallLatencies.length * q)] ?? 0;
        attemptLatencies.sort((a, b) => a - b);
        const otherP = (q: number) => attemptLatencies[Math.floor(attemptLatencies.length * q)] ?? 0;
        const counts = (fault: Receipt['fault']) =>
          [...destination.receipts.values()].reduce((n, rs) => n + rs.filter((r) => r.fault === fault).length, 0);
        console.log(
          `fault run, Redis stalled ${STALL_MS} ms: ${stallLatencies.length} attempts answered meanwhile, p50 ${stallP(0.5)} ms, p99 ${stallP(0.99)} ms, max ${stallLatencies.at(-1) ?? 0} ms (other attempts: p50 ${otherP(0.5)} ms, p99 ${otherP(0.99)} ms); ` +
            `redis warnings ${redisWarnings}; redirects ${counts('302')}, endless 2xx bodies ${counts('slowbody')}, slow 2xx ${counts('slow')}`,
        );
        console.log(
          `fault run: ${EVENTS} events in ${seconds.toFixed(1)} s, arrived ${EVENTS - lost.length}, lost ${lost.length}, duplicates ${duplicated.length} ` +
            `(${byTimeout.length} after an attempt timed out once the destination had it, ${byUnknownOutcome.length} after the service saw an attempt the destination had processed fail (timeout, broken connection), ${byKill.length} around the kill -9, ${duplicated.length - explained.length} unexplained), dead-lettered ${deadLetters.length}, ` +
            `broker-level p99 ${p99} ms, service RSS at the end ${rssMb.toFixed(0)} MB, destination requests ${[...destination.receipts.values()].reduce((n, r) => n + r.length, 0)}`,
        );
        for (const k of duplicated.filter((d) => !explained.includes(d))) {
          console.log(`  service: ${JSON.stringify(serviceLog.get(k) ?? [])}`);
          console.log(
            `unexplained ${k}: ${destination.receipts
              .get(k)!
              .map(
                (r) =>
                  `${r.fault} at kill${r.at - killedAt >= 0 ? '+' : ''}${r.at - killedAt} ms, stall${r.at - stalledAt >= 0 ? '+' : ''}${r.at - stalledAt} ms`,
              )
              .join('; ')}`,
          );
        }
        assert.deepEqual(lost, [], 'nothing lost');
        assert.deepEqual(deadLetters, [], 'nothing dead-lettered');
        assert.deepEqual(
          duplicated.filter((k) => !explained.includes(k)),
          [],
          'every duplicate explained',
        );
        assert.deepEqual(
          problems.filter((p) => p.trim()),
          [],
          'no unhandled rejection, nothing on stderr',
        );
        assert.ok(rssMb < 400, `RSS bounded (${rssMb.toFixed(0)} MB)`);
        assert.ok(killedAt > 0 && stalledAt > 0 && done === EVENTS);
        assert.ok(redisWarnings <= 2, `one warning per Redis outage, not per event (${redisWarnings})`);
      },
    );
  },
);

/**
 * Burst run: the real service (child process) with a hostile template beside good rules, then at once a
 * 1,000-event batch and 1,000 concurrent events through a template outside the fast path (template workers),
 * delivering to the faulty destination, while a good rule's events are timed. Every burst occurrence must
 * arrive, the hostile events must never be answered 2xx, the good events always 204, the process never dies.
 * Size with BURST_EVENTS (per half).
 */
const BURST = Number(process.env.BURST_EVENTS ?? 1000);

describe(`burst run (${BURST}-event batch + ${BURST} concurrent events outside the fast path, faults ${JSON.stringify(MIX)})`, () => {
  it(
    'delivers every burst occurrence, never acknowledges a hostile template, keeps the good rule going',
    { timeout: 240_000 },
    async () => {
      const rnd = seededRandom(SEED);
      const destination = await startFaultyDestination(seededRandom(SEED + 2));
      const healthy = createServer((req, res) => {
        req.resume();
        req.on('end', () => res.writeHead(200).end('{}'));
      });
      await new Promise<void>((resolve) => healthy.listen(0, '127.0.0.1', resolve));
      const rulesDir = mkdtempSync(join(tmpdir(), 'burst-rules-'));
      writeFileSync(
        join(rulesDir, 'r.yaml'),
        `
destinations:
  flaky: { url: "${destination.url}/event", timeoutSeconds: 0.3 }
  healthy: { url: "http://127.0.0.1:${(healthy.address() as AddressInfo).port}/healthy" }
rules:
  - name: burst
    conditions: { all: [ { fact: event, path: $.reason, operator: equal, value: Burst } ] }
    actions: [ { destination: flaky, body: '{ "key": $occurrence, "name": $join([reason, involvedObject.kind, involvedObject.name], " ") }' } ]
  - name: good
    conditions: { all: [ { fact: event, path: $.reason, operator: equal, value: Good } ] }
    actions: [ { destination: healthy, body: '{ "key": $occurrence }' } ]
  - name: hostile
    conditions: { all: [ { fact: event, path: $.reason, operator: equal, value: Hostile } ] }
    actions: [ { destination: healthy, body: '{ "text": $pad("", 100000000) }' } ]
`,
      );
      const port = await closedPort();
      const problems: string[] = [];
      const service = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', 'serve'], {
        env: {
          ...process.env,
          PORT: String(port),
          HOST: '127.0.0.1',
          RULES_DIR: rulesDir,
          LOG_LEVEL: 'warn',
          MAX_BODY_BYTES: String(8 * 1024 * 1024),
          DELIVERY_ATTEMPTS: '2',
          DELIVERY_DEADLINE_SECONDS: '3',
          RETRY_AFTER_MAX_SECONDS: '1',
          BREAKER_FAILURES: '50',
          BREAKER_OPEN_SECONDS: '0.2',
        },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      createInterface({ input: service.stdout }).on('line', (line) => {
        if (/unhandled|uncaught/i.test(line)) problems.push(line);
      });
      service.stderr.on('data', (d: Buffer) => problems.push(d.toString()));
      let exited = false;
      service.on('exit', () => (exited = true));
      for (
        let i = 0;
        !(await fetch(`http://127.0.0.1:${port}/readyz`).then(
          (r) => r.ok,
          () => false,
        ));
        i++
      ) {
        if (exited || i > 600) throw new Error('service not ready');
        await new Promise((r) => setTimeout(r, 50));
      }

      const template = loadFixture('hpa-successful-rescale-up-resource-add');
      const fixture = (reason: string, n: number) =>
        withEvent(template, (body, headers) => {
          body.reason = reason;
          body.metadata.uid = `${reason}-${n}`;
          headers['ce-id'] = `${reason}-ce-${n}`;
        });
      const agent = new Agent({ keepAlive: true, maxSockets: BURST + 64 });
      const send = (headers: Record<string, string>, body: string) =>
        new Promise<number>((resolve) => {
          const req = request(
            `http://127.0.0.1:${port}/`,
            { method: 'POST', agent, headers: { ...headers, 'content-length': Buffer.byteLength(body) } },
            (res) => {
              res.resume();
              res.on('end', () => resolve(res.statusCode ?? 0));
            },
          );
          req.setTimeout(30_000, () => req.destroy());
          req.on('error', () => resolve(0));
          req.end(body);
        });
      const retryable = (status: number) => status === 0 || status >= 500 || [404, 408, 409, 429].includes(status);
      /** The Broker emulator: retries like Knative; returns the final status (or 'dead-lettered'). */
      const broker = async (post: () => Promise<number>, retries = 10) => {
        for (let attempt = 0; attempt <= retries; attempt++) {
          const status = await post();
          if (!retryable(status)) return status;
          await new Promise((r) => setTimeout(r, 20 * 2 ** attempt * (0.5 + rnd())));
        }
        return 'dead-lettered' as const;
      };
      const single = (reason: string, n: number) => () => {
        const f = fixture(reason, n);
        return send(f.headers, bodyOf(f));
      };
      const batchBody = JSON.stringify(
        Array.from({ length: BURST }, (_, n) => {
          const f = fixture('Burst', n);
          const attributes = Object.fromEntries(
            Object.entries(f.headers)
              .filter(([k]) => k.startsWith('ce-'))
              .map(([k, v]) => [k.slice(3), v]),
          );
          return { ...attributes, datacontenttype: 'application/json', data: f.body };
        }),
      );

      const started = Date.now();
      const goodLatencies: number[] = [];
      const goodStatuses: (number | string)[] = [];
      let burstDone = false;
      const good = (async () => {
        for (let n = 0; !burstDone || n < 200; n++) {
          const t = performance.now();
          goodStatuses.push(await broker(single('Good', n)));
          goodLatencies.push(performance.now() - t);
          await new Promise((r) => setTimeout(r, 5));
        }
      })();
      const [batchStatus, concurrent, hostile] = await Promise.all([
        broker(() => send({ 'content-type': 'application/cloudevents-batch+json' }, batchBody)),
        Promise.all(Array.from({ length: BURST }, (_, n) => broker(single('Burst', BURST + n)))),
        Promise.all(Array.from({ length: 3 }, (_, n) => broker(single('Hostile', n), 2))),
      ]);
      burstDone = true;
      await good;
      const seconds = (Date.now() - started) / 1000;
      const alive = await fetch(`http://127.0.0.1:${port}/healthz`).then(
        (r) => r.ok,
        () => false,
      );
      service.kill('SIGTERM');
      await new Promise((r) => (exited ? r(undefined) : service.once('exit', r)));
      agent.destroy();
      await destination.close();
      healthy.close();

      const arrived = (key: string) =>
        (destination.receipts.get(key) ?? []).some((r) => r.fault === 'ok' || r.fault === 'hang');
      const lost = Array.from({ length: 2 * BURST }, (_, n) => `Burst-${n}/1`).filter((key) => !arrived(key));
      goodLatencies.sort((a, b) => a - b);
      const p99 = goodLatencies[Math.floor(goodLatencies.length * 0.99)] ?? 0;
      console.log(
        `burst run: ${BURST}-event batch (${batchStatus}) + ${BURST} concurrent events in ${seconds.toFixed(1)} s, lost ${lost.length}, ` +
          `hostile answers ${JSON.stringify(hostile)}, good events ${goodLatencies.length} with broker-level p99 ${p99.toFixed(0)} ms, service alive ${alive}`,
      );
      assert.equal(batchStatus, 204);
      assert.ok(
        concurrent.every((status) => status === 204),
        'every concurrent burst event delivered in the end',
      );
      assert.deepEqual(lost, [], 'nothing lost');
      assert.deepEqual(
        hostile,
        ['dead-lettered', 'dead-lettered', 'dead-lettered'],
        'a hostile template is never acknowledged',
      );
      assert.ok(
        goodStatuses.every((status) => status === 204),
        'the good rule answered 204 throughout',
      );
      assert.ok(alive, 'the service survived');
      assert.deepEqual(
        problems.filter((p) => p.trim()),
        [],
        'no unhandled rejection, nothing on stderr',
      );
    },
  );
});

/**
 * Hostile-rules run: the real service (child process) with rule sources an attacker could write — regexes
 * that backtrack for seconds to minutes on a crafted message (in conditions and in a template), documents
 * RE2 refuses (a back-reference, a look-ahead), an alias bomb, a subfolder — next to a good rule. Crafted
 * messages are sent at the hostile rules while the good rule's events are timed. Every good event must be
 * delivered, every hostile event answered (at once: linear-time matching), and the process must never die.
 * Size with HOSTILE_EVENTS.
 */
const HOSTILE = Number(process.env.HOSTILE_EVENTS ?? 300);

describe(`hostile-rules run (${HOSTILE} crafted events beside a good rule)`, () => {
  it(
    'delivers every good event, answers every crafted one, reports the rejected sources, never dies',
    { timeout: 240_000 },
    async () => {
      const received: string[] = [];
      const healthy = createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          received.push(`${req.url} ${Buffer.concat(chunks).toString()}`);
          res.writeHead(200).end('{}');
        });
      });
      await new Promise<void>((resolve) => healthy.listen(0, '127.0.0.1', resolve));
      const url = `http://127.0.0.1:${(healthy.address() as AddressInfo).port}`;
      const rulesDir = mkdtempSync(join(tmpdir(), 'hostile-rules-'));
      const hostileRule = (name: string, pattern: string) => `
  - name: ${name}
    conditions: { all: [ { fact: event, path: $.reason, operator: equal, value: Hostile }, { fact: event, path: $.message, operator: matches, value: ${JSON.stringify(pattern)} } ] }
    actions: [ { destination: out, body: '{ "rule": $rule.name }' } ]`;
      writeFileSync(
        join(rulesDir, 'good.yaml'),
        `
destinations:
  out: { url: "${url}/good" }
rules:
  - name: good
    conditions: { all: [ { fact: event, path: $.reason, operator: equal, value: Good } ] }
    actions: [ { destination: out, body: '{ "key": $occurrence }' } ]
`,
      );
      writeFileSync(
        join(rulesDir, 'hostile-regexes.yaml'),
        `
destinations:
  out: { url: "${url}/hostile" }
rules:${hostileRule('nested-alternation', '^(a|a)+$')}${hostileRule('digit-or-word', '(\\d|\\w)+x$')}${hostileRule('polynomial', '(.*a){25}')}${hostileRule('words', '^(\\w+\\s?){1,40}$')}
  - name: template-regex
    conditions: { all: [ { fact: event, path: $.reason, operator: equal, value: Hostile } ] }
    actions: [ { destination: out, body: '{ "nested": $contains(message, /^(a+)+$/), "split": $count($split(message, /(\\d|\\w)+x/)) }' } ]
`,
      );
      writeFileSync(
        join(rulesDir, 'back-reference.yaml'),
        `destinations: { out: { kind: log } }\nrules:${hostileRule('backref', '(a)\\1')}\n`,
      );
      writeFileSync(
        join(rulesDir, 'look-ahead.yaml'),
        `destinations: { out: { kind: log } }\nrules:\n  - name: ahead\n    conditions: { all: [ { fact: event, path: $.reason, operator: equal, value: Hostile } ] }\n    actions: [ { destination: out, body: '$match(message, /a(?=b)/)' } ]\n`,
      );
      writeFileSync(
        join(rulesDir, 'bomb.yaml'),
        [
          'a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]',
          ...'bcdefghi'.split('').map((k, i) => `${k}: &${k} [${Array(9).fill(`*${'abcdefghi'[i]}`).join(', ')}]`),
        ].join('\n'),
      );
      mkdirSync(join(rulesDir, 'nested'));
      writeFileSync(join(rulesDir, 'nested', 'more.yaml'), 'rules: []');

      const port = await closedPort();
      const problems: string[] = [];
      const service = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', 'serve'], {
        env: { ...process.env, PORT: String(port), HOST: '127.0.0.1', RULES_DIR: rulesDir, LOG_LEVEL: 'warn' },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      createInterface({ input: service.stdout }).on('line', (line) => {
        if (/unhandled|uncaught/i.test(line)) problems.push(line);
      });
      service.stderr.on('data', (d: Buffer) => problems.push(d.toString()));
      let exited = false;
      service.on('exit', () => (exited = true));
      for (
        let i = 0;
        !(await fetch(`http://127.0.0.1:${port}/readyz`).then(
          (r) => r.ok,
          () => false,
        ));
        i++
      ) {
        if (exited || i > 600) throw new Error('service not ready');
        await new Promise((r) => setTimeout(r, 50));
      }

      const template = loadFixture('hpa-successful-rescale-up-resource-add');
      const crafted = [
        `${'a'.repeat(32)}!`,
        `${'1'.repeat(40)}!`,
        `${'a'.repeat(24)}${'b'.repeat(2_000)}`,
        `${'word '.repeat(60)}!`,
        `${'a'.repeat(40)}!`,
      ];
      const send = (reason: string, n: number, message: string) =>
        new Promise<number>((resolve) => {
          const fixture = withEvent(template, (body, headers) => {
            body.reason = reason;
            body.message = message;
            body.metadata.uid = `${reason}-${n}`;
            headers['ce-id'] = `${reason}-ce-${n}`;
          });
          const body = bodyOf(fixture);
          const req = request(
            `http://127.0.0.1:${port}/`,
            { method: 'POST', headers: { ...fixture.headers, 'content-length': Buffer.byteLength(body) } },
            (res) => {
              res.resume();
              res.on('end', () => resolve(res.statusCode ?? 0));
            },
          );
          req.setTimeout(60_000, () => req.destroy());
          req.on('error', () => resolve(0));
          req.end(body);
        });

      const started = Date.now();
      const goodLatencies: number[] = [];
      const goodStatuses: number[] = [];
      let hostileDone = false;
      const good = (async () => {
        for (let n = 0; !hostileDone || n < 100; n++) {
          const t = performance.now();
          goodStatuses.push(await send('Good', n, 'fine'));
          goodLatencies.push(performance.now() - t);
          await new Promise((r) => setTimeout(r, 5));
        }
      })();
      let next = 0;
      const hostileStatuses: number[] = [];
      await Promise.all(
        Array.from({ length: 16 }, async () => {
          while (next < HOSTILE) {
            const n = next++;
            hostileStatuses.push(await send('Hostile', n, crafted[n % crafted.length]));
          }
        }),
      );
      hostileDone = true;
      await good;
      const seconds = (Date.now() - started) / 1000;
      const status = (await (await fetch(`http://127.0.0.1:${port}/status`)).json()) as {
        sources: { source: string; rules: string[]; errors: string[] }[];
      };
      const alive = await fetch(`http://127.0.0.1:${port}/healthz`).then(
        (r) => r.ok,
        () => false,
      );
      service.kill('SIGTERM');
      await new Promise((r) => (exited ? r(undefined) : service.once('exit', r)));
      healthy.close();

      goodLatencies.sort((a, b) => a - b);
      const p99 = goodLatencies[Math.floor(goodLatencies.length * 0.99)] ?? 0;
      const errors = Object.fromEntries(status.sources.map((s) => [s.source, s.errors.join(' | ')]));
      const delivered = (path: string) => received.filter((r) => r.startsWith(path)).length;
      console.log(
        `hostile-rules run: ${HOSTILE} crafted events + ${goodLatencies.length} good events in ${seconds.toFixed(1)} s; good p99 ${p99.toFixed(0)} ms (max ${goodLatencies.at(-1)?.toFixed(0)} ms); ` +
          `hostile answers ${JSON.stringify(Object.fromEntries([...new Set(hostileStatuses)].map((s) => [s, hostileStatuses.filter((x) => x === s).length])))}; ` +
          `deliveries good ${delivered('/good')}, hostile ${delivered('/hostile')}; rejected sources ${Object.entries(
            errors,
          )
            .filter(([, e]) => e)
            .map(([s]) => s)
            .join(', ')}; alive ${alive}`,
      );
      assert.ok(
        goodStatuses.every((s) => s === 204),
        'every good event answered 204',
      );
      assert.equal(delivered('/good'), goodStatuses.length, 'every good event delivered');
      assert.ok(
        hostileStatuses.length === HOSTILE && hostileStatuses.every((s) => s === 204),
        'every crafted event answered (matching is linear)',
      );
      // Per crafted message: the template rule always, plus the one condition rule whose pattern it matches, if any
      // ((.*a){25} for 32 and 40 a's, the word pattern for 24 a's and 2,000 b's).
      const conditionMatches = [1, 0, 1, 0, 1];
      const expected =
        HOSTILE +
        Array.from({ length: HOSTILE }, (_, n) => conditionMatches[n % crafted.length]).reduce((a, b) => a + b, 0);
      assert.equal(delivered('/hostile'), expected, 'the hostile rules fire exactly where their patterns match');
      assert.match(errors['file:back-reference.yaml'], /back-references are not supported/);
      assert.match(
        errors['file:look-ahead.yaml'],
        /look-ahead and look-behind are not supported .* at line 1, column 19/,
      );
      assert.match(errors['file:bomb.yaml'], /alias/);
      assert.match(errors['file:nested/'], /subfolders of RULES_DIR are not read/);
      assert.equal(errors['file:good.yaml'], '');
      assert.equal(errors['file:hostile-regexes.yaml'], '');
      assert.ok(alive, 'the service survived');
      assert.ok(p99 < 5_000, `good events answered within seconds, not minutes (p99 ${p99.toFixed(0)} ms)`);
      assert.deepEqual(
        problems.filter((p) => p.trim()),
        [],
        'no unhandled rejection, nothing on stderr',
      );
    },
  );
});
