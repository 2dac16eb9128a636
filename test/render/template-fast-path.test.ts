/**
 * The template fast path against JSONata itself: wherever the fast path gives a value, JSONata must give
 * the same value (compared as the JSON we send) and must not fail. Checked on every preset and example
 * template over the example events, and on thousands of generated templates over generated events full
 * of awkward values (missing fields, nulls, arrays, floats, unicode, bad timestamps). The fast path must
 * also really take the common templates, or the comparison proves nothing.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import jsonata from 'jsonata';
import { BAIL, compileFastPath } from '../../src/render/template-fast-path.js';
import { PRESETS } from '../../src/render/presets.js';
import { BODY_TEMPLATE } from '../../bench/workload.js';
import { bodyOf, fixtureNames, loadFixture } from '../support/fixtures.js';
import { seededRandom } from '../support/random.js';

type Outcome = { json: string | undefined } | { error: string };

async function viaJsonata(source: string, input: unknown, bindings: Record<string, unknown>): Promise<Outcome> {
  try {
    return { json: JSON.stringify(await jsonata(source).evaluate(input, bindings)) };
  } catch (err) {
    return { error: String((err as { code?: string }).code ?? err) };
  }
}

/** agrees: true when the fast path answered (and matched JSONata), false when it handed over. */
async function agrees(source: string, input: unknown, bindings: Record<string, unknown>): Promise<boolean> {
  const fast = compileFastPath(jsonata(source).ast());
  if (!fast) return false;
  const result = fast(input, bindings);
  if (result === BAIL) return false;
  const expected = await viaJsonata(source, input, bindings);
  assert.deepEqual({ json: JSON.stringify(result) }, expected, `template ${source}\ninput ${JSON.stringify(input)}`);
  return true;
}

const bindings = (input: Record<string, unknown>) => ({
  cloudevent: { type: 'dev.knative.apiserver.resource.update', id: 'ce-1', time: '2026-11-27T10:00:00.000Z' },
  rule: { name: 'the-rule', description: 'says what' },
  occurrence: 'uid-1/3',
  change: 'update',
  object: input.kind === 'Pod' ? { metadata: { name: 'p', labels: { team: 'shop' } } } : null,
  owner: null,
  namespace: null,
});

const events = fixtureNames()
  .filter((name) => !name.startsWith('malformed'))
  .map((name) => JSON.parse(bodyOf(loadFixture(name))) as Record<string, unknown>);

