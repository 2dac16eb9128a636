/**
 * The fast path must build exactly the CloudEvent the SDK builds: on every example request, and on
 * thousands of seeded mutations of their headers and bodies (whenever it answers at all; otherwise the
 * request goes to the SDK). It must also actually take the ApiServerSource requests, or it is no fast path.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fastBinaryJson } from '../../src/receive/binary-json-fast-path.js';
import { parseCloudEvents, sdkToEvent } from '../../src/receive/parse-cloudevents.js';
import { bodyOf, fixtureNames, loadFixture } from '../support/fixtures.js';
import { seededRandom } from '../support/random.js';

const fixtures = fixtureNames().map((name) => ({ name, ...loadFixture(name) }));
const MUTATIONS = 5000;

type Outcome = { event: unknown } | { error: string };

function outcomeOf(read: () => unknown): Outcome {
  try {
    return { event: read() };
  } catch (err) {
    return { error: (err as Error).message };
  }
}

/** compare: where the fast path answers, the SDK gives the same event, and both validate alike. */
function compare(headers: Record<string, string | string[]>, body: string, label: string): boolean {
  const fast = fastBinaryJson(headers, body);
  if (fast === undefined) return false;
  const sdk = outcomeOf(() => sdkToEvent(headers, body));
  assert.ok(
    'event' in sdk,
    `${label}: the fast path read a request the SDK refuses (${'error' in sdk ? sdk.error : ''})`,
  );
  const expected = sdk.event as typeof fast;
  assert.equal(
    Object.getPrototypeOf(fast),
    Object.getPrototypeOf(expected),
    `${label}: not the SDK's CloudEvent class`,
  );
  if (headers['ce-time'] === undefined) {
    // Without ce-time both stamp the current time, possibly a millisecond apart.
    assert.ok(
      Math.abs(Date.parse(fast.time!) - Date.parse(expected.time!)) < 1000,
      `${label}: both stamp the current time`,
    );
    assert.deepStrictEqual(
      { ...fast, time: 'now' },
      { ...expected, time: 'now' },
      `${label}: fast path and SDK disagree`,
    );
  } else {
    assert.deepStrictEqual(fast, expected, `${label}: fast path and SDK disagree`);
  }
  assert.deepStrictEqual(
    outcomeOf(() => fast.validate()),
    outcomeOf(() => (sdk.event as typeof fast).validate()),
    `${label}: validation differs`,
  );
  return true;
}

describe('binary-mode JSON fast path', () => {
  it("takes every valid ApiServerSource example and builds the SDK's event", () => {
    let taken = 0;
    for (const fixture of fixtures) {
      const body = bodyOf(fixture);
      if (compare(fixture.headers, body, fixture.name)) taken++;
      const viaService = outcomeOf(() => parseCloudEvents(fixture.headers, body));
      const viaSdk = outcomeOf(() => {
        const events = sdkToEvent(fixture.headers, body);
        return (Array.isArray(events) ? events : [events]).map((e) => (e.validate(), e));
      });
      if ('event' in viaSdk) assert.deepStrictEqual(viaService, viaSdk, fixture.name);
      else assert.ok('error' in viaService, `${fixture.name}: the SDK refuses it, so must we`);
    }
    const valid = fixtures.filter(
      (f) => !f.name.startsWith('malformed') && f.headers['content-type'] === 'application/json',
    ).length;
    assert.ok(valid >= 8, 'the examples hold the ApiServerSource requests');
    assert.ok(taken >= valid - 1, `the fast path took ${taken} of ${valid} plain binary-mode examples`);
  });

  it(`agrees with the SDK on ${MUTATIONS} mutated requests`, () => {
    const rnd = seededRandom(20261127);
    const pick = <T>(list: readonly T[]): T => list[Math.floor(rnd() * list.length)];
    const valid = fixtures.filter((f) => !f.name.startsWith('malformed'));
    let taken = 0;
    for (let i = 0; i < MUTATIONS; i++) {
      const fixture = pick(valid);
      const headers: Record<string, string | string[]> = { ...fixture.headers };
      let body = bodyOf(fixture);
      for (let m = Math.floor(rnd() * 3); m > 0; m--) {
        switch (Math.floor(rnd() * 9)) {
          case 0:
            delete headers[pick(Object.keys(headers))];
            break;
          case 1:
            headers[pick(Object.keys(headers))] = pick([
              '',
              ' ',
              '1.0',
              'x',
              '2026-11-27T10:00:00Z',
              'not a time',
              'ünïcode',
              'a, b',
            ]);
            break;
          case 2:
            headers['ce-time'] = pick([
              '2026-11-27T10:00:00Z',
              '2026-11-27T10:00:00.123456789+02:00',
              '2026-11-27',
              'yesterday',
              '0',
              '',
            ]);
            break;
          case 3:
            headers[
              pick([
                'ce-foo',
                'ce-knativearrivaltime',
                'ce-traceparent',
                'ce-BadName',
                'Ce-Subject',
                'ce-subject',
                'ce-dataschema',
                'datacontenttype',
                'ce-data',
              ])
            ] = pick(['v', '', 'http://x/y', '123']);
            break;
          case 4:
            headers['content-type'] = pick([
              'application/json',
              'application/json; charset=utf-8',
              'Application/JSON',
              'text/plain',
              'application/cloudevents+json',
            ]);
            break;
          case 5:
            headers['ce-specversion'] = pick(['1.0', '0.3', '1.0 ', '']);
            break;
          case 6:
            body = pick([
              '{}',
              '{"a":1}',
              ' {"a":1}',
              '{"a":',
              '[1]',
              '"s"',
              '',
              body.slice(0, Math.floor(rnd() * body.length)),
            ]);
            break;
          case 7:
            headers[pick(['ce-id', 'ce-source', 'ce-type'])] = ['a', 'b'];
            break;
          default:
            headers['ce-id'] = pick([`id-${i}`, '', 'x'.repeat(300)]);
            break;
        }
      }
      if (compare(headers, body, `mutation ${i}`)) taken++;
    }
    assert.ok(
      taken > MUTATIONS / 4,
      `the fast path took ${taken} of ${MUTATIONS} mutations: the comparison must not be vacuous`,
    );
  });
});
