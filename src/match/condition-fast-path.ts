/**
 * A synchronous evaluator for the common rule conditions, with json-rules-engine's semantics.
 *
 * Why: `rule.evaluate(almanac)` clones the condition tree and builds a promise chain and a debug record
 * per condition — ≈ 22 KB of garbage per candidate rule (docs/performance.md). Most conditions only read
 * the event, the CloudEvent and the change, which are known before matching starts, so they can be
 * answered without the engine.
 *
 * How it stays identical to the engine: it walks json-rules-engine's own parsed tree (`Rule.conditions`,
 * so `all`/`any`/`not` are read exactly as the engine reads them), resolves fact paths the way
 * `Almanac.factValue` does with the same resolver, and compares with the engine's own Operator objects.
 * Where the engine could behave otherwise it is not used: a condition reading an enrichment fact (async),
 * a decorated operator, a condition reference. And when any comparison throws,
 * the rule goes to the engine, which then reports its own error — so, unlike the engine, it evaluates every
 * condition instead of short-circuiting (an engine error can never hide behind a short-circuit here).
 * Held to the engine by a property test over random conditions and events (test/match/condition-fast-path.test.ts).
 */
import { resolvePath } from '../rules/path-resolver.js';

/** The facts known before matching; enrichment facts are not among them. */
export interface KnownFacts {
  event: unknown;
  cloudevent: unknown;
  change: unknown;
}

const KNOWN_FACTS = new Set<string>(['event', 'cloudevent', 'change']);

/** What a rule's conditions say, or ENGINE when json-rules-engine must answer this evaluation. */
export const ENGINE = Symbol('evaluate with json-rules-engine');
export type Verdict = boolean | typeof ENGINE;
export type ConditionTest = (facts: KnownFacts) => Verdict;

/** The parts of json-rules-engine's Condition that the walk reads. */
interface ParsedCondition {
  operator?: string;
  fact?: string;
  path?: string;
  value?: unknown;
  all?: ParsedCondition[];
  any?: ParsedCondition[];
  not?: ParsedCondition;
  condition?: unknown;
}

/** json-rules-engine's Operator: the validator and the comparison (its type declarations leave this out). */
export interface EngineOperator {
  evaluate(factValue: unknown, jsonValue: unknown): unknown;
}

type Leaf = (facts: KnownFacts) => unknown;

/**
 * compileConditionTest returns a test for a rule's parsed condition tree, or undefined when the tree
 * needs the engine (see above). `operator` looks an operator up in the engine the rules are bound to.
 */
export function compileConditionTest(
  root: ParsedCondition,
  operator: (name: string) => EngineOperator | undefined,
): ConditionTest | undefined {
  const compile = (node: ParsedCondition): ((facts: KnownFacts) => Verdict) | undefined => {
    // The engine's own order: any, then all, then not (Condition.booleanOperator).
    const group = Object.hasOwn(node, 'any')
      ? 'any'
      : Object.hasOwn(node, 'all')
        ? 'all'
        : Object.hasOwn(node, 'not')
          ? 'not'
          : undefined;
    if (group === 'not') {
      const inner = compile(node.not!);
      return inner && ((facts) => negate(inner(facts)));
    }
    if (group) {
      const children = (node[group] as ParsedCondition[]).map(compile);
      if (children.some((child) => child === undefined)) return undefined;
      return combine(children as ((facts: KnownFacts) => Verdict)[], group);
    }
    if (Object.hasOwn(node, 'condition')) return undefined;
    return compileLeaf(node);
  };

  const compileLeaf = (node: ParsedCondition): ((facts: KnownFacts) => Verdict) | undefined => {
    const name = node.operator ?? '';
    const op = name.includes(':') ? undefined : operator(name);
    const left = factReader(node.fact, node.path);
    if (!op || !left) return undefined;
    const value = node.value;
    let right: Leaf;
    if (value !== null && typeof value === 'object' && Object.hasOwn(value, 'fact')) {
      const ref = value as { fact?: string; path?: string };
      const reader = factReader(ref.fact, ref.path);
      if (!reader || name === 'matches') return undefined; // a pattern from the event: compiled and cached per value
      right = reader;
    } else {
      right = () => value;
    }
    return (facts) => {
      try {
        return op.evaluate(left(facts), right(facts)) === true;
      } catch {
        return ENGINE; // the engine reports the error in its own words
      }
    };
  };

  return compile(root);
}

/** factReader reads a fact as Almanac.factValue does: a path applies to objects only, else the value itself. */
function factReader(fact: string | undefined, path: string | undefined): Leaf | undefined {
  if (fact === undefined || !KNOWN_FACTS.has(fact)) return undefined;
  const key = fact as keyof KnownFacts;
  if (!path) return (facts) => facts[key];
  return (facts) => {
    const value = facts[key];
    return value !== null && typeof value === 'object' ? resolvePath(value, path) : value;
  };
}

function negate(verdict: Verdict): Verdict {
  return verdict === ENGINE ? ENGINE : !verdict;
}

/** combine: every child is evaluated (no short-circuit, see above); an empty list is true, as in the engine. */
function combine(children: ((facts: KnownFacts) => Verdict)[], group: 'all' | 'any'): (facts: KnownFacts) => Verdict {
  return (facts) => {
    if (children.length === 0) return true;
    let result = group === 'all';
    for (const child of children) {
      const verdict = child(facts);
      if (verdict === ENGINE) return ENGINE;
      result = group === 'all' ? result && verdict : result || verdict;
    }
    return result;
  };
}
