/**
 * A fast path for the JSONata templates most rules use: object and array constructors, literals, field
 * paths, `&`, comparisons, arithmetic, `and`/`or`, `? :`, blocks with `$x := …`, `~>` and a few functions
 * ($string, $lowercase, $uppercase, $floor, $substring, $append, $toMillis). JSONata 2 evaluates every
 * step as an async call and allocates ≈ 60 KB for such a template; compiled to plain closures it costs a
 * few µs and almost nothing (docs/performance.md).
 *
 * It is only a shortcut, never a second implementation of the language: the closures are compiled from
 * JSONata's own AST, anything outside the subset is left to JSONata at compile time, and any value the
 * subset does not reproduce exactly — an array in a path (sequence semantics), a type JSONata would
 * reject, a non-finite number — makes the evaluation bail out to JSONata at run time. The differential
 * test (test/render/template-fast-path.test.ts) holds the two to the same output over the presets and
 * thousands of generated templates and events.
 */

/** What a compiled template answers when JSONata must evaluate this input instead. */
export const BAIL = Symbol('evaluate with JSONata');

type Node = { type: string; value?: unknown; [key: string]: unknown };
type Scope = { vars: Map<string, unknown>; parent: Scope | undefined };
type Context = { input: unknown; bindings: Record<string, unknown>; scope: Scope | undefined };
type Evaluator = (context: Context) => unknown;

/** Thrown (not an Error: no stack to capture) when a value leaves the subset. */
const BAILING = { bail: true };
function bail(): never {
  // eslint-disable-next-line @typescript-eslint/only-throw-error -- a sentinel, cheaper than an Error
  throw BAILING;
}

/** The keys each supported node may carry; any other key (predicates, grouping, focus, …) is out of the subset. */
const ALLOWED_KEYS: Record<string, readonly string[]> = {
  string: ['type', 'value', 'position'],
  number: ['type', 'value', 'position'],
  value: ['type', 'value', 'position'],
  name: ['type', 'value', 'position'],
  variable: ['type', 'value', 'position'],
  path: ['type', 'steps', 'position'],
  binary: ['type', 'value', 'lhs', 'rhs', 'position'],
  unary: ['type', 'value', 'lhs', 'expressions', 'expression', 'position'],
  condition: ['type', 'condition', 'then', 'else', 'position'],
  block: ['type', 'expressions', 'position'],
  bind: ['type', 'value', 'lhs', 'rhs', 'position'], // only as a statement of a block (see `block`)
  function: ['type', 'value', 'name', 'procedure', 'arguments', 'position'],
  apply: ['type', 'value', 'lhs', 'rhs', 'position'],
};

/** JSONata's evaluation depth guard is 300; far below it the two cannot disagree about it. */
const MAX_DEPTH = 100;

/** Explicit argument counts of the supported functions (fewer would make JSONata use the context). */
const FUNCTION_ARITY: Record<string, [min: number, max: number]> = {
  string: [1, 1],
  lowercase: [1, 1],
  uppercase: [1, 1],
  floor: [1, 1],
  substring: [2, 3],
  append: [2, 2],
  toMillis: [1, 1],
};

/** JSONata's ISO 8601 check for $toMillis without a picture (jsonata.js, iso8601regex). */
const ISO_8601 = /^\d{4}(-[01]\d)?(-[0-3]\d)?(T[0-2]\d:[0-5]\d:[0-5]\d)?(\.\d+)?([+-][0-2]\d:?[0-5]\d|Z)?$/;

/**
 * compileFastPath compiles a JSONata AST to closures, or returns undefined when the template uses anything
 * outside the subset. The returned function gives the template's value, or BAIL.
 */
export function compileFastPath(
  ast: unknown,
): ((input: unknown, bindings: Record<string, unknown>) => unknown) | undefined {
  const boundNames = new Set<string>();
  collectBindings(ast, boundNames);
  const evaluate = compile(ast as Node, 0, boundNames);
  if (!evaluate) return undefined;
  return (input, bindings) => {
    if (Array.isArray(input)) return BAIL; // JSONata wraps array input in a sequence
    try {
      return evaluate({ input, bindings, scope: undefined });
    } catch (err) {
      if (err === BAILING) return BAIL;
      throw err;
    }
  };
}

