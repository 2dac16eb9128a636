/**
 * Property test: matching with the index gives exactly the rules that evaluating every rule gives,
 * over randomly generated rules and events (seeded, so a failure can be replayed).
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { stringify } from 'yaml';
import { buildRuleIndex } from '../../src/match/rule-index.js';
import { match } from '../../src/match/match.js';
import { NO_FACTS } from '../../src/enrich/lazy-facts.js';
import type { EventInput } from '../../src/normalize/kube-event.js';
import { RuleStore } from '../../src/rules/rule-store.js';
import { createMetrics, recordingLogger } from '../support/quiet.js';
import { seededRandom } from '../support/random.js';

const REASONS = ['BackOff', 'SuccessfulRescale', 'OOMKilling', 'FailedScheduling', 'Unhealthy', 'Pulled', 'Killing'];
const KINDS = ['Pod', 'HorizontalPodAutoscaler', 'Node', 'Deployment'];
const NAMESPACES = ['shop', 'payments', 'default', 'kube-system'];
const TYPES = ['Normal', 'Warning'];
const CE_TYPES = ['dev.knative.apiserver.resource.add', 'dev.knative.apiserver.resource.update', 'com.example.other'];

function generateRules(rnd: () => number, count: number) {
  const pick = <T>(list: T[]) => list[Math.floor(rnd() * list.length)];
  const leaf = (): Record<string, unknown> => {
    const roll = rnd();
    if (roll < 0.25) return { fact: 'event', path: '$.reason', operator: 'equal', value: pick(REASONS) };
    if (roll < 0.4)
      return { fact: 'event', path: '$.involvedObject.kind', operator: 'in', value: [pick(KINDS), pick(KINDS)] };
    if (roll < 0.5)
      return { fact: 'event', path: '$.involvedObject.namespace', operator: 'notEqual', value: pick(NAMESPACES) };
    if (roll < 0.6) return { fact: 'event', path: '$.type', operator: 'equal', value: pick(TYPES) };
    if (roll < 0.67) return { fact: 'cloudevent', path: '$.type', operator: 'equal', value: pick(CE_TYPES) };
    if (roll < 0.72) return { fact: 'change', operator: 'in', value: ['add', 'update'] };
    if (roll < 0.8)
      return { fact: 'event', path: '$.message', operator: 'matches', value: pick(['^Back', 'size: [0-9]', 'node']) };
    if (roll < 0.87) return { fact: 'event', path: '$.count', operator: 'greaterThan', value: Math.floor(rnd() * 5) };
    if (roll < 0.93) return { fact: 'event', path: '$.count', operator: 'equal', value: Math.floor(rnd() * 4) };
    const team = pick(['a', 'b', null]);
    return team === null
      ? { fact: 'event', path: '$.metadata.labels.team', operator: 'absent' }
      : { fact: 'event', path: '$.metadata.labels.team', operator: 'equal', value: team };
  };
  const group = (depth: number): Record<string, unknown> => {
    const items = Array.from({ length: 1 + Math.floor(rnd() * 3) }, () =>
      depth < 2 && rnd() < 0.25 ? group(depth + 1) : leaf(),
    );
    const roll = rnd();
    return roll < 0.6 ? { all: items } : roll < 0.9 ? { any: items } : { not: items[0] };
  };
  return Array.from({ length: count }, (_, i) => ({
    name: `r${i}`,
    on: ['add', 'update', 'unchanged', 'delete', 'other'],
    conditions: group(0),
    actions: [{ destination: 'out' }],
  }));
}

function generateEvent(rnd: () => number): EventInput {
  const pick = <T>(list: T[]) => list[Math.floor(rnd() * list.length)];
  const reason = pick(REASONS);
  return {
    cloudevent: { type: pick(CE_TYPES), id: String(rnd()), source: 's' },
    event: {
      reason,
      type: pick(TYPES),
      message: pick(['Back-off restarting', 'New size: 3', 'node is not ready', '']),
      count: Math.floor(rnd() * 5),
      involvedObject: { kind: pick(KINDS), namespace: pick(NAMESPACES) },
      metadata: rnd() < 0.5 ? { labels: { team: pick(['a', 'b']) } } : {},
    },
    change: pick(['add', 'update', 'unchanged', 'delete', 'other'] as const),
    occurrence: 'o',
  };
}

describe('rule index', () => {
  it('gives the same matches as evaluating every rule (random rules and events)', async () => {
    for (const seed of [1, 2, 3, 4, 5]) {
      const rnd = seededRandom(seed);
      const store = new RuleStore({ timeoutMs: 100 }, createMetrics(), recordingLogger().log);
      const problems = store.update(
        'file:random.yaml',
        stringify({ destinations: { out: { kind: 'log' } }, rules: generateRules(rnd, 300) }),
      );
      assert.deepEqual(problems, []);
      const { rules, index } = store.current;
      assert.ok(index.indexed > 50, `seed ${seed}: some rules are indexed (${index.indexed})`);
      let matchedSomething = 0;
      for (let i = 0; i < 400; i++) {
        const input = generateEvent(rnd);
        const full = await match(rules, input, NO_FACTS);
        const indexed = await match(index.candidates(input), input, NO_FACTS);
        assert.deepEqual(
          indexed.matched.map((r) => r.name),
          full.matched.map((r) => r.name),
          `seed ${seed} event ${i}`,
        );
        if (full.matched.length > 0) matchedSomething++;
      }
      assert.ok(matchedSomething > 100, 'the generated cases do match rules');
    }
  });

  it('evaluates only candidates: an event with an unindexed reason skips every indexed rule', () => {
    const store = new RuleStore({ timeoutMs: 100 }, createMetrics(), recordingLogger().log);
    const rules = REASONS.map((reason) => ({
      name: `on-${reason}`,
      conditions: { all: [{ fact: 'event', path: '$.reason', operator: 'equal', value: reason }] },
      actions: [{ destination: 'out' }],
    }));
    rules.push({
      name: 'catch-all',
      conditions: { any: [{ fact: 'event', path: '$.reason', operator: 'equal', value: 'BackOff' }] } as never,
      actions: [{ destination: 'out' }],
    });
    store.update('file:r.yaml', stringify({ destinations: { out: { kind: 'log' } }, rules }));
    const input = (reason: string) => ({
      cloudevent: { type: 't', id: '1', source: 's' },
      event: { reason },
      change: 'add' as const,
      occurrence: 'o',
    });
    assert.deepEqual(
      store.current.index.candidates(input('BackOff')).map((r) => r.name),
      ['on-BackOff', 'catch-all'],
    );
    assert.deepEqual(
      store.current.index.candidates(input('Nope')).map((r) => r.name),
      ['catch-all'],
    );
    assert.equal(buildRuleIndex(store.current.rules).indexed, REASONS.length);
  });
});
