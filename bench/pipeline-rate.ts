/**
 * In-process pipeline rate: parse → normalize → match → render for a stream of events, no HTTP, with
 * or without the rule index.
 */
import { match } from '../src/match/match.js';
import { NO_FACTS } from '../src/enrich/lazy-facts.js';
import { createLogger } from '../src/log.js';
import { createMetrics } from '../src/metrics.js';
import { normalize } from '../src/normalize/normalize.js';
import { OccurrenceTracker } from '../src/normalize/occurrence.js';
import { parseCloudEvents } from '../src/receive/parse-cloudevents.js';
import { renderRequest } from '../src/render/render-request.js';
import { NO_CLUSTER_SECRETS } from '../src/render/value-source.js';
import { RuleStore } from '../src/rules/rule-store.js';
import { event, ruleFiles } from './workload.js';

export async function measurePipeline(
  ruleCount: number,
  indexed: boolean,
  seconds: number,
  namespaces?: number,
): Promise<{ rate: number; matchesPerEvent: number }> {
  const store = new RuleStore({ timeoutMs: 100 }, createMetrics(), createLogger('silent'));
  for (const [name, text] of Object.entries(ruleFiles(ruleCount, 'http://127.0.0.1:9', namespaces))) {
    const problems = store.update(`file:${name}`, text);
    if (problems.length > 0) throw new Error(problems.join('\n'));
  }
  const tracker = new OccurrenceTracker(100_000);
  const { rules, index } = store.current;
  let matches = 0;
  const one = async (i: number) => {
    const { headers, body } = event(i, namespaces);
    const [ce] = parseCloudEvents(headers, body);
    const normalized = normalize(ce, tracker);
    if (normalized.kind !== 'input') return;
    const input = normalized.input;
    const result = await match(indexed ? index.candidates(input) : rules, input, NO_FACTS);
    for (const rule of result.matched) {
      matches++;
      for (const action of rule.actions) {
        await renderRequest(action, {
          input: input.event,
          bindings: { occurrence: input.occurrence, rule: { name: rule.name } },
          secrets: NO_CLUSTER_SECRETS,
          env: {},
        });
      }
    }
  };
  for (let i = 0; i < 300; i++) await one(i); // warm-up
  matches = 0;
  let count = 0;
  const end = performance.now() + seconds * 1000;
  const started = performance.now();
  while (performance.now() < end) await one(1000 + count++);
  return { rate: count / ((performance.now() - started) / 1000), matchesPerEvent: matches / count };
}
