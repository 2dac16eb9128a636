/**
 * Fuzz run: 10,000 generated requests — the example events mutated (headers dropped or garbled,
 * content types swapped, bodies truncated, bytes flipped, invalid UTF-8, deep nesting, __proto__ keys,
 * huge strings, batches) — against the running service. Never a 5xx, never a crash; every 4xx carries a
 * JSON {error, detail}. Seeded, so a failure replays.
 */
import assert from 'node:assert/strict';
import { Agent, request } from 'node:http';
import { after, before, describe, it } from 'node:test';
import { startCaptureSink, type CaptureSink } from '../support/capture-sink.js';
import { bodyOf, fixtureNames, loadFixture, type EventFixture } from '../support/fixtures.js';
import { startService, type RunningService } from '../support/running-service.js';
import { seededRandom } from '../support/random.js';

const REQUESTS = Number(process.env.FUZZ_REQUESTS ?? 10_000);
const SEED = Number(process.env.FUZZ_SEED ?? 20261127);

type Wire = { headers: Record<string, string>; body: Buffer };

function mutate(rnd: () => number, fixtures: EventFixture[], i: number): Wire {
  const pick = <T>(list: T[]) => list[Math.floor(rnd() * list.length)];
  const fixture = pick(fixtures);
  const headers: Record<string, string> = { ...fixture.headers, 'ce-id': `fuzz-${i}` };
  let body = Buffer.from(bodyOf(fixture));
  const mutations = 1 + Math.floor(rnd() * 3);
  for (let m = 0; m < mutations; m++) {
    switch (Math.floor(rnd() * 14)) {
      case 0:
        delete headers[pick(Object.keys(headers))];
        break;
      case 1:
        headers[pick(Object.keys(headers))] = pick(['', ' ', 'x'.repeat(2000), '\u00ff\u00fe', '1.0', 'null']);
        break;
      case 2:
        headers['content-type'] = pick([
          'text/plain',
          'application/cloudevents+json',
          'application/cloudevents-batch+json',
          'application/json;charset=UTF-8',
          'application/octet-stream',
          'application/xml',
          '',
        ]);
        break;
      case 3:
        body = body.subarray(0, Math.floor(rnd() * body.length));
        break;
      case 4: {
        const b = Buffer.from(body);
        for (let k = 0; k < 5 && b.length; k++) b[Math.floor(rnd() * b.length)] = Math.floor(rnd() * 256);
        body = b;
        break;
      }
      case 5:
        body = Buffer.concat([body.subarray(0, 20), Buffer.from([0xc3, 0x28, 0xff, 0xfe]), body.subarray(20)]);
        break;
      case 6:
        body = Buffer.from(`${'['.repeat(20_000)}${']'.repeat(20_000)}`);
        break;
      case 7:
        body = Buffer.from(
          JSON.stringify({
            ...(JSON.parse(bodyOf(fixtures[0])) as object),
            __proto__: { polluted: true },
            constructor: { prototype: { polluted: true } },
          }).replace('"kind"', '"__proto__":{"x":1},"kind"'),
        );
        break;
      case 8:
        body = Buffer.from(
          JSON.stringify({
            kind: 'Event',
            metadata: { uid: `u${i}` },
            reason: 'BackOff',
            type: 'Warning',
            message: 'm'.repeat(200_000),
            involvedObject: { kind: 'Pod', namespace: 'shop', name: 'p' },
          }),
        );
        break;
      case 9: {
        const entry = {
          specversion: '1.0',
          id: `b${i}`,
          source: 's',
          type: 'dev.knative.apiserver.resource.add',
          datacontenttype: 'application/json',
          data: JSON.parse(bodyOf(fixtures[0])) as object,
        };
        headers['content-type'] = 'application/cloudevents-batch+json';
        body = Buffer.from(
          JSON.stringify(Array.from({ length: pick([0, 1, 5, 1001]) }, (_, k) => ({ ...entry, id: `b${i}-${k}` }))),
        );
        break;
      }
      case 10:
        body = Buffer.from(
          pick([
            '',
            'null',
            '[]',
            '"string"',
            '42',
            '{}',
            '{"kind":"Event"}',
            '{"kind":"Event","count":"NaN","metadata":{"uid":[]}}',
          ]),
        );
        break;
      case 11:
        headers['ce-type'] = pick([
          'dev.knative.apiserver.ref.add',
          'dev.knative.apiserver.resource.delete',
          'com.example.other',
          'x'.repeat(500),
        ]);
        break;
      case 12: {
        const data = JSON.parse(bodyOf(fixtures[1])) as Record<string, unknown>;
        data.involvedObject = pick([null, 'x', [], { kind: { a: 1 } }]);
        data.count = pick([-1, 1e308, '7', null]);
        body = Buffer.from(JSON.stringify(data));
        break;
      }
      default:
        headers['ce-specversion'] = pick(['0.3', '2.0', '']);
        break;
    }
  }
  return { headers, body };
}

