/**
 * Red team: the digest occurrence view (message cut at 1,024 chars, others at 256) and the region start's
 * event view (message 4 KiB, others 409) are made with String.prototype.slice. V8 makes a slice of a long
 * flat string a SlicedString that points into its parent: the cut text keeps the whole original message
 * (up to MAX_BODY_BYTES, 1 MiB) alive. So each kept occurrence / open region holds ~1 MiB, not ~5 KiB:
 * DIGEST_MAX_GROUPS × 40 occurrences, or TEAM_MAX_OPEN_REGIONS / REGION_MAX_OPEN regions, of ~1 MiB each.
 * Run: node --import tsx --test test/redteam/cut-texts-retain-parents.test.ts
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import v8 from 'node:v8';
import vm from 'node:vm';
import { startCaptureSink, type CaptureSink } from '../support/capture-sink.js';
import { crashLoop } from '../support/digest-events.js';
import { withEvent } from '../support/fixtures.js';
import { startService, type RunningService } from '../support/running-service.js';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;
const heap = () => {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
};

const N = 40;
const BIG = 900_000; // the body stays under MAX_BODY_BYTES (1 MiB)

/** The i-th crash loop of its own pod (its own key), with a message of `size` characters. */
const hostile = (i: number, size: number, tag: string) =>
  withEvent(crashLoop(i, `dep${tag}${i}`), (body, headers) => {
    body.message = `${String(i).padStart(6, '0')}${tag}` + 'A'.repeat(size);
    headers['ce-id'] = `${tag}-${i}`;
    body.metadata.uid = `${tag}-${i}-uid`;
  });

/** MODE=digest | region | control (a plain rule: nothing kept) | both (default). */
const MODE = process.env.MODE ?? 'both';
const DIGEST = `
  - name: digest
    conditions: { all: [ { fact: event, path: $.reason, operator: equal, value: BackOff } ] }
    digest: { key: involvedObject.name, window: 1h, keep: 20 }
    actions: [ { destination: chat, body: '{ "n": $digest.count }' } ]`;
const REGION = `
  - name: region
    region:
      key: involvedObject.name
      start: { all: [ { fact: event, path: $.reason, operator: equal, value: BackOff } ] }
      end: { all: [ { fact: event, path: $.reason, operator: equal, value: Started } ] }
      timeout: 1h
    actions: [ { destination: chat, body: '{ "r": $region.key }' } ]`;
const PLAIN = `
  - name: plain
    conditions: { all: [ { fact: event, path: $.reason, operator: equal, value: BackOff } ] }
    actions: [ { destination: chat, body: '{ "m": $substring(message, 0, 10) }' } ]`;
const rules = (sink: string) => `
destinations:
  chat: { url: "${sink}/x" }
rules:${MODE === 'digest' ? DIGEST : MODE === 'region' ? REGION : MODE === 'control' ? PLAIN : DIGEST + REGION}
`;

describe('cut texts of kept occurrences', () => {
  let sink: CaptureSink;
  let svc: RunningService;
  before(async () => {
    sink = await startCaptureSink();
    svc = await startService({ rules: { 'r.yaml': rules(sink.url) }, config: { playgroundRecentEvents: 0 } });
  });
  after(async () => {
    await svc.stop();
    await sink.close();
  });

  it(`${N} occurrences with ~0.9 MB messages, each kept in its digest group and its open region, hold only their cut texts`, async () => {
    // Warm up (JIT, caches) with small messages.
    for (let i = 0; i < N; i++) assert.equal((await svc.post(hostile(i, 10, 'w'))).status, 204);
    const before = heap();
    for (let i = 0; i < N; i++) assert.equal((await svc.post(hostile(i, BIG, 'b'))).status, 204);
    const grown = (heap() - before) / 2 ** 20;
    console.log(
      `heap grew ${grown.toFixed(1)} MiB for ${N} kept occurrences (cut texts: ~${((N * 2 * (4096 + 1024)) / 2 ** 20).toFixed(1)} MiB at most)`,
    );
    assert.ok(
      grown < 10,
      `${N} kept occurrences hold ${grown.toFixed(1)} MiB: the cut texts keep the whole messages alive`,
    );
  });
});
