/**
 * Regexes written by rule authors run in linear time: the patterns that backtracked for seconds to minutes on
 * the native engine finish at once, constructs RE2 cannot run are rejected at load with their position, and
 * JSONata's regex functions give the same results on RE2 as on the native engine for ordinary patterns.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import jsonata from 'jsonata';
import { LinearRegExp, RegexSyntaxError, compileLinearRegex } from '../../src/render/linear-regex.js';
import { compileTemplate } from '../../src/render/template.js';
import { buildRule, compileRegex } from '../../src/rules/conditions.js';
import { match } from '../../src/match/match.js';
import { NO_FACTS } from '../../src/enrich/lazy-facts.js';
import type { CompiledRule } from '../../src/rules/compile-document.js';

/** Generous: each of these took from seconds to minutes on the backtracking engine, and milliseconds on RE2. */
const BOUND_MS = 2_000;

const HOSTILE: { pattern: string; input: string; matches: boolean }[] = [
  { pattern: '^(a|a)+$', input: `${'a'.repeat(32)}!`, matches: false },
  { pattern: '(\\d|\\w)+x$', input: `${'1a'.repeat(5_000)}!`, matches: false },
  { pattern: '(.*a){25}', input: `${'a'.repeat(24)}${'b'.repeat(5_000)}`, matches: false },
  { pattern: '^(\\w+\\s?){1,40}$', input: `${'word '.repeat(60)}!`, matches: false },
  { pattern: '^(a+)+$', input: `${'a'.repeat(40)}!`, matches: false },
  { pattern: '^(a|a)+$', input: 'a'.repeat(32), matches: true },
];

async function matchesRule(pattern: string, message: string): Promise<boolean> {
  const { rule, test, problems } = buildRule('r', {
    all: [{ fact: 'event', path: '$.message', operator: 'matches', value: pattern }],
  });
  assert.deepEqual(problems, []);
  const compiled = {
    name: 'r',
    description: '',
    source: 'test',
    on: new Set(['add']),
    conditions: {},
    rule,
    test,
    actions: [],
  } as unknown as CompiledRule;
  const input = { cloudevent: {}, event: { message }, change: 'add' as const, occurrence: 'o' };
  // Both evaluators: the synchronous fast path and json-rules-engine (explain forces the engine).
  const fast = await match([compiled], input as never, NO_FACTS);
  const engine = await match([compiled], input as never, NO_FACTS, { explain: true });
  assert.equal(fast.matched.length, engine.matched.length, 'fast path and engine agree');
  return engine.matched.length === 1;
}