/** collectBindings finds every `$name := …`, so calls to a function of that name are left to JSONata. */
function collectBindings(node: unknown, names: Set<string>): void {
  if (Array.isArray(node)) {
    for (const item of node) collectBindings(item, names);
    return;
  }
  if (node === null || typeof node !== 'object') return;
  const n = node as Node;
  if (n.type === 'bind' && (n.lhs as Node | undefined)?.type === 'variable') names.add(String((n.lhs as Node).value));
  for (const [key, value] of Object.entries(n)) if (key !== 'type' && key !== 'value') collectBindings(value, names);
}

/**
 * inSubset: the node is of a supported type and carries no key beyond that type's (see ALLOWED_KEYS).
 * JSONata leaves `keepArray: undefined` on every `~>` (the or of its sides' flags); only a set flag matters.
 */
function inSubset(node: Node, type = node?.type): boolean {
  const allowed = ALLOWED_KEYS[type];
  return (
    node?.type === type &&
    allowed !== undefined &&
    Object.keys(node).every((key) => allowed.includes(key) || (key === 'keepArray' && !node.keepArray))
  );
}

function compile(node: Node, depth: number, bound: Set<string>): Evaluator | undefined {
  if (depth > MAX_DEPTH || node === null || typeof node !== 'object' || !inSubset(node)) return undefined;
  const sub = (child: unknown) => compile(child as Node, depth + 1, bound);
  switch (node.type) {
    case 'string':
    case 'number':
    case 'value': {
      const value = node.value;
      if (typeof value === 'number' && !Number.isFinite(value)) return undefined;
      return () => value;
    }
    case 'variable':
      return variable(String(node.value));
    case 'path':
      return path(node.steps as Node[], sub);
    case 'binary':
      return binary(String(node.value), sub(node.lhs), sub(node.rhs));
    case 'unary':
      return unary(node, sub);
    case 'condition': {
      const condition = sub(node.condition);
      const then = sub(node.then);
      const otherwise = node.else === undefined ? () => undefined : sub(node.else);
      if (!condition || !then || !otherwise) return undefined;
      return (c) => (truthy(condition(c)) ? then(c) : otherwise(c));
    }
    case 'block': {
      // Binds are compiled only as statements of a block: elsewhere JSONata evaluates siblings
      // concurrently, and which of them sees the variable is not worth reproducing.
      const expressions = (node.expressions as Node[]).map((e) => (e?.type === 'bind' ? bind(e, sub) : sub(e)));
      if (expressions.some((e) => !e)) return undefined;
      const steps = expressions as Evaluator[];
      return (c) => {
        const inner: Context = { input: c.input, bindings: c.bindings, scope: { vars: new Map(), parent: c.scope } };
        let result: unknown;
        for (const step of steps) result = step(inner);
        return result;
      };
    }
    case 'function':
      return call(node.procedure as Node, node.arguments as Node[], undefined, sub, bound);
    case 'apply': {
      // `x ~> $f(a)` is `$f(x, a)` when the right side is a call.
      const rhs = node.rhs as Node;
      const lhs = sub(node.lhs);
      if (rhs?.type !== 'function' || rhs.value !== '(' || !lhs) return undefined;
      return call(rhs.procedure as Node, rhs.arguments as Node[], lhs, sub, bound);
    }
    default:
      return undefined;
  }
}

/** bind compiles `$name := value` inside a block: the value is set in the block's scope and returned. */
function bind(node: Node, sub: (child: unknown) => Evaluator | undefined): Evaluator | undefined {
  const target = node.lhs as Node;
  const value = sub(node.rhs);
  if (target?.type !== 'variable' || !value || !inSubset(node, 'bind')) return undefined;
  const name = String(target.value);
  return (c) => {
    const v = value(c);
    c.scope!.vars.set(name, v);
    return v;
  };
}

function variable(name: string): Evaluator {
  if (name === '' || name === '$') return (c) => checked(c.input);
  return (c) => {
    for (let scope = c.scope; scope; scope = scope.parent)
      if (scope.vars.has(name)) return checked(scope.vars.get(name));
    if (Object.prototype.hasOwnProperty.call(c.bindings, name)) return checked(c.bindings[name]);
    return bail(); // undefined, or one of JSONata's built-in functions used as a value
  };
}

/** checked admits the values the subset handles exactly: arrays and functions take JSONata's own paths. */
function checked(value: unknown): unknown {
  if (Array.isArray(value) || typeof value === 'function' || typeof value === 'symbol' || typeof value === 'bigint')
    bail();
  return value;
}

