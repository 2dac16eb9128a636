/**
 * Conditions are json-rules-engine syntax verbatim. This module checks them at load (facts, paths,
 * operators, regexes) and turns them into json-rules-engine Rules bound to one shared engine that only
 * supplies operators: events are evaluated with `rule.evaluate(almanac)` and a fresh Almanac per event,
 * never with `engine.run()`, whose engine-wide status makes overlapping runs silently drop rules.
 *
 * Absent facts: a path that leads nowhere, a null value, an enrichment fact that is not there (no cluster,
 * the object is gone) — every operator and decorator on an absent value is false, `notEqual`, `notIn` and
 * `not:` included, so "not prod" never fires for lack of data. `exists` and `absent` test for it explicitly.
 * The `{not: …}` group stays plain logic: it negates the whole condition inside it.
 */
import { Engine, OperatorDecorator, Rule, type TopLevelCondition } from 'json-rules-engine';
import { parsePath, resolvePath } from './path-resolver.js';
import { compileConditionTest, type ConditionTest, type EngineOperator } from '../match/condition-fast-path.js';
import {
  DEFAULT_MAX_PROGRAM_SIZE,
  RegexSyntaxError,
  compileLinearRegex,
  type LinearRegExp,
} from '../render/linear-regex.js';

export const FACTS = ['event', 'cloudevent', 'change', 'object', 'owner', 'namespace'] as const;

const BUILT_IN_OPERATORS = [
  'equal',
  'notEqual',
  'in',
  'notIn',
  'contains',
  'doesNotContain',
  'lessThan',
  'lessThanInclusive',
  'greaterThan',
  'greaterThanInclusive',
];
const CUSTOM_OPERATORS = ['matches', 'startsWith', 'endsWith'];
/** Operators on presence itself: they take no value and no decorator. */
const PRESENCE_OPERATORS = ['exists', 'absent'];
const DECORATORS = ['someFact', 'someValue', 'everyFact', 'everyValue', 'swap', 'not'];
export const OPERATORS = [...BUILT_IN_OPERATORS, ...CUSTOM_OPERATORS, ...PRESENCE_OPERATORS];

/** isAbsent: nothing there — a path that leads nowhere, or null. */
export const isAbsent = (value: unknown): boolean => value === undefined || value === null;

/** Limits on `matches` (REGEX_MAX_PROGRAM_SIZE, REGEX_PROGRAM_BUDGET, MATCHES_MAX_INPUT_BYTES). */
export interface RegexLimits {
  /** Largest compiled program of one pattern, in RE2 instructions. */
  maxProgramSize: number;
  /** Instructions of all distinct patterns of one rule document together. */
  programBudget: number;
  /** Longest text a `matches` condition reads, in UTF-8 bytes: longer text does not match. */
  maxInputBytes: number;
}
export const DEFAULT_REGEX_LIMITS: RegexLimits = {
  maxProgramSize: DEFAULT_MAX_PROGRAM_SIZE,
  programBudget: 100_000,
  maxInputBytes: 16 * 1024,
};
let limits = DEFAULT_REGEX_LIMITS;

/** setRegexLimits: the service's settings, set once at start (the CLI keeps the defaults). */
export function setRegexLimits(settings: RegexLimits): void {
  limits = settings;
}

let inputsTooLong = 0;
/** matchesInputsTooLong: how many `matches` evaluations met a text over maxInputBytes (and answered false). */
export const matchesInputsTooLong = (): number => inputsTooLong;

/**
 * Compiled regexes live as long as the rules that hold them: a rule keeps its own strongly (see buildRule),
 * this index only weakly, so a rule set that leaves force takes its programs with it. Patterns read from
 * events (`value: {fact: …}`) are compiled when they arrive and up to 64 are kept (when full, it starts over).
 */
const regexes = new Map<string, WeakRef<LinearRegExp>>();
const forgetRegex = new FinalizationRegistry<string>((pattern) => {
  if (regexes.get(pattern)?.deref() === undefined) regexes.delete(pattern);
});
const eventPatterns = new Map<string, LinearRegExp>();
const EVENT_PATTERN_CACHE_CAPACITY = 64;