function send(agent: Agent, url: URL, wire: Wire): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      url,
      { method: 'POST', agent, headers: { ...wire.headers, 'content-length': wire.body.length } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
      },
    );
    req.on('error', reject);
    req.end(wire.body);
  });
}

describe(`fuzz run (${REQUESTS} requests, seed ${SEED})`, () => {
  let sink: CaptureSink;
  let svc: RunningService;
  const crashes: unknown[] = [];
  const onCrash = (err: unknown) => crashes.push(err);

  before(async () => {
    process.on('uncaughtException', onCrash);
    process.on('unhandledRejection', onCrash);
    sink = await startCaptureSink();
    svc = await startService({
      rules: {
        'r.yaml': `
destinations:
  hook: { url: "${sink.url}/hook" }
  out: { kind: log }
rules:
  - name: everything
    on: [add, update, unchanged, delete, other]
    conditions: { any: [ { fact: event, path: $.reason, operator: matches, value: "." }, { fact: cloudevent, path: $.type, operator: startsWith, value: "" } ] }
    actions:
      - { destination: hook, body: '{ "r": reason, "m": $substring(message, 0, 100), "n": involvedObject.name }' }
      - { destination: out }
`,
      },
    });
    svc.lines.length = 0;
  });
  after(async () => {
    process.off('uncaughtException', onCrash);
    process.off('unhandledRejection', onCrash);
    await svc.stop();
    await sink.close();
  });

  it('never answers 5xx, never crashes, and every 4xx says what was wrong in JSON', async () => {
    const rnd = seededRandom(SEED);
    const fixtures = fixtureNames()
      .map((name) => loadFixture(name))
      .filter((f) => f.bodyEncoding !== 'raw');
    const agent = new Agent({ keepAlive: true, maxSockets: 16 });
    const url = new URL(`${svc.url}/`);
    const statuses = new Map<number, number>();
    const before = process.memoryUsage().rss;
    for (let i = 0; i < REQUESTS; i += 16) {
      const batch = Array.from({ length: Math.min(16, REQUESTS - i) }, (_, k) => mutate(rnd, fixtures, i + k));
      const answers = await Promise.all(batch.map((wire) => send(agent, url, wire)));
      answers.forEach((answer, k) => {
        statuses.set(answer.status, (statuses.get(answer.status) ?? 0) + 1);
        assert.ok(answer.status < 500, `request ${i + k}: ${answer.status} ${answer.body.slice(0, 300)}`);
        if (answer.status >= 400) {
          const parsed = JSON.parse(answer.body) as { error?: string; detail?: string };
          assert.ok(
            parsed.error && parsed.detail,
            `request ${i + k}: a 4xx with {error, detail}: ${answer.body.slice(0, 200)}`,
          );
        } else {
          assert.equal(answer.body, '', `request ${i + k}: a 2xx has an empty body`);
        }
      });
      svc.lines.length = 0; // the log destination's output is not what this run measures
      svc.logs.length = 0;
    }
    agent.destroy();
    assert.deepEqual(crashes, []);
    assert.equal((await fetch(`${svc.url}/healthz`)).status, 200, 'still serving');
    const grownMb = (process.memoryUsage().rss - before) / 1e6;
    console.log(
      `fuzz: ${REQUESTS} requests, statuses ${JSON.stringify(Object.fromEntries(statuses))}, RSS growth ${grownMb.toFixed(0)} MB`,
    );
    assert.ok((statuses.get(204) ?? 0) > REQUESTS / 20, 'a share of the mutations stay valid and are processed');
    assert.ok((statuses.get(400) ?? 0) > REQUESTS / 20, 'a share is rejected');
  });
});