function path(steps: Node[], sub: (child: unknown) => Evaluator | undefined): Evaluator | undefined {
  if (!Array.isArray(steps) || steps.length === 0) return undefined;
  // `$var.a.b` starts from a variable, `a.b` from the input; every other step is a plain field name.
  const fromVariable = steps[0].type === 'variable';
  const from = fromVariable ? sub(steps[0]) : (c: Context) => c.input;
  const fields = steps.slice(fromVariable ? 1 : 0);
  if (!from || !fields.every((step) => inSubset(step, 'name'))) return undefined;
  const names = fields.map((step) => String(step.value));
  return (c) => {
    let value = from(c);
    for (const name of names) {
      if (value === null || typeof value !== 'object' || !Object.prototype.hasOwnProperty.call(value, name))
        return undefined;
      value = checked((value as Record<string, unknown>)[name]);
    }
    return value;
  };
}

function binary(op: string, lhs: Evaluator | undefined, rhs: Evaluator | undefined): Evaluator | undefined {
  if (!lhs || !rhs) return undefined;
  switch (op) {
    case '&':
      return (c) => text(lhs(c)) + text(rhs(c));
    case '=':
    case '!=': {
      const equal = op === '=';
      return (c) => {
        const a = primitive(lhs(c));
        const b = primitive(rhs(c));
        if (a === undefined || b === undefined) return false;
        return equal ? a === b : a !== b;
      };
    }
    case '<':
    case '<=':
    case '>':
    case '>=': {
      const compare = COMPARISONS[op];
      return (c) => {
        const a = lhs(c);
        const b = rhs(c);
        if (!comparable(a) || !comparable(b)) bail();
        if (a === undefined || b === undefined) return undefined;
        if (typeof a !== typeof b) bail();
        return compare(a as number, b as number);
      };
    }
    case '+':
    case '-':
    case '*':
    case '/':
    case '%': {
      const arithmetic = ARITHMETIC[op];
      return (c) => {
        const a = lhs(c);
        const b = rhs(c);
        if ((a !== undefined && !finite(a)) || (b !== undefined && !finite(b))) bail();
        if (a === undefined || b === undefined) return undefined;
        const result = arithmetic(a, b);
        return finite(result) ? result : bail();
      };
    }
    case 'and':
      return (c) => truthy(lhs(c)) && truthy(rhs(c));
    case 'or':
      return (c) => truthy(lhs(c)) || truthy(rhs(c));
    default:
      return undefined;
  }
}

function unary(node: Node, sub: (child: unknown) => Evaluator | undefined): Evaluator | undefined {
  switch (node.value) {
    case '-': {
      const operand = sub(node.expression);
      if (!operand) return undefined;
      return (c) => {
        const v = operand(c);
        if (v === undefined) return undefined;
        return finite(v) ? -v : bail();
      };
    }
    case '[': {
      const items = node.expressions as Node[];
      // Nested array constructors keep their arrays in JSONata; everything else is flattened. Keep it simple.
      if (!Array.isArray(items) || items.some((item) => item.type === 'unary' && item.value === '[')) return undefined;
      const compiled = items.map(sub);
      if (compiled.some((e) => !e)) return undefined;
      return (c) => {
        const result: unknown[] = [];
        for (const item of compiled as Evaluator[]) {
          const v = item(c);
          if (Array.isArray(v)) bail(); // JSONata flattens it into the constructed array
          if (v !== undefined) result.push(v);
        }
        return result;
      };
    }
    case '{': {
      const pairs = node.lhs as [Node, Node][];
      if (!Array.isArray(pairs)) return undefined;
      const keys = new Set<string>();
      const entries: [string, Evaluator][] = [];
      for (const [key, value] of pairs) {
        // Literal keys only; a repeated key is an error (D1009) in JSONata, and these two are reserved (D1013).
        if (!inSubset(key, 'string') || typeof key.value !== 'string' || keys.has(key.value)) return undefined;
        if (key.value === '_jsonata_lambda' || key.value === '_jsonata_function') return undefined;
        keys.add(key.value);
        const compiled = sub(value);
        if (!compiled) return undefined;
        entries.push([key.value, compiled]);
      }
      return (c) => {
        const result = Object.create(null) as Record<string, unknown>;
        for (const [key, value] of entries) {
          const v = value(c);
          if (v !== undefined) result[key] = v;
        }
        return result;
      };
    }
    default:
      return undefined;
  }
}