/**
 * compileRegex accepts `pattern` or `/pattern/flags` and compiles it for RE2 (linear-time matching, see
 * src/render/linear-regex.ts); throws a RegexSyntaxError naming the position when RE2 cannot run it or its
 * program is too large.
 */
export function compileRegex(pattern: string): LinearRegExp {
  let regex = regexes.get(pattern)?.deref();
  if (!regex) {
    const literal = /^\/(.*)\/([dgimsuy]*)$/s.exec(pattern);
    try {
      regex = literal
        ? compileLinearRegex(literal[1], literal[2].replace('g', ''), limits.maxProgramSize) // stateless: no lastIndex
        : compileLinearRegex(pattern, '', limits.maxProgramSize);
    } catch (err) {
      throw literal && err instanceof RegexSyntaxError ? err.movedBy(1) : err; // positions count the leading "/"
    }
    regexes.set(pattern, new WeakRef(regex));
    forgetRegex.register(regex, pattern);
  }
  return regex;
}

/** regexFor: the compiled pattern a `matches` comparison needs, kept a while when it came from an event. */
function regexFor(pattern: string): LinearRegExp {
  const known = regexes.get(pattern)?.deref();
  if (known) return known;
  const regex = compileRegex(pattern);
  if (eventPatterns.size >= EVENT_PATTERN_CACHE_CAPACITY) eventPatterns.clear();
  eventPatterns.set(pattern, regex);
  return regex;
}

/** withinInputLimit: whether `text` is at most maxInputBytes of UTF-8 (a UTF-16 unit is 1 to 3 bytes). */
function withinInputLimit(text: string): boolean {
  if (text.length * 3 <= limits.maxInputBytes) return true;
  if (text.length > limits.maxInputBytes || Buffer.byteLength(text) > limits.maxInputBytes) {
    inputsTooLong++;
    return false;
  }
  return true;
}

function createOperatorEngine(): Engine {
  const engine = new Engine([], { allowUndefinedFacts: true, pathResolver: resolvePath as never });
  const isText = (value: unknown): value is string => typeof value === 'string';
  engine.addOperator(
    'matches',
    (fact: unknown, pattern: unknown) =>
      isText(fact) && isText(pattern) && withinInputLimit(fact) && regexFor(pattern).test(fact),
  );
  engine.addOperator(
    'startsWith',
    (fact: unknown, prefix: unknown) => isText(fact) && isText(prefix) && fact.startsWith(prefix),
  );
  engine.addOperator(
    'endsWith',
    (fact: unknown, suffix: unknown) => isText(fact) && isText(suffix) && fact.endsWith(suffix),
  );
  // Every comparison is false when either side is absent; presence is tested only by exists/absent.
  const operators = (engine as unknown as { operators: { get(name: string): EngineOperator } }).operators;
  for (const name of [...BUILT_IN_OPERATORS, ...CUSTOM_OPERATORS]) {
    const compare = operators.get(name);
    engine.addOperator(
      name,
      (fact: unknown, value: unknown) => !isAbsent(fact) && !isAbsent(value) && compare.evaluate(fact, value) === true,
    );
  }
  engine.addOperator('exists', (fact: unknown) => !isAbsent(fact));
  engine.addOperator('absent', (fact: unknown) => isAbsent(fact));
  const decorators = (engine as unknown as { operators: { decorators: Map<string, DecoratorParts> } }).operators
    .decorators;
  for (const name of DECORATORS) {
    const { cb, factValueValidator } = decorators.get(name)!;
    const decorate = (fact: unknown, value: unknown, next: Next) =>
      !isAbsent(fact) && !isAbsent(value) && cb(fact, value, next);
    engine.addOperatorDecorator(new OperatorDecorator(name, decorate, factValueValidator));
  }
  return engine;
}

type Next = (fact: unknown, value: unknown) => boolean;
/** json-rules-engine's OperatorDecorator internals (undeclared in its types); its decorators never use `this`. */
interface DecoratorParts {
  cb: (fact: unknown, value: unknown, next: Next) => boolean;
  factValueValidator: (fact: unknown) => boolean;
}

