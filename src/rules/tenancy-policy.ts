/**
 * The tenancy policy: what a rule document of each scope may be, read and send, compiled once from the
 * settings. Every rule document passes through it at load (RuleStore), and the pipeline asks it what
 * only an event can tell (the host a URL resolved to).
 *
 * Scopes: RULES_DIR files and ConfigMaps of the cluster namespaces are the cluster scope; a ConfigMap
 * in any other namespace belongs to that namespace's team. A rule's identity is (scope, name):
 * - the cluster scope owns its names: a team's rule named like a cluster rule is rejected, never the other way;
 * - two sources of one scope defining the same name: the later one in SOURCE ORDER is rejected whole;
 * - two teams may use the same name (their rules never see each other's events); metric labels and
 *   reports name a team's rule `namespace/name`.
 */
import type { CompiledRule } from './compile-document.js';

export interface TenancySettings {
  /** Most rules in force per team namespace (all its documents together). */
  rulesPerNamespace: number;
}

export const DEFAULT_TENANCY: TenancySettings = {
  rulesPerNamespace: 100,
};

/** One source's rules as the store holds them, in no particular order. */
export interface SourceRules {
  source: string;
  /** The team namespace; undefined for the cluster scope. */
  scope?: string;
  rules: readonly CompiledRule[];
}

export interface TenancyPolicy {
  readonly settings: TenancySettings;
  /**
   * arbitrate decides which sources are in force together: it walks them in source order and returns the
   * problems of every source it rejects (a name clash, a namespace over its rule quota). The problems
   * belong to the rejected source — always the later one, never the one already in force.
   */
  arbitrate(sources: readonly SourceRules[]): Map<string, string[]>;
}

/**
 * Source order — stable across restarts because it depends on names only: the cluster scope first
 * (RULES_DIR files by file name, then cluster ConfigMaps by namespace/name/key), then team documents
 * (by namespace/name/key).
 */
export function bySourceOrder(a: SourceRules, b: SourceRules): number {
  const rank = (s: SourceRules) => (s.scope === undefined ? 0 : 2) + (s.source.startsWith('file:') ? 0 : 1);
  return rank(a) - rank(b) || (a.source < b.source ? -1 : a.source > b.source ? 1 : 0);
}

/** qualifiedName: how a rule is named in metrics, logs, reports and /status (unique across scopes). */
export function qualifiedName(scope: string | undefined, name: string): string {
  return scope === undefined ? name : `${scope}/${name}`;
}

export function compileTenancyPolicy(settings: TenancySettings = DEFAULT_TENANCY): TenancyPolicy {
  return {
    settings,
    arbitrate(sources) {
      const rejected = new Map<string, string[]>();
      const clusterNames = new Map<string, string>();
      const teamNames = new Map<string, Map<string, string>>();
      const teamRules = new Map<string, number>();
      for (const { source, scope, rules } of [...sources].sort(bySourceOrder)) {
        const problems: string[] = [];
        const own = scope === undefined ? clusterNames : (teamNames.get(scope) ?? new Map<string, string>());
        for (const rule of rules) {
          const cluster = clusterNames.get(rule.declaredName);
          if (scope !== undefined && cluster) {
            problems.push(`rule "${rule.declaredName}" has the name of a cluster rule (${cluster}); a team's rule cannot replace it: rename it`);
          } else if (own.has(rule.declaredName)) {
            problems.push(`rule "${rule.declaredName}" is already defined in ${own.get(rule.declaredName)}, which comes first (${scope === undefined ? 'RULES_DIR files by name, then ConfigMaps by namespace/name/key' : 'ConfigMaps by name, then key'})`);
          }
        }
        if (scope !== undefined) {
          const count = teamRules.get(scope) ?? 0;
          if (count + rules.length > settings.rulesPerNamespace) {
            problems.push(`namespace ${scope} would have ${count + rules.length} rules; at most ${settings.rulesPerNamespace} are allowed per team namespace (TEAM_MAX_RULES)`);
          }
        }
        if (problems.length > 0) {
          rejected.set(source, problems.map((p) => `${source}: ${p}; this document is not in force`));
          continue;
        }
        for (const rule of rules) own.set(rule.declaredName, source);
        if (scope !== undefined) {
          teamNames.set(scope, own);
          teamRules.set(scope, (teamRules.get(scope) ?? 0) + rules.length);
        }
      }
      return rejected;
    },
  };
}
