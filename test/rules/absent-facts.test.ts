/**
 * One semantics for absent facts: every operator and decorator on a path that leads nowhere (or to null)
 * is false — `notEqual`, `notIn` and `not:` included — on the fast path and in json-rules-engine alike;
 * `exists` and `absent` test for presence.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildRule } from '../../src/rules/conditions.js';
import { match } from '../../src/match/match.js';
import { NO_FACTS } from '../../src/enrich/lazy-facts.js';
import type { CompiledRule } from '../../src/rules/compile-document.js';
import type { EventInput } from '../../src/normalize/kube-event.js';

const EVENT = { reason: 'BackOff', count: 3, items: ['a', 'b'], labels: { env: 'dev' }, nothing: null };
const VALUE_FOR: Record<string, unknown> = {
  equal: 'prod',
  notEqual: 'prod',
  in: ['prod'],
  notIn: ['prod'],
  contains: 'prod',
  doesNotContain: 'prod',
  lessThan: 5,
  lessThanInclusive: 5,
  greaterThan: 1,
  greaterThanInclusive: 1,
  matches: '.*',
  startsWith: '',
  endsWith: '',
  'not:equal': 'prod',
  'not:in': ['prod'],
  'not:matches': 'x',
  'swap:in': ['prod'],
  'someValue:notEqual': ['prod'],
  'everyValue:notEqual': [],
  'everyValue:notEqual:x': ['a'],
  'not:someFact:equal': 'x',
  'everyFact:notEqual': 'x',
};

/** verdicts: whether one condition matches EVENT, by the fast path and by the engine (which must agree). */
async function verdict(condition: Record<string, unknown>): Promise<boolean> {
  const { rule, test, problems } = buildRule('r', { all: [condition] } as never);
  assert.deepEqual(problems, [], JSON.stringify(condition));
  const compiled = {
    name: 'r',
    description: '',
    source: 't',
    on: new Set(['add']),
    conditions: {},
    rule,
    test,
    actions: [],
  } as unknown as CompiledRule;
  const input: EventInput = { cloudevent: {}, event: EVENT, change: 'add', occurrence: 'o' } as never;
  const fast = await match([compiled], input, NO_FACTS);
  const engine = await match([compiled], input, NO_FACTS, { explain: true });
  assert.equal(
    fast.matched.length,
    engine.matched.length,
    `fast path and engine disagree on ${JSON.stringify(condition)}`,
  );
  assert.deepEqual(engine.failed, [], JSON.stringify(condition));
  return engine.matched.length === 1;
}

describe('absent facts', () => {
  for (const [operator, value] of Object.entries(VALUE_FOR)) {
    const op = operator.replace(/:x$/, '');
    it(`${op} on an absent path, a null value, a null enrichment fact and against an absent value fact is false`, async () => {
      assert.equal(
        await verdict({ fact: 'event', path: '$.missing.deeper', operator: op, value }),
        false,
        'missing path',
      );
      assert.equal(await verdict({ fact: 'event', path: '$.nothing', operator: op, value }), false, 'null');
      assert.equal(
        await verdict({ fact: 'object', path: '$.metadata.labels.env', operator: op, value }),
        false,
        'object gone',
      );
      assert.equal(await verdict({ fact: 'owner', operator: op, value }), false, 'no owner');
      assert.equal(
        await verdict({ fact: 'event', path: '$.reason', operator: op, value: { fact: 'event', path: '$.missing' } }),
        false,
        'absent on the value side',
      );
    });
  }

  it('notEqual, notIn and not: still match a present value that differs', async () => {
    assert.equal(await verdict({ fact: 'event', path: '$.labels.env', operator: 'notEqual', value: 'prod' }), true);
    assert.equal(await verdict({ fact: 'event', path: '$.labels.env', operator: 'notIn', value: ['prod'] }), true);
    assert.equal(await verdict({ fact: 'event', path: '$.labels.env', operator: 'not:equal', value: 'prod' }), true);
    assert.equal(await verdict({ fact: 'event', path: '$.items', operator: 'everyFact:notEqual', value: 'x' }), true);
  });

  it('exists and absent test for presence, with or without value: true', async () => {
    for (const extra of [{}, { value: true }]) {
      assert.equal(await verdict({ fact: 'event', path: '$.labels.env', operator: 'exists', ...extra }), true);
      assert.equal(await verdict({ fact: 'event', path: '$.labels.team', operator: 'exists', ...extra }), false);
      assert.equal(await verdict({ fact: 'event', path: '$.nothing', operator: 'absent', ...extra }), true);
      assert.equal(
        await verdict({ fact: 'object', operator: 'absent', ...extra }),
        true,
        'no cluster: the object is absent',
      );
      assert.equal(await verdict({ fact: 'event', path: '$.count', operator: 'absent', ...extra }), false);
    }
  });

  it('a {not: …} group negates the whole condition: not(absent path equal x) is true', async () => {
    const { rule, test } = buildRule('r', { not: { fact: 'event', path: '$.missing', operator: 'equal', value: 'x' } });
    const compiled = {
      name: 'r',
      description: '',
      source: 't',
      on: new Set(['add']),
      conditions: {},
      rule,
      test,
      actions: [],
    } as unknown as CompiledRule;
    const input = { cloudevent: {}, event: EVENT, change: 'add', occurrence: 'o' } as never;
    assert.equal((await match([compiled], input, NO_FACTS)).matched.length, 1);
    assert.equal((await match([compiled], input, NO_FACTS, { explain: true })).matched.length, 1);
  });

  it('rejects at load what could only mislead: decorated presence operators, values for them, comparisons with null', () => {
    const problems = (condition: Record<string, unknown>) =>
      buildRule('r', { all: [condition] } as never).problems.join('\n');
    assert.match(
      problems({ fact: 'event', path: '$.a', operator: 'not:exists' }),
      /exists takes no decorator \(write absent for the opposite\)/,
    );
    assert.match(
      problems({ fact: 'event', path: '$.a', operator: 'exists', value: false }),
      /exists takes no value \(write absent for the opposite\)/,
    );
    assert.match(
      problems({ fact: 'event', path: '$.a', operator: 'equal', value: null }),
      /conditions\.all\[0\]\.value: null is absent.*operator: absent/,
    );
  });
});