const operatorEngine = createOperatorEngine();

/** The engine's Operator for a plain (undecorated) name, as `Condition.evaluate` looks it up. */
function engineOperator(name: string): EngineOperator | undefined {
  return (
    (operatorEngine as unknown as { operators: { get(name: string): EngineOperator | null } }).operators.get(name) ??
    undefined
  );
}

/** An evaluable rule: json-rules-engine's Rule, with the method it has but does not declare. */
export type EvaluableRule = Rule & {
  evaluate(almanac: unknown): Promise<{ result: boolean; conditions: unknown }>;
};

/**
 * The regex programs of one rule document: their instructions together may not pass limits.programBudget
 * (REGEX_PROGRAM_BUDGET), so a document of many moderate patterns cannot fill the heap. A pattern shared
 * by several rules is counted once, as it is compiled once.
 */
export class RegexBudget {
  used = 0;
  exceeded = false;
  readonly counted = new Set<string>();
}

/** Compiled patterns a rule holds on to: they live while the rule does (see compileRegex). */
const HELD_REGEXES = Symbol('held regexes');

/**
 * buildRule validates a condition tree and returns a Rule ready for `evaluate`, with a synchronous `test`
 * when its conditions allow one (src/match/condition-fast-path.ts); problems are returned, not thrown.
 * `budget` is shared by the rules of one document.
 */
export function buildRule(
  name: string,
  conditions: TopLevelCondition,
  budget = new RegexBudget(),
): { rule?: EvaluableRule; test?: ConditionTest; problems: string[] } {
  const problems: string[] = [];
  const held: LinearRegExp[] = [];
  checkCondition(conditions, 'conditions', problems, { budget, held }, true);
  if (problems.length > 0) return { problems };
  try {
    const rule = new Rule({
      name,
      conditions: withPresenceValues(conditions) as TopLevelCondition,
      event: { type: name },
    }) as EvaluableRule;
    Object.defineProperty(rule, HELD_REGEXES, { value: held });
    (rule as unknown as { setEngine(engine: Engine): void }).setEngine(operatorEngine);
    const parsed = (rule as unknown as { conditions: Parameters<typeof compileConditionTest>[0] }).conditions;
    return { rule, test: compileConditionTest(parsed, engineOperator), problems };
  } catch (err) {
    return { problems: [`conditions: ${(err as Error).message}`] };
  }
}

/**
 * withPresenceValues gives `exists`/`absent` leaves the `value` json-rules-engine requires (a copy; the document is
 * kept as written).
 */
function withPresenceValues(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(withPresenceValues);
  if (node === null || typeof node !== 'object') return node;
  const condition = node as Record<string, unknown>;
  if (typeof condition.operator === 'string' && PRESENCE_OPERATORS.includes(condition.operator))
    return { ...condition, value: true };
  const copy: Record<string, unknown> = { ...condition };
  for (const group of ['all', 'any', 'not']) if (group in copy) copy[group] = withPresenceValues(copy[group]);
  return copy;
}

/** What the checks of one rule collect: its compiled patterns and its document's budget. */
interface RegexContext {
  budget: RegexBudget;
  held: LinearRegExp[];
}

function checkCondition(node: unknown, where: string, problems: string[], context: RegexContext, top = false): void {
  if (typeof node !== 'object' || node === null || Array.isArray(node)) {
    problems.push(`${where}: must be an object`);
    return;
  }
  const condition = node as Record<string, unknown>;
  for (const group of ['all', 'any'] as const) {
    if (group in condition) {
      const items = condition[group];
      if (!Array.isArray(items)) problems.push(`${where}.${group}: must be a list of conditions`);
      else items.forEach((item, i) => checkCondition(item, `${where}.${group}[${i}]`, problems, context));
      return;
    }
  }
  if ('not' in condition) return checkCondition(condition.not, `${where}.not`, problems, context);
  if ('condition' in condition) {
    problems.push(
      `${where}: shared condition references ({condition: ...}) are not supported; write the condition inline`,
    );
    return;
  }
  if (top) {
    problems.push(`${where}: the top level must be {all: [...]}, {any: [...]} or {not: {...}}`);
    return;
  }
  checkLeaf(condition, where, problems, context);
}