describe('linear-time regexes', () => {
  for (const { pattern, input, matches } of HOSTILE) {
    it(`matches operator: ${pattern} on ${input.length} characters finishes (${matches})`, async () => {
      const start = performance.now();
      assert.equal(await matchesRule(pattern, input), matches);
      assert.ok(performance.now() - start < BOUND_MS, `took ${performance.now() - start} ms`);
    });
  }

  it('a JSONata regex literal with nested repetition finishes: $contains(message, /^(a+)+$/)', async () => {
    const template = compileTemplate('$contains(message, /^(a+)+$/)', { timeoutMs: 60_000 });
    const start = performance.now();
    assert.equal(await template.evaluate({ message: `${'a'.repeat(40)}!` }, {}), false);
    assert.equal(await template.evaluate({ message: 'a'.repeat(40) }, {}), true);
    assert.ok(performance.now() - start < BOUND_MS, `took ${performance.now() - start} ms`);
  });

  it('every JSONata regex function runs on RE2: $match, $contains, $replace, $split', async () => {
    const message = `${'a'.repeat(30)}! ${'1a'.repeat(2_000)}`;
    for (const source of [
      '$match(message, /(a|a)+!/)',
      '$replace(message, /(\\d|\\w)+x/, "-")',
      '$split(message, /(.*a){25}!/)',
      '$contains(message, /^(\\w+\\s?){1,40}$/)',
    ]) {
      const template = compileTemplate(source, { timeoutMs: 60_000 });
      const { ms } = await timedAsync(() => template.evaluate({ message }, {}));
      assert.ok(ms < BOUND_MS, `${source} took ${ms} ms`);
    }
  });

  it('rejects back-references and look-around with their position', () => {
    const cases: [pattern: string, position: number, hint: RegExp][] = [
      ['(a)\\1', 3, /back-references are not supported/],
      ['(?=x)', 0, /look-ahead and look-behind are not supported/],
      ['ab(?!c)', 2, /look-ahead/],
      ['x(?<=a)b', 1, /./],
      ['(?<n>a)\\k<n>', 7, /back-references/],
    ];
    for (const [pattern, position, hint] of cases) {
      assert.throws(
        () => compileLinearRegex(pattern),
        (err: unknown) => {
          assert.ok(err instanceof RegexSyntaxError, String(err));
          assert.equal(err.position, position, `${pattern}: ${err.message}`);
          assert.match(err.message, hint);
          assert.match(err.message, new RegExp(`at position ${position}`));
          return true;
        },
      );
    }
    // An escaped backslash before "1" is a literal, not a back-reference: the error points at the real one.
    assert.throws(
      () => compileLinearRegex('\\\\1(a)\\1'),
      (err: RegexSyntaxError) => err.position === 6,
    );
  });

  it('the matches operator reports the position in the value as written, /pattern/flags included', () => {
    assert.throws(
      () => compileRegex('/(a)\\1/i'),
      (err: RegexSyntaxError) => err.position === 4,
    );
    assert.throws(() => compileRegex('/^a/y'), /sticky/);
    const { problems } = buildRule('r', {
      all: [{ fact: 'event', path: '$.message', operator: 'matches', value: '(?=x)' }],
    });
    assert.match(
      problems.join('\n'),
      /conditions\.all\[0\]\.value: invalid regex "\(\?=x\)": .*look-ahead.*at position 0/,
    );
  });

  it('a template regex RE2 cannot run is rejected at load with line and column', () => {
    assert.throws(
      () => compileTemplate('{\n  "a": $match(message, /(x)\\1/)\n}', { timeoutMs: 100 }),
      (err: Error & { code?: string }) => {
        assert.equal(err.code, 'REGEX');
        assert.match(
          err.message,
          /back-references are not supported.* at line 2, column 28\n {4} {2}"a": \$match\(message, \/\(x\)\\1\/\)\n {4} {27}\^/,
        );
        return true;
      },
    );
  });

  it('$eval cannot bring a backtracking regex in at run time', async () => {
    const template = compileTemplate('$eval("$contains(m, /^(a+)+$/)", $)', { timeoutMs: 60_000 });
    const { value, ms } = await timedAsync(() => template.evaluate({ m: `${'a'.repeat(40)}!` }, {}));
    assert.equal(value, false);
    assert.ok(ms < BOUND_MS, `took ${ms} ms`);
    await assert.rejects(
      compileTemplate('$eval("$contains(m, /(a)\\\\1/)", $)', { timeoutMs: 100 }).evaluate({ m: 'aa' }, {}),
      /back-references/,
    );
  });

  it('gives JSONata the same results as the native engine for ordinary patterns', async () => {
    const inputs = [
      '',
      'Back-off restarting failed container web in pod web-7d9 (ns prod)',
      'a1b22c333 ddd EE ff',
      'line one\nline two\nLINE three',
      'héllo wörld 😀 ok',
      'aaa',
    ];
    const templates = [
      '$match(s, /[a-z]+/)',
      '$match(s, /(\\w)(\\d+)?/, 3)',
      '$match(s, /^line/m)',
      '$match(s, /LINE/i)',
      '$match(s, /(?<word>o\\w)/)',
      '$replace(s, /\\s+/, "_")',
      '$replace(s, /(\\w+) (\\w+)/, "$2 $1")',
      '$replace(s, /a/, "b", 2)',
      '$replace(s, /[aeiou]/i, function($m) { $uppercase($m.match) })',
      '$split(s, /\\s/)',
      '$split(s, /[,()]/, 2)',
      '$contains(s, /\\d{3}/)',
      '$contains(s, /^$/)',
      's ~> $replace(/ö|é/, "o")',
      '$match(s, /x*/)',
      '$split(s, /b*/)',
    ];
    let compared = 0;
    for (const source of templates) {
      const native = jsonata(source);
      const linear = jsonata(source, { RegexEngine: LinearRegExp as unknown as RegExpConstructor });
      for (const s of inputs) {
        const want = await outcome(() => native.evaluate({ s }));
        const got = await outcome(() => linear.evaluate({ s }));
        assert.deepEqual(got, want, `${source} on ${JSON.stringify(s)}`);
        compared++;
      }
    }
    assert.equal(compared, templates.length * inputs.length);
  });

  it('test answers like the native engine over a stream of texts, repeats included (the last answer is remembered)', () => {
    const texts = [
      'Back-off',
      'back-off',
      'Back-off',
      'x'.repeat(5_000),
      'Back-off',
      'x'.repeat(5_000),
      '',
      'OOMKilled',
      'OOMKilled',
      'Back-off',
    ];
    for (const pattern of ['^[A-Z]', 'off$', 'x{400}', '^$', 'OOM|Back']) {
      const linear = compileLinearRegex(pattern);
      const native = new RegExp(pattern);
      for (const [i, text] of texts.entries())
        assert.equal(linear.test(text), native.test(text), `${pattern} on text ${i}`);
    }
  });

  it('behaves as a global RegExp for exec and lastIndex', () => {
    const re = new LinearRegExp(/a(b)?/g);
    const native = /a(b)?/g;
    const text = 'xab a ab';
    for (let i = 0; i < 5; i++) {
      const got = re.exec(text);
      const want = native.exec(text);
      assert.deepEqual(got && [...got], want && [...want]);
      assert.equal(got?.index, want?.index);
      assert.equal(re.lastIndex, native.lastIndex);
    }
  });
});

async function timedAsync<T>(run: () => Promise<T>): Promise<{ value: T; ms: number }> {
  const start = performance.now();
  const value = await run();
  return { value, ms: performance.now() - start };
}

/** outcome: the JSON of a result, or the error code, so results and errors compare alike. */
async function outcome(run: () => Promise<unknown>): Promise<unknown> {
  try {
    return JSON.parse(JSON.stringify((await run()) ?? null));
  } catch (err) {
    return { error: (err as { code?: string }).code ?? String(err) };
  }
}
