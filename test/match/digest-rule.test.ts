/**
 * Digest rules at load: every problem named precisely (window bounds, the key's JSONata, throttle, shadow,
 * per-event bindings, presets without a digest form, schema bounds); and the presets' digest forms render
 * the receivers' shapes from `$digest`.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { backgroundBindings } from '../../src/deliver/background-delivery.js';
import { digestBinding } from '../../src/match/digest-recorder.js';
import { occurrenceView } from '../../src/match/digest-rule.js';
import { compileDocument } from '../../src/rules/compile-document.js';

const rule = (extra: Record<string, unknown>, actions: unknown[] = [{ destination: 'out' }]) => ({
  destinations: { out: { url: 'https://hooks.example.com/x' }, hpa: { kind: 'hpa-sender' } },
  rules: [
    {
      name: 'storm',
      conditions: { all: [{ fact: 'event', path: '$.reason', operator: 'equal', value: 'BackOff' }] },
      ...extra,
      actions,
    },
  ],
});
const problems = (doc: unknown) => compileDocument(doc, 'digest.yaml', { timeoutMs: 1000 }).problems;

describe('digest rules at load', () => {
  it('compiles a digest with its defaults', () => {
    const { compiled, problems: found } = compileDocument(rule({ digest: { window: '1m' } }), 'digest.yaml', {
      timeoutMs: 1000,
    });
    assert.deepEqual(found, []);
    const digest = compiled!.rules[0].digest!;
    assert.deepEqual(
      { windowMs: digest.windowMs, keep: digest.keep, maxEvents: digest.maxEvents },
      { windowMs: 60_000, keep: 3, maxEvents: undefined },
    );
  });

  it('names each problem with its rule and field', () => {
    const [window, key] = problems(rule({ digest: { window: '500ms', key: 'involvedObject.(' } }));
    assert.equal(
      window,
      'rules[0] (storm).digest.window: "500ms" is outside 1s to 1d (a group stays open that long after its first occurrence)',
    );
    assert.match(key, /^rules\[0\] \(storm\)\.digest\.key: S0\d+: .* at line 1, column \d+/);
    assert.match(problems(rule({ digest: { window: '2d' } }))[0], /digest\.window: "2d" is outside 1s to 1d/);
    assert.deepEqual(problems(rule({ digest: { window: '1m' }, throttle: { window: '1m' } })), [
      'rules[0] (storm).digest: a rule cannot have both digest and throttle (a digest already sends one delivery per key and window); drop throttle',
    ]);
    assert.deepEqual(
      problems(rule({ digest: { window: '1m' }, region: { start: { all: [] }, end: { all: [] }, timeout: '1h' } })),
      [
        'rules[0] (storm).digest: a rule cannot have both digest and region (a region already sends one delivery per start and end); keep one',
      ],
    );
    assert.match(
      problems(rule({ digest: { window: '1m' }, shadow: true }))[0],
      /^rules\[0\] \(storm\)\.digest: a shadow rule cannot have a digest/,
    );
    assert.deepEqual(
      problems(
        rule({ digest: { window: '1m' } }, [
          { destination: 'out', body: '{ "pod": $object.metadata.name, "n": $digest.count }' },
        ]),
      ),
      [
        "rules[0] (storm).actions[0]: a digest's templates cannot read $object (a digest is sent after its window, for many events); read them in digest.key or in the conditions",
      ],
    );
    assert.deepEqual(problems(rule({ digest: { window: '1m' } }, [{ destination: 'hpa' }])), [
      "rules[0] (storm).actions[0].destination: a hpa-sender destination reads the event's object and cannot send a digest",
    ]);
    assert.deepEqual(
      problems(
        rule({ digest: { window: '1m' } }, [{ destination: 'out', preset: 'pagerduty', fields: { routing_key: 'k' } }]),
      ),
      [
        'rules[0] (storm).actions[0].preset: preset pagerduty has no digest form (presets with one: grafana-annotation, slack, teams); write a body over $digest',
      ],
    );
    assert.deepEqual(problems(rule({ digest: { window: '1m', maxEvents: 1, keep: 50 } })).sort(), [
      'rules[0] (storm).digest.keep: must be <= 20',
      'rules[0] (storm).digest.maxEvents: must be >= 2',
    ]);
    assert.deepEqual(problems(rule({ digest: { window: '1m', every: '1m' } })), [
      'rules[0] (storm).digest: unknown field "every"',
    ]);
  });

  it('the key may read the enrichment facts (they are read when the event arrives)', () => {
    assert.deepEqual(problems(rule({ digest: { window: '1m', key: '$owner.metadata.name' } })), []);
  });
});

describe('presets in digest form', () => {
  const view = (i: number) =>
    occurrenceView({
      metadata: { name: `e${i}`, namespace: 'shop', uid: `u${i}`, managedFields: [{}] },
      involvedObject: { kind: 'Pod', namespace: 'shop', name: `web-7d-p${i}` },
      reason: 'BackOff',
      type: 'Warning',
      message: 'x'.repeat(5000),
      lastTimestamp: '2026-01-01T00:00:00Z',
      count: 2,
    });
  const group = {
    key: JSON.stringify('shop/web'),
    count: 20,
    first: [view(1), view(2), view(3)],
    last: [view(18), view(19), view(20)],
    start: Date.parse('2026-01-01T00:00:00Z'),
    end: Date.parse('2026-01-01T00:04:00Z'),
  };
  const render = async (preset: string) => {
    const { compiled } = compileDocument(
      rule({ digest: { window: '5m' } }, [{ destination: 'out', preset }]),
      'digest.yaml',
      { timeoutMs: 1000 },
    );
    const [r] = compiled!.rules;
    return (await r.actions[0].body!.evaluate(
      view(20),
      backgroundBindings(r, 'g1', { digest: digestBinding(group) }),
    )) as Record<string, any>;
  };

  it('an occurrence keeps the fields templates read, the message cut at 1,024 characters, and not managedFields', () => {
    const kept = view(1);
    assert.equal((kept.message as string).length, 1025);
    assert.deepEqual(kept.metadata, { name: 'e1', namespace: 'shop', uid: 'u1' });
    // Event data is hostile: only known fields, each text cut, so a group's size is bounded.
    const hostile = occurrenceView({
      involvedObject: { kind: 'Pod', name: 'p'.repeat(10_000), extra: 'x'.repeat(100_000) },
      reason: 'r'.repeat(10_000),
      count: 'many',
      related: { huge: 'y'.repeat(100_000) },
    });
    assert.deepEqual(Object.keys(hostile).sort(), ['involvedObject', 'reason']);
    assert.deepEqual(Object.keys(hostile.involvedObject as object), ['kind', 'name']);
    assert.ok(JSON.stringify(hostile).length < 700);
  });

  it('slack: a title with the count and key, the kept occurrences and how many more', async () => {
    const body = await render('slack');
    assert.match(body.text, /^20 × BackOff — shop\/web \(2026-01-01T00:00:00.000Z – 2026-01-01T00:04:00.000Z\)$/);
    assert.equal(body.blocks[0].text.text, ':warning: *20 × BackOff — shop/web*');
    const lines = (body.blocks[1].text.text as string).split('\n');
    assert.equal(lines[3], '… and 14 more …');
    assert.ok(body.blocks[1].text.text.length <= 2900, 'within a Block Kit section');
  });

  it('teams: an Adaptive Card 1.4 with the title, one line per kept occurrence and the facts', async () => {
    const card = (await render('teams')).attachments[0].content;
    assert.equal(card.version, '1.4');
    assert.equal(card.body[0].text, '20 × BackOff — shop/web');
    assert.equal(card.body.length, 1 + 7 + 1);
    assert.deepEqual(
      card.body.at(-1).facts.map((f: { title: string }) => f.title),
      ['Type', 'Count', 'First seen', 'Last seen'],
    );
  });

  it('grafana-annotation: a region from the first to the last occurrence', async () => {
    const body = await render('grafana-annotation');
    assert.deepEqual([body.time, body.timeEnd], [group.start, group.end]);
    assert.match(body.text, /^20 × BackOff — shop\/web\n/);
    assert.deepEqual(body.tags, ['k8s', 'digest', 'BackOff', 'Pod', 'shop']);
  });
});
