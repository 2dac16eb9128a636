/**
 * RuleIndex: so that an event only evaluates the rules that can match it. Each rule is filed under one
 * top-level `all` condition that requires a fact to equal a value (or be in a list of values) — its reason,
 * involved kind, namespace, CloudEvent type… An event looks up its own value for every indexed path and
 * evaluates only those rules plus the rules that have no such condition. Results are identical to
 * evaluating every rule (test/match/rule-index.test.ts compares both on random rules and events).
 */
import type { EventInput } from '../normalize/kube-event.js';
import type { CompiledRule } from '../rules/compiled-rule.js';
import { resolvePath } from '../rules/path-resolver.js';

type Primitive = string | number | boolean | null;

/** Facts known before matching; `object` is fetched lazily and never indexed. */
const INDEXABLE_FACTS = new Set(['event', 'cloudevent', 'change']);

interface Dimension {
  fact: string;
  path: string | undefined;
  byValue: Map<Primitive, number[]>;
}

export interface RuleIndex {
  /** candidates returns, in rule order, the rules that may match this event. */
  candidates(input: EventInput): CompiledRule[];
  /** How many rules could be filed under a condition (the rest are evaluated for every event). */
  readonly indexed: number;
}

interface Key {
  fact: string;
  path: string | undefined;
  values: Primitive[];
}

const isPrimitive = (value: unknown): value is Primitive =>
  value === null || ['string', 'number', 'boolean'].includes(typeof value);

const dimensionId = (key: Key) => `${key.fact}\u0000${key.path ?? ''}`;

/** indexKeys lists the conditions a rule could be filed under. */
function indexKeys(rule: CompiledRule): Key[] {
  const all = (rule.conditions as { all?: unknown[] }).all;
  if (!Array.isArray(all)) return [];
  const keys: Key[] = [];
  for (const condition of all) {
    if (typeof condition !== 'object' || condition === null) continue;
    const { fact, path, operator, value, params } = condition as Record<string, unknown>;
    if (typeof fact !== 'string' || !INDEXABLE_FACTS.has(fact) || params !== undefined) continue;
    if (path !== undefined && typeof path !== 'string') continue;
    if (operator === 'equal' && isPrimitive(value)) keys.push({ fact, path, values: [value] });
    if (operator === 'in' && Array.isArray(value) && value.length > 0 && value.every(isPrimitive))
      keys.push({ fact, path, values: value });
  }
  return keys;
}

export function buildRuleIndex(rules: readonly CompiledRule[]): RuleIndex {
  // Selectivity of a dimension ≈ how many distinct values rules ask for there (type: 2, reason or
  // namespace: many). Each rule is filed under its most selective condition.
  const keysByRule = rules.map(indexKeys);
  const distinct = new Map<string, Set<Primitive>>();
  for (const key of keysByRule.flat()) {
    const values = distinct.get(dimensionId(key)) ?? new Set();
    for (const value of key.values) values.add(value);
    distinct.set(dimensionId(key), values);
  }
  const selectivity = (key: Key) => distinct.get(dimensionId(key))!.size / key.values.length;

  const dimensions = new Map<string, Dimension>();
  const always: number[] = [];
  rules.forEach((_rule, position) => {
    const key = keysByRule[position].sort((a, b) => selectivity(b) - selectivity(a))[0];
    if (!key) {
      always.push(position);
      return;
    }
    const id = dimensionId(key);
    let dimension = dimensions.get(id);
    if (!dimension) dimensions.set(id, (dimension = { fact: key.fact, path: key.path, byValue: new Map() }));
    for (const value of new Set(key.values)) {
      const list = dimension.byValue.get(value) ?? [];
      list.push(position);
      dimension.byValue.set(value, list);
    }
  });
  const dimensionList = [...dimensions.values()];
  return {
    indexed: rules.length - always.length,
    candidates(input) {
      const positions = [...always];
      for (const dimension of dimensionList) {
        const factValue =
          dimension.fact === 'event' ? input.event : dimension.fact === 'cloudevent' ? input.cloudevent : input.change;
        const value = dimension.path === undefined ? factValue : resolvePath(factValue, dimension.path);
        if (!isPrimitive(value)) continue;
        const found = dimension.byValue.get(value);
        if (found) positions.push(...found);
      }
      if (positions.length === always.length) return always.map((p) => rules[p]);
      return positions.sort((a, b) => a - b).map((p) => rules[p]);
    },
  };
}