describe('template fast path', () => {
  it('gives what JSONata gives for every preset over the example events, and takes the common ones', async () => {
    let fastPresets = 0;
    for (const preset of Object.values(PRESETS)) {
      let taken = 0;
      for (const event of events) if (await agrees(preset.body, event, bindings(event))) taken++;
      for (const header of Object.values(preset.headers ?? {}))
        for (const event of events) await agrees(header, event, bindings(event));
      if (taken === events.length) fastPresets++;
    }
    console.log(`presets on the fast path: ${fastPresets} of ${Object.keys(PRESETS).length}`);
    assert.ok(fastPresets >= 3, `${fastPresets} presets on the fast path`);
  });

  it('takes the region bodies (grafana-annotation, wavefront-event) at an end and at a timeout, as JSONata gives them', async () => {
    const view = (event: Record<string, any>) => ({
      reason: event.reason,
      message: event.message,
      type: event.type,
      involvedObject: event.involvedObject,
    });
    for (const [name, preset] of Object.entries(PRESETS).filter(([, p]) => p.regionBody)) {
      for (const [start, end] of events.slice(1).map((event, i) => [events[i], event])) {
        const ended = {
          key: 'k',
          start: { time: 1000, event: view(start) },
          end: { time: 61_000, event: view(end) },
          endedBy: 'end',
        };
        const timedOut = { ...ended, end: { time: 1000, event: null }, endedBy: 'timeout' };
        for (const region of [ended, timedOut])
          assert.ok(
            await agrees(preset.regionBody!, end, { ...bindings(end), region }),
            `${name} region body on the fast path`,
          );
      }
    }
  });

  it('takes the benchmark template', async () => {
    for (const event of events)
      assert.ok(await agrees(BODY_TEMPLATE, event, bindings(event)), 'benchmark template on the fast path');
  });

  it('gives what JSONata gives on edge values: float text, code points, timestamps, empty and null', async () => {
    const edges = {
      f: 0.1 + 0.2,
      third: 1 / 3,
      big: 2 ** 53 + 2,
      tiny: 1e-7,
      neg: -0,
      emoji: '😀a😀b',
      empty: '',
      nil: null,
      t: '2024-05-14T09:05:12.5+02:00',
      day: '2024-05-14',
      obj: {},
      one: { a: 1 },
      yes: true,
    };
    const templates = [
      ...Object.keys(edges).flatMap((k) => [
        `"v=" & ${k}`,
        `$string(${k})`,
        `${k} ? "y" : "n"`,
        `${k} = ${k}`,
        `${k} != "x"`,
        `{ "k": ${k} }`,
        `[${k}]`,
        `$append(${k}, ${k})`,
      ]),
      ...['f', 'third', 'big', 'tiny', 'neg'].flatMap((k) => [
        `${k} + 1`,
        `${k} * 3`,
        `-${k}`,
        `$floor(${k})`,
        `${k} < 1`,
        `${k} % 2`,
      ]),
      ...['emoji', 'empty'].flatMap((k) =>
        ['0', '1', '-2', '-10', '2.7'].flatMap((start) => [
          `$substring(${k}, ${start})`,
          `$substring(${k}, ${start}, 2)`,
          `$substring(${k}, ${start}, -1)`,
        ]),
      ),
      '$toMillis(t)',
      '$toMillis(day)',
      '$lowercase(emoji)',
      '$uppercase(emoji)',
      '(f & third) & big',
    ];
    let taken = 0;
    for (const template of templates) if (await agrees(template, edges, bindings(edges))) taken++;
    assert.ok(taken > templates.length * 0.8, `the fast path answered ${taken} of ${templates.length} edge templates`);
  });

  it('gives what JSONata gives on 4,000 generated templates over generated events', async () => {
    const rnd = seededRandom(20261127);
    const pick = <T>(list: readonly T[]): T => list[Math.floor(rnd() * list.length)];
    const STRINGS = ['', 'a', 'Warning', 'Normal', 'x y', 'ü', '😀a😀', '1', 'line\nbreak', '"q"'];
    const NUMBERS = [0, 1, -2, 1.5, 0.1, 3, 1e21, 100, -0.25, 7];
    const FIELDS = [
      'reason',
      'type',
      'count',
      'message',
      'kind',
      'meta',
      'list',
      'num',
      'flag',
      'ts',
      'nested',
      'empty',
      'absent',
    ];
    const value = (depth: number): unknown => {
      switch (Math.floor(rnd() * (depth > 1 ? 7 : 9))) {
        case 0:
          return pick(STRINGS);
        case 1:
          return pick(NUMBERS);
        case 2:
          return rnd() < 0.5;
        case 3:
          return null;
        case 4:
          return pick([0.1 + 0.2, 1 / 3, -0, 2 ** 53, 1e-7]);
        case 5:
          return pick([
            '2024-05-14T09:05:12Z',
            '2024-05-14T09:05:12.123+02:00',
            '2024-05-14',
            'not a time',
            '2024-13-45T25:00:00',
          ]);
        case 6:
          return pick(STRINGS) + pick(STRINGS);
        case 7:
          return Array.from({ length: Math.floor(rnd() * 3) }, () => value(depth + 1));
        default:
          return Object.fromEntries(
            Array.from({ length: Math.floor(rnd() * 3) }, () => [pick(['a', 'b', 'name', 'labels']), value(depth + 1)]),
          );
      }
    };
    const event = () => Object.fromEntries(FIELDS.filter(() => rnd() < 0.8).map((f) => [f, value(0)]));
    const path = () =>
      pick([
        () => pick(FIELDS),
        () => `${pick(['meta', 'nested', 'absent'])}.${pick(['a', 'b', 'name', 'labels'])}`,
        () => `meta.labels.${pick(['a', 'team'])}`,
        () =>
          pick([
            '$rule.name',
            '$occurrence',
            '$cloudevent.type',
            '$object.metadata.labels.team',
            '$owner',
            '$change',
            '$',
            '$.reason',
            '$unknown',
            '$string',
          ]),
      ])();
    const expr = (depth: number): string => {
      if (depth > 3 || rnd() < 0.25) {
        return pick([
          () => JSON.stringify(pick(STRINGS)),
          () => String(pick(NUMBERS)),
          () => pick(['true', 'false', 'null']),
          path,
          path,
          path,
        ])();
      }
      const e = () => expr(depth + 1);
      return pick([
        () => `(${e()} & ${e()})`,
        () => `(${e()} ${pick(['=', '!=', '<', '<=', '>', '>='])} ${e()})`,
        () => `(${e()} ${pick(['+', '-', '*', '/', '%'])} ${e()})`,
        () => `(${e()} ${pick(['and', 'or'])} ${e()})`,
        () => `(${e()} ? ${e()} : ${e()})`,
        () => `(${e()} ? ${e()})`,
        () => `{ "k": ${e()}, "l": ${e()} }`,
        () => `[${e()}, ${e()}]`,
        () => `$${pick(['string', 'lowercase', 'uppercase', 'floor', 'toMillis'])}(${e()})`,
        () =>
          `$substring(${e()}, ${pick(['0', '1', '-3', '2.5'])}${rnd() < 0.5 ? `, ${pick(['0', '2', '-1', '100'])}` : ''})`,
        () => `$append(${e()}, ${e()})`,
        () => `(${e()} ~> $append(${e()}))`,
        () => `( $v := ${e()}; { "v": $v, "w": ${e()} } )`,
        () => `-${e()}`,
        () => pick([`${path()}[0]`, `$count(${e()})`, `$join([${e()}], ",")`, `${path()}.$string()`, `{ ${e()}: 1 }`]), // outside the subset
      ])();
    };
    let taken = 0;
    const TEMPLATES = 4000;
    for (let t = 0; t < TEMPLATES; t++) {
      const source = expr(0);
      try {
        jsonata(source);
      } catch {
        continue; // a generated syntax error (e.g. `-` before a string literal)
      }
      const input = event();
      if (await agrees(source, input, bindings(input))) taken++;
    }
    console.log(`fast path answered for ${taken} of ${TEMPLATES} generated templates`);
    assert.ok(taken > TEMPLATES / 4, `the fast path answered for ${taken} of ${TEMPLATES} generated templates`);
  });
});
