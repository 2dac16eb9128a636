/**
 * How long loading a 1 MB rule document (a full ConfigMap) blocks the event loop: the blocking load
 * (RuleStore.update) against the background load the watchers use (updateInBackground: worker-thread parse,
 * compile in slices). Cold (unique rules) and warm (the same text again, as after an unrelated edit).
 *   npx tsx bench/rule-load-block.ts blocking|background   (one mode per process: heaps do not mix)
 */
import pino from 'pino';
import { createMetrics } from '../src/metrics.js';
import { RuleStore } from '../src/rules/rule-store.js';

function largeDocument(bytes: number, tag: string): string {
  let out = 'destinations:\n  out: { kind: log }\nrules:\n';
  for (let i = 0; out.length < bytes; i++) {
    out += `  - name: ${tag}-${i}\n    conditions:\n      all:\n        - { fact: event, path: $.reason, operator: equal, value: Reason${i % 50} }\n        - { fact: event, path: $.message, operator: matches, value: "^Back-off ${tag} ${i}" }\n    actions:\n      - destination: out\n        body: '{ "text": message, "n": ${i}, "tag": "${tag}", "kind": involvedObject.kind }'\n`;
  }
  return out;
}

/** measure loads while a 1 ms timer runs: the longest gap between its turns is the longest block. */
async function measure(label: string, load: () => unknown): Promise<void> {
  let last = performance.now();
  let longest = 0;
  const gaps: number[] = [];
  const timer = setInterval(() => {
    const now = performance.now();
    gaps.push(now - last);
    longest = Math.max(longest, now - last);
    last = now;
  }, 1);
  const started = performance.now();
  await load();
  const took = performance.now() - started;
  longest = Math.max(longest, performance.now() - last);
  clearInterval(timer);
  const over50 = gaps.filter((gap) => gap > 50).length;
  const rss = Math.round(process.memoryUsage().rss / 1e6);
  console.log(
    `${label.padEnd(40)} load ${took.toFixed(0).padStart(5)} ms   longest block ${longest.toFixed(0).padStart(5)} ms   blocks > 50 ms: ${String(over50).padStart(3)}   RSS ${rss} MB`,
  );
}

const log = pino({ level: 'silent' });
const mode = process.argv[2] === 'blocking' ? 'blocking' : 'background';
for (const round of [1, 2]) {
  const store = new RuleStore({ timeoutMs: 100 }, createMetrics(), log);
  const text = largeDocument(1_000_000, `${mode}${round}`);
  const load = mode === 'blocking' ? () => store.update('cm', text) : () => store.updateInBackground('cm', text);
  await measure(`${mode} cold #${round}`, load);
  await measure(`${mode} warm (same text) #${round}`, load);
}
