/**
 * Cost of one template evaluation outside the fast path: in-process JSONata, and a round trip through the
 * template sandbox's worker processes (sequential, and 1,000 at once), for the pagerduty preset (its
 * `$join` is outside the fast path); and the fast path itself, for the wavefront-event preset.
 */
import { PRESETS } from '../src/render/presets.js';
import { createTemplateSandbox } from '../src/render/template-sandbox.js';
import { compileTemplate } from '../src/render/template.js';
import { loadFixture } from '../test/support/fixtures.js';

const event = loadFixture('pod-backoff-crashloop-resource-update').body;
const bindings = {
  rule: { name: 'r', description: '' },
  occurrence: 'o',
  change: 'add',
  cloudevent: { type: 't', id: 'i', source: 's' },
  object: null,
  owner: null,
  namespace: null,
};
const body = PRESETS.pagerduty.body;
const sandbox = createTemplateSandbox({ workers: 2, budgetMs: 100, heapMb: 64, maxOutputBytes: 1 << 20 });
const inProcess = compileTemplate(body, { timeoutMs: 60_000 }); // wall clock: generous, the machine may be busy
const inWorker = compileTemplate(body, { timeoutMs: 100, sandbox });

async function perCall(label: string, n: number, run: () => Promise<unknown>): Promise<void> {
  for (let i = 0; i < 200; i++) await run();
  const started = performance.now();
  for (let i = 0; i < n; i++) await run();
  console.log(`${label}: ${(((performance.now() - started) / n) * 1000).toFixed(0)} µs per evaluation (sequential)`);
}
const fast = compileTemplate(PRESETS['wavefront-event'].body, { timeoutMs: 100, sandbox });
await perCall('fast path (wavefront-event)', 2000, () => fast.render(event, bindings));
await perCall('in process', 2000, () => inProcess.render(event, bindings));
await perCall('worker round trip', 2000, () => inWorker.render(event, bindings));
const started = performance.now();
await Promise.all(Array.from({ length: 1000 }, () => inWorker.render(event, bindings)));
console.log(`worker, 1,000 at once: ${(performance.now() - started).toFixed(0)} ms in all`);
// What the main thread itself spends: CPU time is not skewed by a busy machine the way wall time is.
const mainCpu = async (label: string, run: () => Promise<unknown>) => {
  const cpu = process.cpuUsage();
  await Promise.all(Array.from({ length: 2000 }, run));
  const used = process.cpuUsage(cpu);
  console.log(`${label}: ${((used.user + used.system) / 2000).toFixed(0)} µs of main-thread CPU per evaluation`);
};
await mainCpu('sent to a worker', () => inWorker.render(event, bindings));
await mainCpu('evaluated in process', () => inProcess.render(event, bindings));
await sandbox.close();
