/**
 * Differential test: the synchronous condition test gives what json-rules-engine gives — the same
 * matched rules, the same failed rules with the same errors — over randomly generated condition trees and
 * events (seeded, so a failure can be replayed), including values the operators must validate or choke on.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { match } from '../../src/match/match.js';
import { ENGINE } from '../../src/match/condition-fast-path.js';
import { NO_FACTS } from '../../src/enrich/lazy-facts.js';
import { buildRule } from '../../src/rules/conditions.js';
import type { CompiledRule } from '../../src/rules/compile-document.js';
import type { EventInput } from '../../src/normalize/kube-event.js';
import { seededRandom } from '../support/random.js';

const OPERATORS = [
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
  'matches',
  'startsWith',
  'endsWith',
  'exists',
  'absent',
];
const DECORATED = [
  'someFact:equal',
  'everyValue:greaterThan',
  'not:equal',
  'not:in',
  'swap:contains',
  'someValue:matches',
  'everyFact:notEqual',
  'everyValue:notEqual',
];
const PATHS = [
  '$.reason',
  '$.count',
  '$.message',
  '$.involvedObject.kind',
  '$.items',
  '$.items[0]',
  '$.metadata.labels.team',
  "$.metadata.labels['app.kubernetes.io/name']",
  '$.weird',
  '$.missing.deeper',
  'type',
  '',
];
/** Values of every type an operator may meet, including ones it must reject or cannot handle. */
const VALUES: unknown[] = [
  'BackOff',
  'Pod',
  '3',
  '3.5',
  'abc',
  '',
  'Back',
  'Off',
  '^Back',
  '[0-9]+',
  '/off$/i',
  '/x/y',
  0,
  1,
  3,
  2.5,
  -1,
  null,
  true,
  false,
  ['BackOff', 'Pulled'],
  ['a', 3, null],
  [],
  'in',
  { a: 1 },
];

function generateConditions(rnd: () => number): Record<string, unknown> {
  const pick = <T>(list: readonly T[]) => list[Math.floor(rnd() * list.length)];
  const leaf = (): Record<string, unknown> => {
    const fact = pick(['event', 'event', 'event', 'cloudevent', 'change', 'object']);
    const condition: Record<string, unknown> = {
      fact,
      operator: rnd() < 0.05 ? pick(DECORATED) : pick(OPERATORS),
      value: pick(VALUES),
    };
    const path = pick(PATHS);
    if (path !== '' || rnd() < 0.5)
      condition.path = fact === 'cloudevent' ? pick(['$.type', '$.source', '$.id']) : path;
    if (rnd() < 0.08)
      condition.value = {
        fact: pick(['event', 'cloudevent', 'change', 'owner']),
        path: pick(['$.reason', '$.type', '$.items', '$.missing']),
      };
    if (condition.operator === 'exists' || condition.operator === 'absent') {
      if (rnd() < 0.5) delete condition.value;
      else condition.value = true;
    }
    if (rnd() < 0.1) condition.priority = 1 + Math.floor(rnd() * 3);
    return condition;
  };
  const group = (depth: number): Record<string, unknown> => {
    const items = Array.from({ length: Math.floor(rnd() * 4) }, () =>
      depth < 3 && rnd() < 0.3 ? group(depth + 1) : leaf(),
    );
    const roll = rnd();
    if (roll < 0.45) return { all: items };
    if (roll < 0.9) return { any: items };
    return { not: items[0] ?? leaf() };
  };
  return group(0);
}

function generateEvent(rnd: () => number): EventInput {
  const pick = <T>(list: readonly T[]) => list[Math.floor(rnd() * list.length)];
  const optional = (value: unknown) =>
    rnd() < 0.8 ? value : pick([undefined, null, 7, 'x', { nested: true }, ['BackOff']]);
  return {
    cloudevent: {
      type: pick(['dev.knative.apiserver.resource.add', 'other']),
      source: 's',
      id: pick(['1', 'BackOff']),
    },
    event: {
      reason: optional(pick(['BackOff', 'Pulled', 'OOMKilling', 'in', ''])),
      count: optional(pick([0, 1, 3, 5, '3', '2.5', 'many', 3.5])),
      message: optional(pick(['Back-off restarting', 'New size: 3', 'OFF', ''])),
      involvedObject: optional({ kind: optional(pick(['Pod', 'Node'])) }),
      items: optional(pick([['BackOff', 'Pulled'], [3, null], [], ['a', ['b']]])),
      metadata: optional({
        labels: optional({ team: optional(pick(['a', 'b'])), 'app.kubernetes.io/name': pick(['web', 'db']) }),
      }),
      // Objects the comparisons cannot turn into text or numbers: the engine throws; so must the fast path's caller.
      weird: pick<unknown>([{ toString: 'no' }, { valueOf: 1, toString: 2 }, 'plain', [{ toString: 'no' }]]),
    },
    change: pick(['add', 'update', 'unchanged'] as const),
    occurrence: 'o',
  };
}