function call(
  procedure: Node,
  args: Node[],
  first: Evaluator | undefined,
  sub: (child: unknown) => Evaluator | undefined,
  bound: Set<string>,
): Evaluator | undefined {
  if (procedure?.type !== 'variable' || !Array.isArray(args)) return undefined;
  const name = String(procedure.value);
  const arity = FUNCTION_ARITY[name];
  if (!arity || bound.has(name)) return undefined;
  const compiled = args.map(sub);
  if (compiled.some((e) => !e)) return undefined;
  const all = (first ? [first, ...compiled] : compiled) as Evaluator[];
  if (all.length < arity[0] || all.length > arity[1]) return undefined;
  const implementation = FUNCTIONS[name];
  return (c) => {
    if (Object.prototype.hasOwnProperty.call(c.bindings, name)) bail(); // shadowed by a binding
    return implementation(all.map((arg) => arg(c)));
  };
}

/** The supported functions, as JSONata defines them (jsonata.js, functions.js) for the values the subset admits. */
const FUNCTIONS: Record<string, (args: unknown[]) => unknown> = {
  string: ([v]) => (v === undefined ? undefined : text(v)),
  lowercase: ([v]) => (v === undefined ? undefined : typeof v === 'string' ? v.toLowerCase() : bail()),
  uppercase: ([v]) => (v === undefined ? undefined : typeof v === 'string' ? v.toUpperCase() : bail()),
  floor: ([v]) => (v === undefined ? undefined : finite(v) ? Math.floor(v) : bail()),
  toMillis: ([v]) => {
    if (v === undefined) return undefined;
    if (typeof v !== 'string' || !ISO_8601.test(v)) return bail();
    const millis = Date.parse(v);
    return Number.isNaN(millis) ? bail() : millis;
  },
  substring: ([s, start, length]) => {
    if (s === undefined) return undefined;
    if (typeof s !== 'string' || !finite(start) || (length !== undefined && !finite(length))) return bail();
    const chars = Array.from(s);
    let from = start;
    if (chars.length + from < 0) from = 0;
    if (length !== undefined) {
      if (length <= 0) return '';
      const end = from >= 0 ? from + length : chars.length + from + length;
      return chars.slice(from, end).join('');
    }
    return chars.slice(from).join('');
  },
  append: ([a, b]) => {
    if (a === undefined) return b;
    if (b === undefined) return a;
    return [...(Array.isArray(a) ? (a as unknown[]) : [a]), ...(Array.isArray(b) ? (b as unknown[]) : [b])];
  },
};

/** The operators, chosen once at compile time (strings compare as strings, numbers as numbers). */
const COMPARISONS: Record<string, (x: number, y: number) => boolean> = {
  '<': (x, y) => x < y,
  '<=': (x, y) => x <= y,
  '>': (x, y) => x > y,
  '>=': (x, y) => x >= y,
};
const ARITHMETIC: Record<string, (x: number, y: number) => number> = {
  '+': (x, y) => x + y,
  '-': (x, y) => x - y,
  '*': (x, y) => x * y,
  '/': (x, y) => x / y,
  '%': (x, y) => x % y,
};

/** comparable: what JSONata's <, <=, >, >= accept (anything else is its error T2010). */
function comparable(v: unknown): boolean {
  return v === undefined || typeof v === 'string' || finite(v);
}

function finite(v: unknown): v is number {
  return typeof v === 'number' && Number.isFinite(v);
}

/** primitive admits what `=` compares by value here; objects use JSONata's deep equality. */
function primitive(v: unknown): unknown {
  if (v !== null && typeof v === 'object') bail();
  if (typeof v === 'number' && !Number.isFinite(v)) bail();
  return v;
}

/** text is JSONata's $string for the values of the subset (strings as they are, numbers to 15 digits). */
function text(v: unknown): string {
  if (v === undefined) return '';
  if (typeof v === 'string') return v;
  if (typeof v === 'number')
    return finite(v) ? JSON.stringify(Number.isInteger(v) ? v : Number(v.toPrecision(15))) : bail();
  if (typeof v === 'boolean' || v === null) return String(v);
  return bail(); // objects: JSONata's own serialization
}

/** truthy is JSONata's effective boolean value for the values of the subset. */
function truthy(v: unknown): boolean {
  if (v === undefined || v === null) return false;
  if (typeof v === 'boolean') return v;
  if (typeof v === 'string') return v.length > 0;
  if (typeof v === 'number') return finite(v) ? v !== 0 : bail();
  if (typeof v === 'object' && !Array.isArray(v)) return Object.keys(v).length > 0;
  return bail();
}
