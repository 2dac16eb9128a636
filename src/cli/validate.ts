/**
 * kube-event-rules validate <files|dirs> — checks rule documents (or ConfigMap manifests holding them)
 * exactly as the service would load them. Exit 0 with a one-line summary, or 1 with every problem.
 */
import { createLogger } from '../log.js';
import { createMetrics } from '../metrics.js';
import { RuleStore } from '../rules/rule-store.js';
import { loadRuleFiles } from './rule-files.js';

export async function validateCommand(paths: string[], print: (line: string) => void): Promise<number> {
  if (paths.length === 0) {
    print('usage: kube-event-rules validate <file|dir>...');
    return 2;
  }
  const store = newStore();
  const sources = await loadRuleFiles(store, paths);
  const problems = store.status().flatMap((s) => s.errors);
  if (problems.length > 0) {
    for (const problem of problems) print(`✗ ${problem}`);
    print(`${problems.length} problem${problems.length === 1 ? '' : 's'} in ${paths.join(' ')}`);
    return 1;
  }
  print(`ok: ${sources} rule source${sources === 1 ? '' : 's'}, ${store.current.rules.length} rule${store.current.rules.length === 1 ? '' : 's'}`);
  return 0;
}

/** newStore: a rule store for the CLI (its own metrics, silent log; problems are printed by the caller). */
export function newStore(templateTimeoutMs = 100): RuleStore {
  return new RuleStore({ timeoutMs: templateTimeoutMs }, createMetrics(), createLogger('silent'));
}
