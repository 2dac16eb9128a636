/**
 * Conditions are json-rules-engine syntax verbatim. This module checks them at load (facts, paths,
 * operators, regexes) and turns them into json-rules-engine Rules bound to one shared engine that only
 * supplies operators: events are evaluated with `rule.evaluate(almanac)` and a fresh Almanac per event,
 * never with `engine.run()`, whose engine-wide status makes overlapping runs silently drop rules
 * (libraries.md §3.4).
 *
 * Absent facts: a path that leads nowhere, a null value, an enrichment fact that is not there (no cluster,
 * the object is gone) — every operator and decorator on an absent value is false, `notEqual`, `notIn` and
 * `not:` included, so "not prod" never fires for lack of data. `exists` and `absent` test for it explicitly.
 * The `{not: …}` group stays plain logic: it negates the whole condition inside it.
 */
import { Engine, OperatorDecorator, Rule, type TopLevelCondition } from 'json-rules-engine';
import { parsePath, resolvePath } from './path-resolver.js';
import { compileConditionTest, type ConditionTest, type EngineOperator } from '../match/condition-fast-path.js';
import { RegexSyntaxError, compileLinearRegex, type LinearRegExp } from '../render/linear-regex.js';

export const FACTS = ['event', 'cloudevent', 'change', 'object', 'owner', 'namespace'] as const;

const BUILT_IN_OPERATORS = [
  'equal', 'notEqual', 'in', 'notIn', 'contains', 'doesNotContain',
  'lessThan', 'lessThanInclusive', 'greaterThan', 'greaterThanInclusive',
];
const CUSTOM_OPERATORS = ['matches', 'startsWith', 'endsWith'];
/** Operators on presence itself: they take no value and no decorator. */
const PRESENCE_OPERATORS = ['exists', 'absent'];
const DECORATORS = ['someFact', 'someValue', 'everyFact', 'everyValue', 'swap', 'not'];
export const OPERATORS = [...BUILT_IN_OPERATORS, ...CUSTOM_OPERATORS, ...PRESENCE_OPERATORS];

/** isAbsent: nothing there — a path that leads nowhere, or null. */
export const isAbsent = (value: unknown): boolean => value === undefined || value === null;

/**
 * Regexes are compiled once, when their rule loads; a pattern read from an event (`value: {fact: …}`) is
 * compiled when it arrives, so the cache is bounded: when full, it starts over. Looked up on every `matches`
 * evaluation, so a plain Map rather than lru-cache (whose get measured at about twice a Map's).
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
    if (regexes.size >= REGEX_CACHE_CAPACITY) regexes.clear();
    regexes.set(pattern, regex);
  }
  return regex;
}

function createOperatorEngine(): Engine {
  const engine = new Engine([], { allowUndefinedFacts: true, pathResolver: resolvePath as never });
  const isText = (value: unknown): value is string => typeof value === 'string';
  engine.addOperator('matches', (fact: unknown, pattern: unknown) => isText(fact) && isText(pattern) && compileRegex(pattern).test(fact));
  engine.addOperator('startsWith', (fact: unknown, prefix: unknown) => isText(fact) && isText(prefix) && fact.startsWith(prefix));
  engine.addOperator('endsWith', (fact: unknown, suffix: unknown) => isText(fact) && isText(suffix) && fact.endsWith(suffix));
  // Every comparison is false when either side is absent; presence is tested only by exists/absent.
  const operators = (engine as unknown as { operators: { get(name: string): EngineOperator } }).operators;
  for (const name of [...BUILT_IN_OPERATORS, ...CUSTOM_OPERATORS]) {
    const compare = operators.get(name);
    engine.addOperator(name, (fact: unknown, value: unknown) => !isAbsent(fact) && !isAbsent(value) && compare.evaluate(fact, value) === true);
  }
  engine.addOperator('exists', (fact: unknown) => !isAbsent(fact));
  engine.addOperator('absent', (fact: unknown) => isAbsent(fact));
  const decorators = (engine as unknown as { operators: { decorators: Map<string, DecoratorParts> } }).operators.decorators;
  for (const name of DECORATORS) {
    const { cb, factValueValidator } = decorators.get(name)!;
    const decorate = (fact: unknown, value: unknown, next: Next) => !isAbsent(fact) && !isAbsent(value) && cb(fact, value, next);
    engine.addOperatorDecorator(new OperatorDecorator(name, decorate, factValueValidator));
  }
  return engine;
}

type Next = (fact: unknown, value: unknown) => boolean;
/** json-rules-engine's OperatorDecorator internals (undeclared in its types). */
interface DecoratorParts {
  cb(fact: unknown, value: unknown, next: Next): boolean;
  factValueValidator(fact: unknown): boolean;
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
    const rule = new Rule({ name, conditions: withPresenceValues(conditions) as TopLevelCondition, event: { type: name } }) as EvaluableRule;
    (rule as unknown as { setEngine(engine: Engine): void }).setEngine(operatorEngine);
    const parsed = (rule as unknown as { conditions: Parameters<typeof compileConditionTest>[0] }).conditions;
    return { rule, test: compileConditionTest(parsed, engineOperator), problems };
  } catch (err) {
    return { problems: [`conditions: ${(err as Error).message}`] };
  }
}

/** withPresenceValues gives `exists`/`absent` leaves the `value` json-rules-engine requires (a copy; the document is kept as written). */
function withPresenceValues(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(withPresenceValues);
  if (node === null || typeof node !== 'object') return node;
  const condition = node as Record<string, unknown>;
  if (typeof condition.operator === 'string' && PRESENCE_OPERATORS.includes(condition.operator)) return { ...condition, value: true };
  const copy: Record<string, unknown> = { ...condition };
  for (const group of ['all', 'any', 'not']) if (group in copy) copy[group] = withPresenceValues(copy[group]);
  return copy;
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
    problems.push(`${where}.operator: missing (one of ${OPERATORS.join(', ')})`);
    return;
  }
  if (PRESENCE_OPERATORS.includes(operator.split(':').pop() as string)) return checkPresence(condition, operator, where, problems);
  const parts = operator.split(':');
  const base = parts.pop() as string;
  for (const decorator of parts) {
    if (!DECORATORS.includes(decorator)) problems.push(`${where}.operator: unknown decorator "${decorator}" in "${operator}" (known: ${DECORATORS.join(', ')})`);
  }
  if (![...BUILT_IN_OPERATORS, ...CUSTOM_OPERATORS].includes(base)) {
    problems.push(`${where}.operator: unknown operator "${base}" (known: ${OPERATORS.join(', ')})`);
  }
  if (!('value' in condition)) problems.push(`${where}.value: missing`);
  const value = condition.value;
  if (value === null) problems.push(`${where}.value: null is absent, and every comparison with an absent value is false; test for it with operator: absent (or exists)`);
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

/** checkPresence: `exists`/`absent` take no decorator (`not:exists` is `absent`) and no value but `true`. */
function checkPresence(condition: Record<string, unknown>, operator: string, where: string, problems: string[]): void {
  if (operator.includes(':')) {
    const base = operator.split(':').pop();
    problems.push(`${where}.operator: "${operator}": ${base} takes no decorator (write ${base === 'exists' ? 'absent' : 'exists'} for the opposite)`);
  }
  if ('value' in condition && condition.value !== true) {
    problems.push(`${where}.value: ${operator} takes no value (write ${operator === 'exists' ? 'absent' : 'exists'} for the opposite)`);
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
