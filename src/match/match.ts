/**
 * match evaluates an event against the rules in force and returns the rules that fire. Each event gets
 * its own Almanac (facts and their cache); enrichment facts are fetched only if a condition reads them.
 */
import { Almanac } from 'json-rules-engine';
import type { CompiledRule } from '../rules/compile-document.js';
import type { EventInput } from '../normalize/kube-event.js';
import { resolvePath } from '../rules/path-resolver.js';
import type { LazyFacts } from '../enrich/lazy-facts.js';

export interface MatchResult {
  matched: CompiledRule[];
  /** Rules whose evaluation failed (e.g. a fact lookup threw); they do not fire. */
  failed: { rule: CompiledRule; error: string }[];
  /** Every evaluated rule with json-rules-engine's condition tree (fact and result per condition). */
  evaluated: { rule: CompiledRule; matched: boolean; conditions: unknown }[];
}

export async function match(rules: readonly CompiledRule[], input: EventInput, facts: LazyFacts): Promise<MatchResult> {
  const candidates = rules.filter((rule) => rule.on.has(input.change));
  if (candidates.length === 0) return { matched: [], failed: [], evaluated: [] };
  const almanac = new Almanac({ allowUndefinedFacts: true, pathResolver: resolvePath as never });
  // Constant facts are never looked up in the fact cache; caching them only hashes the whole event.
  almanac.addFact('event', input.event, { cache: false });
  almanac.addFact('cloudevent', input.cloudevent, { cache: false });
  almanac.addFact('change', input.change, { cache: false });
  for (const [name, load] of Object.entries(facts)) almanac.addFact(name, () => load(), { cache: true });
  const outcomes = await Promise.all(
    candidates.map((rule) =>
      rule.rule.evaluate(almanac).then(
        (result) => ({ rule, result: result.result === true, conditions: result.conditions }),
        (err: unknown) => ({ rule, error: err instanceof Error ? err.message : String(err) }),
      ),
    ),
  );
  const result: MatchResult = { matched: [], failed: [], evaluated: [] };
  for (const outcome of outcomes) {
    if ('error' in outcome) {
      result.failed.push({ rule: outcome.rule, error: outcome.error });
      continue;
    }
    if (outcome.result) result.matched.push(outcome.rule);
    result.evaluated.push({ rule: outcome.rule, matched: outcome.result, conditions: outcome.conditions });
  }
  return result;
}
