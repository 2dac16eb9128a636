/**
 * kube-event-rules validate [--team <namespace>] <files|dirs> — checks rule documents (or ConfigMap
 * manifests holding them) exactly as the service would load them; with --team, as a team's documents in
 * that namespace under the tenancy policy of the TEAM_* and DESTINATION_HOSTS_* settings in the environment.
 * Exit 0 with a one-line summary, or 1 with every problem.
 */
import { createLogger } from '../log.js';
import { createMetrics } from '../metrics.js';
import { RuleStore } from '../rules/rule-store.js';
import { compileTenancyPolicy, type TenancyPolicy } from '../rules/tenancy-policy.js';
import { loadConfig } from '../config.js';
import { loadRuleFiles } from './rule-files.js';
import { withFilePositions } from './file-positions.js';

export async function validateCommand(
  args: string[],
  print: (line: string) => void,
  env: Record<string, string | undefined> = process.env,
): Promise<number> {
  const team = args[0] === '--team' ? args[1] : undefined;
  const paths = args[0] === '--team' ? args.slice(2) : args;
  if (paths.length === 0 || (args[0] === '--team' && !team)) {
    print('usage: kube-event-rules validate [--team <namespace>] <file|dir>...');
    return 2;
  }
  let policy: TenancyPolicy | undefined;
  try {
    policy = team === undefined ? undefined : compileTenancyPolicy(loadConfig(env).tenancy);
  } catch (err) {
    print(`kube-event-rules validate: ${(err as Error).message}`);
    return 2;
  }
  const store = newStore(100, policy);
  const sources = await loadRuleFiles(store, paths, team);
  const problems = await withFilePositions(store.status());
  if (problems.length > 0) {
    for (const problem of problems) print(`✗ ${problem}`);
    print(`${problems.length} problem${problems.length === 1 ? '' : 's'} in ${paths.join(' ')}`);
    return 1;
  }
  print(
    `ok: ${sources} rule source${sources === 1 ? '' : 's'}, ${store.current.rules.length} rule${store.current.rules.length === 1 ? '' : 's'}`,
  );
  return 0;
}

/** newStore: a rule store for the CLI (its own metrics, silent log; problems are printed by the caller). */
export function newStore(templateTimeoutMs = 100, policy?: TenancyPolicy): RuleStore {
  return new RuleStore({ timeoutMs: templateTimeoutMs }, createMetrics(), createLogger('silent'), policy);
}
