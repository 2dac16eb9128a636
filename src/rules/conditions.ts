/**
 * Conditions are json-rules-engine syntax verbatim. This module checks them at load (facts, paths,
 * operators, regexes) and turns them into json-rules-engine Rules bound to one shared engine that only
 * supplies operators: events are evaluated with `rule.evaluate(almanac)` and a fresh Almanac per event,
 * never with `engine.run()`, whose engine-wide status makes overlapping runs silently drop rules
 * (libraries.md §3.4).
 */
import { Engine, Rule, type TopLevelCondition } from 'json-rules-engine';
import { parsePath, resolvePath } from './path-resolver.js';
import { compileConditionTest, type ConditionTest, type EngineOperator } from '../match/condition-fast-path.js';
import { RegexSyntaxError, compileLinearRegex, type LinearRegExp } from '../render/linear-regex.js';
import { trimOldest } from '../bounded-map.js';

export const FACTS = ['event', 'cloudevent', 'change', 'object', 'owner', 'namespace'] as const;

const BUILT_IN_OPERATORS = [
  'equal', 'notEqual', 'in', 'notIn', 'contains', 'doesNotContain',
  'lessThan', 'lessThanInclusive', 'greaterThan', 'greaterThanInclusive',
];
const CUSTOM_OPERATORS = ['matches', 'startsWith', 'endsWith'];
const DECORATORS = ['someFact', 'someValue', 'everyFact', 'everyValue', 'swap', 'not'];
export const OPERATORS = [...BUILT_IN_OPERATORS, ...CUSTOM_OPERATORS];

/**
 * Regexes are compiled once, when their rule loads; a pattern read from an event (`value: {fact: …}`) is
 * compiled when it arrives, so the cache is bounded.
 */
const regexes = new Map<string, LinearRegExp>();
const REGEX_CACHE_CAPACITY = 10_000;

/**
 * compileRegex accepts `pattern` or `/pattern/flags` and compiles it for RE2 (linear-time matching, see
 * src/render/linear-regex.ts); throws a RegexSyntaxError naming the position when RE2 cannot run it.
 */
export function compileRegex(pattern: string): LinearRegExp {
  let regex = regexes.get(pattern);
  if (!regex) {
    const literal = /^\/(.*)\/([dgimsuy]*)$/s.exec(pattern);
    try {
      regex = literal ? compileLinearRegex(literal[1], literal[2].replace('g', '')) : compileLinearRegex(pattern); // stateless: no lastIndex
    } catch (err) {
      throw literal && err instanceof RegexSyntaxError ? err.movedBy(1) : err; // positions count the leading "/"
    }
    regexes.set(pattern, regex);
    trimOldest(regexes, REGEX_CACHE_CAPACITY);
  }
  return regex;
}

function createOperatorEngine(): Engine {
  const engine = new Engine([], { allowUndefinedFacts: true, pathResolver: resolvePath as never });
  const isText = (value: unknown): value is string => typeof value === 'string';
  engine.addOperator('matches', (fact: unknown, pattern: unknown) => isText(fact) && isText(pattern) && compileRegex(pattern).test(fact));
  engine.addOperator('startsWith', (fact: unknown, prefix: unknown) => isText(fact) && isText(prefix) && fact.startsWith(prefix));
  engine.addOperator('endsWith', (fact: unknown, suffix: unknown) => isText(fact) && isText(suffix) && fact.endsWith(suffix));
  return engine;
}

const operatorEngine = createOperatorEngine();

/** The engine's Operator for a plain (undecorated) name, as `Condition.evaluate` looks it up. */
function engineOperator(name: string): EngineOperator | undefined {
  return (operatorEngine as unknown as { operators: { get(name: string): EngineOperator | null } }).operators.get(name) ?? undefined;
}

/** An evaluable rule: json-rules-engine's Rule, with the method it has but does not declare. */
export type EvaluableRule = Rule & {
  evaluate(almanac: unknown): Promise<{ result: boolean; conditions: unknown }>;
};

/**
 * buildRule validates a condition tree and returns a Rule ready for `evaluate`, with a synchronous `test`
 * when its conditions allow one (src/match/condition-fast-path.ts); problems are returned, not thrown.
 */
