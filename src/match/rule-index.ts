/**
 * RuleIndex: so that an event only evaluates the rules that can match it. Each rule is filed under one
 * top-level `all` condition that requires a fact to equal a value (or be in a list of values) — its reason,
 * involved kind, namespace, CloudEvent type… An event looks up its own value for every indexed path and
 * evaluates only those rules plus the rules that have no such condition. Results are identical to
 * evaluating every rule (test/match/rule-index.test.ts compares both on random rules and events).
 */
import type { EventInput } from '../normalize/kube-event.js';
import type { CompiledRule } from '../rules/compile-document.js';
import { resolvePath } from '../rules/path-resolver.js';

type Primitive = string | number | boolean | null;

/** Facts known before matching; `object` is fetched lazily and never indexed. */
const INDEXABLE_FACTS = new Set(['event', 'cloudevent', 'change']);

/** Paths that usually split rules best, in order of preference. */
const PREFERRED_PATHS = ['$.reason', '$.type', '$.involvedObject.kind', '$.involvedObject.namespace', '$.metadata.namespace'];

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

/** indexKey finds the condition a rule can be filed under, if it has one. */
function indexKey(rule: CompiledRule): Key | undefined {
  const all = (rule.conditions as { all?: unknown[] }).all;
  if (!Array.isArray(all)) return undefined;
  const keys: Key[] = [];
  for (const condition of all) {
    if (typeof condition !== 'object' || condition === null) continue;
    const { fact, path, operator, value, params } = condition as Record<string, unknown>;
    if (typeof fact !== 'string' || !INDEXABLE_FACTS.has(fact) || params !== undefined) continue;
    if (path !== undefined && typeof path !== 'string') continue;
    if (operator === 'equal' && isPrimitive(value)) keys.push({ fact, path, values: [value] });
    if (operator === 'in' && Array.isArray(value) && value.length > 0 && value.every(isPrimitive)) keys.push({ fact, path, values: value });
  }
  const rank = (key: Key) => {
    const preferred = PREFERRED_PATHS.indexOf(key.path ?? '');
    return (preferred < 0 ? PREFERRED_PATHS.length : preferred) * 1000 + key.values.length;
  };
  return keys.sort((a, b) => rank(a) - rank(b))[0];
}

export function buildRuleIndex(rules: readonly CompiledRule[]): RuleIndex {
  const dimensions = new Map<string, Dimension>();
  const always: number[] = [];
  rules.forEach((rule, position) => {
    const key = indexKey(rule);
    if (!key) {
      always.push(position);
      return;
    }
    const id = `${key.fact}\u0000${key.path ?? ''}`;
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
        const factValue = dimension.fact === 'event' ? input.event : dimension.fact === 'cloudevent' ? input.cloudevent : input.change;
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
