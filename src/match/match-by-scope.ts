/**
 * matchByScope matches the rules of each scope with that scope's facts: cluster rules read the cluster,
 * a team's rules read it through teamCluster (their namespace and the allowed cluster-scoped kinds). One
 * set of lazy facts per scope, so a cluster rule's lookup is never handed to a team's template.
 */
import { lazyFacts, type LazyFacts } from '../enrich/lazy-facts.js';
import { teamCluster } from '../enrich/team-cluster.js';
import type { Cluster } from '../enrich/cluster.js';
import type { EventInput } from '../normalize/kube-event.js';
import type { CompiledRule } from '../rules/compiled-rule.js';
import { match, type MatchOptions, type MatchResult } from './match.js';

export type FactsByScope = (scope: string | undefined) => LazyFacts;

/** factsByScope creates each scope's facts on first use. */
export function factsByScope(cluster: Cluster, input: EventInput, teamClusterKinds: ReadonlySet<string>): FactsByScope {
  const made = new Map<string | undefined, LazyFacts>();
  return (scope) => {
    let facts = made.get(scope);
    if (!facts) {
      facts = lazyFacts(scope === undefined ? cluster : teamCluster(cluster, scope, teamClusterKinds), input);
      made.set(scope, facts);
    }
    return facts;
  };
}

export async function matchByScope(
  rules: readonly CompiledRule[],
  input: EventInput,
  facts: FactsByScope,
  options: MatchOptions = {},
): Promise<MatchResult> {
  const first = rules[0]?.scope;
  if (rules.every((rule) => rule.scope === first)) return match(rules, input, facts(first), options);
  const byScope = new Map<string | undefined, CompiledRule[]>();
  for (const rule of rules) {
    const scoped = byScope.get(rule.scope);
    if (scoped) scoped.push(rule);
    else byScope.set(rule.scope, [rule]);
  }
  const results = await Promise.all([...byScope].map(([scope, scoped]) => match(scoped, input, facts(scope), options)));
  return {
    matched: results.flatMap((r) => r.matched),
    failed: results.flatMap((r) => r.failed),
    evaluated: results.flatMap((r) => r.evaluated),
  };
}