function checkLeaf(condition: Record<string, unknown>, where: string, problems: string[], context: RegexContext): void {
  checkFact(condition.fact, condition.path, `${where}`, problems);
  const operator = condition.operator;
  if (typeof operator !== 'string') {
    problems.push(`${where}.operator: missing (one of ${OPERATORS.join(', ')})`);
    return;
  }
  if (PRESENCE_OPERATORS.includes(operator.split(':').pop() as string))
    return checkPresence(condition, operator, where, problems);
  const parts = operator.split(':');
  const base = parts.pop() as string;
  for (const decorator of parts) {
    if (!DECORATORS.includes(decorator))
      problems.push(
        `${where}.operator: unknown decorator "${decorator}" in "${operator}" (known: ${DECORATORS.join(', ')})`,
      );
  }
  if (![...BUILT_IN_OPERATORS, ...CUSTOM_OPERATORS].includes(base)) {
    problems.push(`${where}.operator: unknown operator "${base}" (known: ${OPERATORS.join(', ')})`);
  }
  if (!('value' in condition)) problems.push(`${where}.value: missing`);
  const value = condition.value;
  if (value === null)
    problems.push(
      `${where}.value: null is absent, and every comparison with an absent value is false; test for it with operator: absent (or exists)`,
    );
  if (typeof value === 'object' && value !== null && 'fact' in value) {
    const ref = value as Record<string, unknown>;
    checkFact(ref.fact, ref.path, `${where}.value`, problems);
  } else if (base === 'matches') {
    const patterns = Array.isArray(value) && parts.some((d) => d.endsWith('Value')) ? value : [value];
    for (const pattern of patterns) {
      if (typeof pattern !== 'string')
        problems.push(`${where}.value: "matches" needs a regex string, got ${JSON.stringify(pattern)}`);
      else checkPattern(pattern, `${where}.value`, problems, context);
    }
  }
}

/**
 * checkPattern compiles a `matches` pattern and counts it against its document's budget (once over, the rest go
 * uncompiled).
 */
function checkPattern(pattern: string, where: string, problems: string[], { budget, held }: RegexContext): void {
  if (budget.exceeded) return;
  try {
    const regex = compileRegex(pattern);
    held.push(regex);
    if (budget.counted.has(pattern)) return;
    budget.counted.add(pattern);
    budget.used += regex.programSize;
    if (budget.used > limits.programBudget) {
      budget.exceeded = true;
      problems.push(
        `${where}: the regexes of this document compile to more than ${limits.programBudget} RE2 instructions together (REGEX_PROGRAM_BUDGET; ${JSON.stringify(shorten(pattern))} brings them to ${budget.used}); use fewer or simpler patterns, or split the document`,
      );
    }
  } catch (err) {
    // Past one pattern too large, the document is refused anyway: compiling the rest would only cost time.
    if (err instanceof RegexSyntaxError && err.tooLarge) budget.exceeded = true;
    problems.push(`${where}: invalid regex ${JSON.stringify(shorten(pattern))}: ${(err as Error).message}`);
  }
}

function shorten(text: string): string {
  return text.length > 60 ? `${text.slice(0, 60)}…` : text;
}

/** checkPresence: `exists`/`absent` take no decorator (`not:exists` is `absent`) and no value but `true`. */
function checkPresence(condition: Record<string, unknown>, operator: string, where: string, problems: string[]): void {
  if (operator.includes(':')) {
    const base = operator.split(':').pop();
    problems.push(
      `${where}.operator: "${operator}": ${base} takes no decorator (write ${base === 'exists' ? 'absent' : 'exists'} for the opposite)`,
    );
  }
  if ('value' in condition && condition.value !== true) {
    problems.push(
      `${where}.value: ${operator} takes no value (write ${operator === 'exists' ? 'absent' : 'exists'} for the opposite)`,
    );
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
