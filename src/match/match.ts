/**
 * match evaluates an event against the rules in force and returns the rules that fire. Rules whose
 * conditions read only the event, the CloudEvent and the change are answered by their synchronous test
 * (src/match/condition-fast-path.ts); the others — and every rule when explaining — by json-rules-engine,
 * with one Almanac per event (facts and their cache) whose enrichment facts are fetched only if a
 * condition reads them.
 */
import { Almanac } from 'json-rules-engine';
import type { CompiledRule } from '../rules/compiled-rule.js';
import type { EventInput } from '../normalize/kube-event.js';
import { resolvePath } from '../rules/path-resolver.js';
import type { LazyFacts } from '../enrich/lazy-facts.js';
import { ENGINE, type KnownFacts } from './condition-fast-path.js';

export interface MatchResult {
  matched: CompiledRule[];
  /** Rules whose evaluation failed (e.g. a fact lookup threw); they do not fire. `cause` is what was thrown. */
  failed: { rule: CompiledRule; error: string; cause: unknown }[];
  /** With `explain`: every evaluated rule with json-rules-engine's condition tree (fact and result per condition). */
  evaluated: { rule: CompiledRule; matched: boolean; conditions: unknown }[];
}

export interface MatchOptions {
  /** Evaluate every rule with json-rules-engine and keep its condition trees (dry runs explain them). */
  explain?: boolean;
}

type Outcome =
  { rule: CompiledRule; result: boolean; conditions?: unknown } | { rule: CompiledRule; error: string; cause: unknown };

export async function match(
  rules: readonly CompiledRule[],
  input: EventInput,
  facts: LazyFacts,
  { explain = false }: MatchOptions = {},
): Promise<MatchResult> {
  const candidates = rules.filter((rule) => rule.on.has(input.change));
  const result: MatchResult = { matched: [], failed: [], evaluated: [] };
  if (candidates.length === 0) return result;
  const known: KnownFacts = { event: input.event, cloudevent: input.cloudevent, change: input.change };
  let almanac: Almanac | undefined;
  const outcomes: (Outcome | Promise<Outcome>)[] = candidates.map((rule) => {
    const verdict = explain || !rule.test ? ENGINE : rule.test(known);
    if (verdict !== ENGINE) return { rule, result: verdict };
    almanac ??= newAlmanac(input, facts);
    return rule.rule.evaluate(almanac).then(
      (evaluation) => ({ rule, result: evaluation.result === true, conditions: evaluation.conditions }),
      (err: unknown) => ({ rule, error: err instanceof Error ? err.message : String(err), cause: err }),
    );
  });
  for (const outcome of almanac ? await Promise.all(outcomes) : (outcomes as Outcome[])) {
    if ('error' in outcome) {
      result.failed.push({ rule: outcome.rule, error: outcome.error, cause: outcome.cause });
      continue;
    }
    if (outcome.result) result.matched.push(outcome.rule);
    if (explain) result.evaluated.push({ rule: outcome.rule, matched: outcome.result, conditions: outcome.conditions });
  }
  return result;
}

function newAlmanac(input: EventInput, facts: LazyFacts): Almanac {
  const almanac = new Almanac({ allowUndefinedFacts: true, pathResolver: resolvePath as never });
  // Constant facts are never looked up in the fact cache; caching them only hashes the whole event.
  almanac.addFact('event', input.event, { cache: false });
  almanac.addFact('cloudevent', input.cloudevent, { cache: false });
  almanac.addFact('change', input.change, { cache: false });
  for (const [name, load] of Object.entries(facts)) almanac.addFact(name, () => load(), { cache: true });
  return almanac;
}
