/**
 * Presets that guide instead of surprise: typed literals in fields, unknown field names and missing
 * required fields refused at load with the preset's fields named, preset + body explained in words, and a
 * PagerDuty dedup_key that stays the same across repeats of one object's reason.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { stringify } from 'yaml';
import { newStore } from '../../src/cli/validate.js';
import { runTests } from '../../src/cli/test-rules.js';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { EXAMPLES_DIR, loadFixture } from '../support/fixtures.js';

const check = (action: Record<string, unknown>) =>
  newStore().check(
    'doc',
    stringify({
      destinations: { d: { url: 'https://receiver.example.com/x' } },
      rules: [{ name: 'r', conditions: { all: [] }, actions: [{ destination: 'd', ...action }] }],
    }),
  );

describe('preset fields', () => {
  it("a misspelt field is refused at load, with the likely field and the preset's fields", () => {
    const { problems } = check({ preset: 'pagerduty', fields: { routing_key: 'k', 'payload.sevrity': 'critical' } });
    assert.equal(problems.length, 1);
    assert.match(
      problems[0],
      /^doc: rules\[0\] \(r\)\.actions\[0\]\.fields\.payload\.sevrity: "payload\.sevrity" is not a field of preset pagerduty — did you mean "payload\.severity"\? \(its fields: routing_key, event_action, dedup_key, payload\.summary/,
    );
  });

  it('a required field that is missing is refused at load, saying what to put there', () => {
    const { problems } = check({ preset: 'pagerduty' });
    assert.deepEqual(problems, [
      "doc: rules[0] (r).actions[0].fields: preset pagerduty needs fields.routing_key: the integration's routing key, e.g. { secretKeyRef: { name: pagerduty, key: routing-key } }",
    ]);
  });

  it("open parts of a receiver's API take any name; generic presets take any field", () => {
    assert.deepEqual(
      check({ preset: 'pagerduty', fields: { routing_key: 'k', 'payload.custom_details.team': 'shop' } }).problems,
      [],
    );
    assert.deepEqual(
      check({
        preset: 'alertmanager',
        fields: { 'labels.team': 'shop', '0.annotations.runbook': 'https://runbooks.example.com/x' },
      }).problems,
      [],
    );
    assert.deepEqual(check({ preset: 'webhook', fields: { anything: 'goes' } }).problems, []);
  });

  it('preset and body together: one message in words, not "must NOT be valid"', () => {
    const { problems } = check({ preset: 'slack', body: '{ "text": message }' });
    assert.deepEqual(problems, [
      'doc: rules[0] (r).actions[0]: has both "preset" and "body": a preset builds the body itself — keep "preset" and change what it builds with "fields", or drop "preset" and write the whole "body"',
    ]);
  });

  it('numbers and booleans in fields reach the body as numbers and booleans (Grafana panelId)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'ker-preset-'));
    await writeFile(
      join(dir, 'rules.yaml'),
      stringify({
        destinations: { grafana: { url: 'https://grafana.example.com/api/annotations' } },
        rules: [
          {
            name: 'g',
            conditions: { all: [] },
            actions: [
              {
                destination: 'grafana',
                preset: 'grafana-annotation',
                fields: { dashboardUID: 'abc', panelId: 2, dashboardId: 0 },
              },
            ],
          },
        ],
      }),
    );
    const { problems, results } = await runTests(
      {
        rules: [join(dir, 'rules.yaml')],
        secrets: [],
        events: [join(EXAMPLES_DIR, 'pod-backoff-crashloop-resource-update.json')],
        json: true,
        updateExpect: false,
      },
      async () => '',
    );
    assert.deepEqual(problems, []);
    const result = results[0];
    assert.ok('actions' in result);
    const body = result.actions[0].request!.body as Record<string, unknown>;
    assert.equal(body.panelId, 2);
    assert.equal(body.dashboardId, 0);
    assert.equal(body.dashboardUID, 'abc');
    assert.deepEqual(check({ preset: 'slack', fields: { unfurl_links: false } }).problems, []);
  });
});

describe('pagerduty dedup_key', () => {
  async function dedupKeys(events: object[]): Promise<string[]> {
    const dir = await mkdtemp(join(tmpdir(), 'ker-pd-'));
    await writeFile(
      join(dir, 'rules.yaml'),
      stringify({
        destinations: { pd: { url: 'https://pagerduty.example.com/v2/enqueue' } },
        rules: [
          {
            name: 'page',
            conditions: { all: [] },
            actions: [{ destination: 'pd', preset: 'pagerduty', fields: { routing_key: 'R' } }],
          },
        ],
      }),
    );
    const paths = await Promise.all(
      events.map(async (event, i) => {
        const path = join(dir, `e${i}.json`);
        await writeFile(path, JSON.stringify(event));
        return path;
      }),
    );
    const { results } = await runTests(
      { rules: [join(dir, 'rules.yaml')], secrets: [], events: paths, json: true, updateExpect: false },
      async () => '',
    );
    return results.map((r) =>
      'actions' in r ? (r.actions[0].request!.body as { dedup_key: string }).dedup_key : 'none',
    );
  }

  it("is the same for every repeat of one object's reason, and differs for another reason or object", async () => {
    const base = loadFixture('pod-backoff-crashloop-resource-update.json');
    const repeat = (count: number, edit: (body: Record<string, any>) => void = () => undefined) => {
      const body = structuredClone(base.body) as Record<string, any>;
      body.count = count;
      body.metadata.resourceVersion = String(48212644 + count);
      edit(body);
      return { headers: { ...base.headers, 'ce-id': `id-${count}-${body.reason}-${body.involvedObject.name}` }, body };
    };
    const keys = await dedupKeys([
      repeat(7),
      repeat(8),
      repeat(9, (b) => (b.reason = 'Unhealthy')),
      repeat(10, (b) => (b.involvedObject.name = 'payment-5c7d9b8f6-xxxxx')),
    ]);
    assert.equal(keys[0], 'Pod/shop/payment-5c7d9b8f6-2m4rt/BackOff');
    assert.equal(keys[1], keys[0], 'a repeat updates the same incident');
    assert.equal(keys[2], 'Pod/shop/payment-5c7d9b8f6-2m4rt/Unhealthy');
    assert.equal(keys[3], 'Pod/shop/payment-5c7d9b8f6-xxxxx/BackOff');
  });
});