export function buildRule(name: string, conditions: TopLevelCondition): { rule?: EvaluableRule; test?: ConditionTest; problems: string[] } {
  const problems: string[] = [];
  checkCondition(conditions, 'conditions', problems, true);
  if (problems.length > 0) return { problems };
  try {
    const rule = new Rule({ name, conditions, event: { type: name } }) as EvaluableRule;
    (rule as unknown as { setEngine(engine: Engine): void }).setEngine(operatorEngine);
    const parsed = (rule as unknown as { conditions: Parameters<typeof compileConditionTest>[0] }).conditions;
    return { rule, test: compileConditionTest(parsed, engineOperator), problems };
  } catch (err) {
    return { problems: [`conditions: ${(err as Error).message}`] };
  }
}

function checkCondition(node: unknown, where: string, problems: string[], top = false): void {
  if (typeof node !== 'object' || node === null || Array.isArray(node)) {
    problems.push(`${where}: must be an object`);
    return;
  }
  const condition = node as Record<string, unknown>;
  for (const group of ['all', 'any'] as const) {
    if (group in condition) {
      const items = condition[group];
      if (!Array.isArray(items)) problems.push(`${where}.${group}: must be a list of conditions`);
      else items.forEach((item, i) => checkCondition(item, `${where}.${group}[${i}]`, problems));
      return;
    }
  }
  if ('not' in condition) return checkCondition(condition.not, `${where}.not`, problems);
  if ('condition' in condition) {
    problems.push(`${where}: shared condition references ({condition: ...}) are not supported; write the condition inline`);
    return;
  }
  if (top) {
    problems.push(`${where}: the top level must be {all: [...]}, {any: [...]} or {not: {...}}`);
    return;
  }
  checkLeaf(condition, where, problems);
}

function checkLeaf(condition: Record<string, unknown>, where: string, problems: string[]): void {
  checkFact(condition.fact, condition.path, `${where}`, problems);
  const operator = condition.operator;
  if (typeof operator !== 'string') {
    problems.push(`${where}.operator: missing (one of ${[...BUILT_IN_OPERATORS, ...CUSTOM_OPERATORS].join(', ')})`);
    return;
  }
  const parts = operator.split(':');
  const base = parts.pop() as string;
  for (const decorator of parts) {
    if (!DECORATORS.includes(decorator)) problems.push(`${where}.operator: unknown decorator "${decorator}" in "${operator}" (known: ${DECORATORS.join(', ')})`);
  }
  if (![...BUILT_IN_OPERATORS, ...CUSTOM_OPERATORS].includes(base)) {
    problems.push(`${where}.operator: unknown operator "${base}" (known: ${[...BUILT_IN_OPERATORS, ...CUSTOM_OPERATORS].join(', ')})`);
  }
  if (!('value' in condition)) problems.push(`${where}.value: missing`);
  const value = condition.value;
  if (typeof value === 'object' && value !== null && 'fact' in value) {
    const ref = value as Record<string, unknown>;
    checkFact(ref.fact, ref.path, `${where}.value`, problems);
  } else if (base === 'matches') {
    const patterns = Array.isArray(value) && parts.some((d) => d.endsWith('Value')) ? value : [value];
    for (const pattern of patterns) {
      if (typeof pattern !== 'string') problems.push(`${where}.value: "matches" needs a regex string, got ${JSON.stringify(pattern)}`);
      else {
        try {
          compileRegex(pattern);
        } catch (err) {
          problems.push(`${where}.value: invalid regex ${JSON.stringify(pattern)}: ${(err as Error).message}`);
        }
      }
    }
  }
}

function checkFact(fact: unknown, path: unknown, where: string, problems: string[]): void {
  if (typeof fact !== 'string' || !(FACTS as readonly string[]).includes(fact)) {
    problems.push(`${where}.fact: ${JSON.stringify(fact)} is not a fact (known: ${FACTS.join(', ')})`);
  }
  if (path === undefined) return;
  if (typeof path !== 'string') {
    problems.push(`${where}.path: must be a string like "$.involvedObject.kind"`);
    return;
  }
  try {
    parsePath(path);
  } catch (err) {
    problems.push(`${where}.path: ${(err as Error).message}`);
  }
}
