/**
 * Red team: every playground evaluation (and every `kube-event-rules test` run) builds a dry-run pipeline with
 * createDryRunPipeline, which calls createLogger('silent') twice (src/dry-run.ts). Each pino instance made
 * that way leaves ~1.4 KB behind for the life of the process (measured: 5,000 createLogger('silent') keep
 * ~7 MB), so the service's heap grows ~3 KB per POST /playground/api/evaluate, without bound. (Not the
 * rule names: the same draft evaluated again leaks the same.)
 * Run: node --import tsx --test test/redteam/dry-run-logger-leak.test.ts   (N=9000 for a longer run)
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import v8 from 'node:v8';
import vm from 'node:vm';
import { NO_CLUSTER } from '../../src/enrich/cluster.js';
import { evaluateDraft } from '../../src/playground/evaluate-draft.js';
import { crashLoop } from '../support/digest-events.js';

v8.setFlagsFromString('--expose-gc');
const gc = vm.runInNewContext('gc') as () => void;
const heap = () => (gc(), gc(), process.memoryUsage().heapUsed);

const draft = (i: number) => `
destinations:
  d: { url: "https://example.invalid/x" }
rules:
  - name: draft-rule-${'n'.repeat(200)}-${i}
    conditions: { all: [ { fact: event, path: $.reason, operator: equal, value: BackOff } ] }
    actions: [ { destination: d, body: '{ "a": reason }' } ]
`;

it('evaluating drafts leaves nothing behind in the process', async () => {
  const event = JSON.stringify(crashLoop(1));
  const context = { templates: { timeoutMs: 1000, maxOutputBytes: 1 << 20 }, cluster: NO_CLUSTER, env: {} };
  for (let i = 0; i < 200; i++) await evaluateDraft({ document: draft(-i - 1), event }, context);
  const before = heap();
  const N = Number(process.env.N ?? 3000);
  for (let i = 0; i < N; i++) {
    const result = await evaluateDraft({ document: draft(i), event }, context);
    if (i === 0) assert.equal(result.results.length > 0, true, JSON.stringify(result).slice(0, 500));
  }
  const grown = heap() - before;
  console.log(`heap grew ${(grown / 2 ** 20).toFixed(1)} MiB after ${N} drafts (${(grown / N).toFixed(0)} bytes each)`);
  assert.ok(grown < 2 * 2 ** 20, `${N} drafts left ${(grown / 2 ** 20).toFixed(1)} MiB behind`);
});
