/**
 * Every preset renders a request that satisfies its receiver's documented contract.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { HTTP, type CloudEvent } from 'cloudevents';
import { CloudEvent as CE } from 'cloudevents';
import { stringify } from 'yaml';
import { normalize } from '../../src/normalize/normalize.js';
import { OccurrenceTracker } from '../../src/normalize/occurrence.js';
import { PRESET_NAMES } from '../../src/render/presets.js';
import { redacted, renderRequest, type RenderedRequest } from '../../src/render/render-request.js';
import { NO_CLUSTER_SECRETS } from '../../src/render/value-source.js';
import { newStore } from '../../src/cli/validate.js';
import { loadFixture } from '../support/fixtures.js';
import schema from '../../src/rules/rule-document.schema.json' with { type: 'json' };

type Obj = Record<string, any>;

async function render(
  preset: string,
  fixture: string,
  fields?: Record<string, unknown>,
): Promise<{ request: RenderedRequest; body: any; occurrence: string }> {
  const doc = {
    destinations: { d: { url: 'https://receiver.example.com/x' } },
    rules: [
      {
        name: `p-${preset}`,
        conditions: { all: [] },
        actions: [{ destination: 'd', preset, ...(fields ? { fields } : {}) }],
      },
    ],
  };
  const { rules, problems } = newStore().check('preset', stringify(doc));
  assert.deepEqual(problems, []);
  const f = loadFixture(fixture);
  const ce = new CE({
    specversion: '1.0',
    id: f.headers['ce-id'],
    source: f.headers['ce-source'],
    type: f.headers['ce-type'],
    data: f.body,
  });
  const normalized = normalize(ce, new OccurrenceTracker(10));
  assert.equal(normalized.kind, 'input');
  const input = normalized.input;
  const bindings = {
    cloudevent: input.cloudevent,
    rule: { name: `p-${preset}`, description: '' },
    occurrence: input.occurrence,
    change: input.change,
    object: null,
    owner: null,
    namespace: null,
  };
  const request = await renderRequest(rules[0].actions[0], {
    input: input.event,
    bindings,
    secrets: NO_CLUSTER_SECRETS,
    env: { PD_KEY: 'R0UTINGKEY' },
  });
  return { request, body: JSON.parse(request.body), occurrence: input.occurrence };
}

const HPA = 'hpa-successful-rescale-up-resource-add';
const BACKOFF = 'pod-backoff-crashloop-resource-update';
const isMs = (v: unknown) => Number.isInteger(v) && String(v).length === 13;
const isSeconds = (v: unknown) => Number.isInteger(v) && String(v).length === 10;
const isStringMap = (v: unknown) =>
  typeof v === 'object' && v !== null && Object.values(v).every((x) => typeof x === 'string');
const isStrings = (v: unknown) => Array.isArray(v) && v.every((x) => typeof x === 'string');

describe('presets', () => {
  it('the schema lists exactly the presets there are', () => {
    const listed = (schema as Obj).definitions.rule.properties.actions.items.properties.preset.enum;
    assert.deepEqual([...listed].sort(), [...PRESET_NAMES].sort());
  });

  it('wavefront-event: name, string annotations, startTime/endTime in ms, string tags', async () => {
    const { body } = await render('wavefront-event', HPA);
    assert.equal(body.name, 'SuccessfulRescale HorizontalPodAutoscaler shop/checkout');
    assert.ok(isStringMap(body.annotations) && ['info', 'warn', 'severe'].includes(body.annotations.severity));
    assert.ok(isMs(body.startTime) && body.endTime === body.startTime + 1);
    assert.equal(body.startTime, Date.parse('2024-05-14T09:12:03Z'));
    assert.ok(isStrings(body.tags));
  });

  it('grafana-annotation: text, time/timeEnd in ms, tags; dashboardUID through fields', async () => {
    const { body } = await render('grafana-annotation', BACKOFF, { dashboardUID: 'abc123', panelId: { jsonata: '2' } });
    assert.equal(typeof body.text, 'string');
    assert.ok(isMs(body.time) && isMs(body.timeEnd) && body.timeEnd >= body.time);
    assert.ok(isStrings(body.tags));
    assert.equal(body.dashboardUID, 'abc123');
    assert.equal(body.panelId, 2, 'a JSONata field keeps its JSON type');
  });

  it('graphite-event: what, tags, when in seconds, data', async () => {
    const { body } = await render('graphite-event', HPA);
    assert.ok(
      typeof body.what === 'string' && isStrings(body.tags) && isSeconds(body.when) && typeof body.data === 'string',
    );
  });

  it('slack: text fallback and Block Kit blocks within limits', async () => {
    const { body } = await render('slack', BACKOFF);
    assert.match(body.text, /^BackOff Pod shop\/payment-5c7d9b8f6-2m4rt \(×7\): Back-off restarting/);
    assert.ok(Array.isArray(body.blocks) && body.blocks.length <= 50);
    for (const block of body.blocks) assert.ok(['section', 'context'].includes(block.type));
    assert.ok(body.blocks.every((b: Obj) => !b.text || b.text.text.length <= 3000));
  });

  it('teams: an Adaptive Card 1.4 wrapped in a message', async () => {
    const { body } = await render('teams', BACKOFF);
    assert.equal(body.type, 'message');
    const [attachment] = body.attachments;
    assert.equal(attachment.contentType, 'application/vnd.microsoft.card.adaptive');
    assert.equal(attachment.content.type, 'AdaptiveCard');
    assert.equal(attachment.content.version, '1.4');
    assert.ok(attachment.content.body.every((element: Obj) => ['TextBlock', 'FactSet'].includes(element.type)));
    assert.ok(
      attachment.content.body
        .find((e: Obj) => e.type === 'FactSet')
        .facts.every((f: Obj) => typeof f.title === 'string' && typeof f.value === 'string'),
    );
  });

  it('pagerduty: trigger with routing_key (from env, redacted when printed), dedup_key = involved object and reason, valid payload', async () => {
    const { body, request, occurrence } = await render('pagerduty', BACKOFF, { routing_key: { env: 'PD_KEY' } });
    assert.equal(body.routing_key, 'R0UTINGKEY');
    assert.equal(body.event_action, 'trigger');
    assert.equal(body.dedup_key, 'Pod/shop/payment-5c7d9b8f6-2m4rt/BackOff');
    assert.notEqual(body.dedup_key, occurrence);
    assert.ok(body.payload.summary.length <= 1024 && typeof body.payload.source === 'string');
    assert.ok(['critical', 'error', 'warning', 'info'].includes(body.payload.severity));
    assert.ok(!Number.isNaN(Date.parse(body.payload.timestamp)));
    assert.equal((redacted(request).body as Obj).routing_key, '[redacted]');
  });

  it('alertmanager: an array of alerts with string labels (alertname), annotations, RFC3339 startsAt < endsAt', async () => {
    const { body } = await render('alertmanager', BACKOFF, { 'labels.team': 'payments' });
    assert.ok(Array.isArray(body) && body.length === 1);
    const [alert] = body;
    assert.ok(isStringMap(alert.labels) && alert.labels.alertname === 'KubernetesBackOff');
    assert.equal(alert.labels.team, 'payments', 'fields apply to every alert of the list');
    assert.ok(isStringMap(alert.annotations));
    assert.ok(Date.parse(alert.startsAt) < Date.parse(alert.endsAt));
    assert.match(alert.startsAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$/);
  });

  it('datadog-event: title ≤ 100, text ≤ 4000, date_happened in s, a valid alert_type, tags, aggregation_key', async () => {
    const { body } = await render('datadog-event', BACKOFF);
    assert.ok(body.title.length <= 100 && body.text.length <= 4000);
    assert.ok(isSeconds(body.date_happened));
    assert.ok(['error', 'warning', 'info', 'success'].includes(body.alert_type));
    assert.ok(isStrings(body.tags) && body.aggregation_key.length <= 100);
  });

  it('loki: string labels and a nanosecond timestamp as a string', async () => {
    const { body } = await render('loki', HPA);
    const [stream] = body.streams;
    assert.ok(isStringMap(stream.stream));
    const [[ts, line]] = stream.values;
    assert.match(ts, /^\d{19}$/);
    assert.equal(ts, `${Date.parse('2024-05-14T09:12:03Z')}000000`);
    assert.equal(typeof line, 'string');
  });

  it('cloudevent: a binary-mode CloudEvent the cloudevents SDK accepts and validates', async () => {
    const { request, body } = await render('cloudevent', HPA);
    const event = HTTP.toEvent({ headers: request.headers, body: request.body }) as CloudEvent<unknown>;
    assert.equal(event.validate(), true);
    assert.equal(event.type, 'dev.kube-event-rules.event.normal');
    assert.equal(event.subject, 'HorizontalPodAutoscaler/shop/checkout');
    assert.equal((event.data as Obj).reason, 'SuccessfulRescale');
    assert.equal(body.reason, 'SuccessfulRescale');
  });

  it('webhook: rule, occurrence, change and the normalized Event', async () => {
    const { body, occurrence } = await render('webhook', HPA);
    assert.deepEqual(
      [body.rule, body.occurrence, body.change, body.event.reason],
      ['p-webhook', occurrence, 'add', 'SuccessfulRescale'],
    );
  });

  it('a body and a preset together are rejected', () => {
    const doc = {
      destinations: { d: { url: 'https://x.example.com' } },
      rules: [{ name: 'r', conditions: { all: [] }, actions: [{ destination: 'd', preset: 'slack', body: '{}' }] }],
    };
    assert.ok(newStore().check('p', stringify(doc)).problems.length > 0);
  });
});