function compileRules(rnd: () => number, count: number): CompiledRule[] {
  const rules: CompiledRule[] = [];
  for (let i = 0; rules.length < count; i++) {
    const { rule, test, problems } = buildRule(`r${i}`, generateConditions(rnd) as never);
    if (problems.length > 0 || !rule) continue; // invalid at load: never evaluated
    rules.push({
      name: `r${i}`,
      declaredName: `r${i}`,
      description: '',
      source: 'test',
      on: new Set(['add', 'update', 'unchanged'] as const),
      conditions: {} as never,
      rule,
      test,
      actions: [],
    });
  }
  return rules;
}

describe('condition fast path', () => {
  it('matches and fails exactly like json-rules-engine (random conditions and events)', async () => {
    let answered = 0;
    let deferred = 0;
    let matched = 0;
    let failed = 0;
    for (const seed of [11, 12, 13, 14, 15, 16]) {
      const rnd = seededRandom(seed);
      const rules = compileRules(rnd, 250);
      for (let i = 0; i < 150; i++) {
        const input = generateEvent(rnd);
        const engine = await match(rules, input, NO_FACTS, { explain: true });
        const fast = await match(rules, input, NO_FACTS);
        const where = `seed ${seed} event ${i}`;
        assert.deepEqual(
          fast.matched.map((r) => r.name),
          engine.matched.map((r) => r.name),
          `${where}: matched`,
        );
        assert.deepEqual(
          fast.failed.map((f) => [f.rule.name, f.error]),
          engine.failed.map((f) => [f.rule.name, f.error]),
          `${where}: failed`,
        );
        for (const rule of rules) {
          const verdict = rule.test?.({ event: input.event, cloudevent: input.cloudevent, change: input.change });
          if (verdict === undefined || verdict === ENGINE) deferred++;
          else answered++;
        }
        matched += engine.matched.length;
        failed += engine.failed.length;
      }
    }
    // The comparison means something only if both sides were exercised: many answers, matches and errors.
    assert.ok(answered > 100_000, `the fast path answered ${answered} evaluations`);
    assert.ok(deferred > 20_000, `the engine answered ${deferred} evaluations`);
    assert.ok(matched > 20_000 && failed > 500, `cases matched (${matched}) and failed (${failed})`);
  });

  it('rejects a sticky regex at load: it would carry state from one event to the next', () => {
    assert.match(
      buildRule('r', {
        all: [{ fact: 'event', path: '$.message', operator: 'matches', value: '/^a/y' }],
      }).problems.join(),
      /sticky/,
    );
  });

  it('leaves to the engine what only the engine can answer', () => {
    const test = (conditions: unknown) => buildRule('r', conditions as never).test;
    assert.equal(
      test({ all: [{ fact: 'owner', path: '$.kind', operator: 'equal', value: 'Deployment' }] }),
      undefined,
      'enrichment fact',
    );
    assert.equal(
      test({ all: [{ fact: 'event', path: '$.items', operator: 'someFact:equal', value: 'a' }] }),
      undefined,
      'decorated operator',
    );
    assert.equal(
      test({
        all: [{ fact: 'event', path: '$.message', operator: 'matches', value: { fact: 'event', path: '$.reason' } }],
      }),
      undefined,
      'regex from the event',
    );
    assert.equal(
      typeof test({
        any: [
          { fact: 'event', path: '$.reason', operator: 'equal', value: 'BackOff' },
          { not: { fact: 'change', operator: 'in', value: ['add'] } },
        ],
      }),
      'function',
    );
  });
});
