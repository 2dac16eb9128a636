/**
 * compileRegion checks and compiles a rule's `region` (start and end conditions, key, timeout) at load. The
 * sides are built by the same condition compiler as `conditions`, so facts and operators behave the same;
 * the rule itself is matched by its conditions (if any) and either side, so rule indexing still files it.
 */
import type { TopLevelCondition } from 'json-rules-engine';
import { compileTemplate, type TemplateOptions } from '../render/template.js';
import { parseDuration } from '../match/throttle.js';
import { buildRule, type RegexBudget } from './conditions.js';
import type { CompiledRegion, RegionSide } from './compiled-rule.js';
import type { RuleSpec } from './document.js';

/** The involved object: a rollout of one Deployment, the readiness of one Node. */
export const DEFAULT_REGION_KEY = 'involvedObject.kind & "/" & involvedObject.namespace & "/" & involvedObject.name';

/** Events live an hour by default; a region open longer than a day is a mistake in the rule. */
export const MAX_REGION_TIMEOUT_MS = 24 * 3_600_000;

/**
 * compileRegion returns the compiled region and the conditions the rule is matched by, or pushes its
 * problems (each starting with the rule's location) and returns nothing.
 */
export function compileRegion(
  spec: RuleSpec,
  shadow: boolean,
  where: string,
  budget: RegexBudget,
  options: TemplateOptions,
  problems: string[],
): { region?: CompiledRegion; conditions?: TopLevelCondition } {
  const region = spec.region;
  if (!region) {
    if (!spec.conditions) problems.push(`${where}: must have required property 'conditions'`); // the schema says so first
    return { conditions: spec.conditions };
  }
  const before = problems.length;
  if (spec.throttle)
    problems.push(
      `${where}.throttle: a region rule sends once per start and end already; remove throttle (or the region)`,
    );
  if (shadow)
    problems.push(
      `${where}.region: a shadow rule cannot have a region (a shadow rule records nothing, so it could never pair a start with its end)`,
    );
  const side = (name: 'start' | 'end'): RegionSide | undefined => {
    const built = buildRule(`${spec.name} (region ${name})`, region[name], budget);
    problems.push(...built.problems.map((p) => `${where}.region.${name}${p.replace(/^conditions/, '')}`));
    return built.rule ? { rule: built.rule, test: built.test } : undefined;
  };
  const start = side('start');
  const end = side('end');
  let timeoutMs = 0;
  try {
    timeoutMs = parseDuration(region.timeout);
    if (!(timeoutMs > 0) || timeoutMs > MAX_REGION_TIMEOUT_MS)
      problems.push(`${where}.region.timeout: ${JSON.stringify(region.timeout)} must be more than 0 and at most 24h`);
  } catch (err) {
    problems.push(`${where}.region.timeout: ${(err as Error).message}`);
  }
  let key;
  try {
    key = compileTemplate(region.key ?? DEFAULT_REGION_KEY, options);
  } catch (err) {
    problems.push(`${where}.region.key: ${(err as Error).message}`);
  }
  if (problems.length > before || !start || !end || !key) return {};
  const either = { any: [region.start, region.end] };
  // Top-level `all` leaves stay at the top, where the rule index looks for `equal`/`in` conditions.
  const own = spec.conditions as { all?: unknown[] } | undefined;
  const conditions = (
    own === undefined ? either : Array.isArray(own.all) ? { all: [...own.all, either] } : { all: [own, either] }
  ) as TopLevelCondition;
  return { region: { key, start, end, timeoutMs }, conditions };
}
