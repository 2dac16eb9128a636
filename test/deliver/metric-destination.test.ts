/**
 * The `metric` destination kind without the service: what a document may declare (load errors that name
 * the document, destination and field), what rendering gives for an event, how the series are bounded,
 * and which metrics the rule store keeps registered across documents, reloads and removals.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { Registry } from 'prom-client';
import { parse } from 'yaml';
import { ConfigurationError } from '../../src/errors.js';
import { knownSecrets } from '../../src/redact.js';
import { metricKind } from '../../src/deliver/kinds/metric.js';
import { UserMetrics } from '../../src/deliver/user-metrics.js';
import { createLogger } from '../../src/log.js';
import { compileDocument } from '../../src/rules/compile-document.js';
import { RuleStore } from '../../src/rules/rule-store.js';
import { NO_CLUSTER_SECRETS } from '../../src/render/value-source.js';
import { createMetrics } from '../support/quiet.js';
import { sample, samples } from '../support/metrics-text.js';

const RULE = `rules:
  - name: failed-scheduling
    conditions: { all: [ { fact: event, path: $.reason, operator: equal, value: FailedScheduling } ] }
    actions: [ { destination: out } ]
`;
/** A document whose destination `out` is the given YAML (indented under it). */
const documentWith = (destination: string) => `destinations:\n  out:\n${destination.replace(/^/gm, '    ')}\n${RULE}`;
const counter = (labels = 'reason: reason', name = 'scheduling_failures_total') =>
  documentWith(
    `kind: metric\nmetric:\n  name: ${name}\n  type: counter\n  help: Pods not scheduled.\n  labels: { ${labels} }`,
  );

const newStore = (maxSeries = 1000) => {
  const metrics = createMetrics({ maxSeriesPerMetric: maxSeries });
  return { metrics, store: new RuleStore({ timeoutMs: 100 }, metrics, createLogger('silent')) };
};
const text = (metrics: ReturnType<typeof createMetrics>) => metrics.registry.metrics();

describe('metric destinations: what a document may declare', () => {
  const problemsOf = (destination: string) =>
    newStore().store.check('file:metrics.yaml', documentWith(destination)).problems;
  const refuses = (destination: string, expected: RegExp) => {
    const problems = problemsOf(destination);
    assert.ok(
      problems.some((p) => expected.test(p)),
      `expected ${expected} among:\n${problems.join('\n')}`,
    );
  };
  const metric = (fields: string) => `kind: metric\nmetric:\n${fields.replace(/^/gm, '  ')}`;

  it('a valid counter and a valid histogram compile, reading what their expressions read', () => {
    assert.deepEqual(newStore().store.check('file:metrics.yaml', counter()).problems, []);
    const histogram = metric(
      'name: pending_pods\ntype: histogram\nhelp: h\nlabels: { owner: "$owner.metadata.name" }\nbuckets: [1, 5, 10]\nvalue: count',
    );
    const { compiled, problems } = compileDocument(parse(documentWith(histogram)), 'd', { timeoutMs: 100 });
    assert.deepEqual(problems, []);
    assert.deepEqual(
      [...compiled!.rules[0].actions[0].uses],
      ['owner'],
      'the owner is fetched only because a label reads it',
    );
  });

  it('names the document, the destination and the field of each mistake', () => {
    refuses(
      metric('name: scheduling-failures_total\ntype: counter\nhelp: h'),
      /^file:metrics\.yaml: destinations\.out: metric\.name: "scheduling-failures_total" is not a metric name/,
    );
    refuses(
      metric('name: scheduling_failures\ntype: counter\nhelp: h'),
      /destinations\.out: metric\.name: a counter's name ends in _total \(scheduling_failures_total\)/,
    );
    refuses(
      metric('name: __x_total\ntype: counter\nhelp: h'),
      /metric\.name: "__x_total": names starting with __ are reserved by Prometheus/,
    );
    refuses(
      metric('name: waits_count\ntype: histogram\nhelp: h\nbuckets: [1]\nvalue: count'),
      /metric\.name: a histogram's name may not end in _total, _bucket, _sum or _count/,
    );
    refuses(
      metric('name: x_total\ntype: counter\nhelp: h\nlabels: { __name__: reason }'),
      /destinations\.out: metric\.labels\.__name__: label names starting with __ are reserved by Prometheus/,
    );
    refuses(
      metric('name: x_total\ntype: counter\nhelp: h\nlabels: { "node-pool": reason }'),
      /metric\.labels\.node-pool: not a label name/,
    );
    refuses(
      metric('name: x\ntype: histogram\nhelp: h\nlabels: { le: reason }\nbuckets: [1]\nvalue: count'),
      /metric\.labels\.le: a histogram sets le itself/,
    );
    refuses(
      metric('name: x_total\ntype: counter\nhelp: h\nlabels: { reason: "$substring(reason" }'),
      /destinations\.out: metric\.labels\.reason: .*/,
    );
    refuses(
      metric('name: x\ntype: histogram\nhelp: h\nvalue: count'),
      /metric\.buckets: a histogram needs its bucket upper bounds/,
    );
    refuses(
      metric('name: x\ntype: histogram\nhelp: h\nbuckets: [1, 5, 5]\nvalue: count'),
      /metric\.buckets\[2\]: 5 — the bounds must be finite numbers, each larger than the one before/,
    );
    refuses(
      metric('name: x\ntype: histogram\nhelp: h\nbuckets: [1]'),
      /metric\.value: a histogram needs the JSONata expression of the value it observes/,
    );
    refuses(
      metric('name: x_total\ntype: counter\nhelp: h\nbuckets: [1]'),
      /metric\.buckets: only a histogram has buckets/,
    );
    refuses(
      metric('name: x_total\ntype: counter\nhelp: h\nvalue: count'),
      /metric\.value: a counter counts 1 per action/,
    );
    refuses(
      metric(
        `name: x_total\ntype: counter\nhelp: h\nlabels: { ${Array.from({ length: 11 }, (_, i) => `l${i}: reason`).join(', ')} }`,
      ),
      /metric\.labels: 11 labels; at most 10/,
    );
    refuses(
      `url: https://example.com/\n${metric('name: x_total\ntype: counter\nhelp: h')}`,
      /destinations\.out: url: not for a metric destination/,
    );
    refuses('kind: metric', /destinations\.out: must have required property 'metric'/);
    refuses(
      `url: https://example.com/\nmetric: { name: x_total, type: counter, help: h }`,
      /destinations\.out: must have required property 'kind'/,
    );
  });

  it('an action of a metric destination takes no body, preset or fields', () => {
    const text = counter().replace(
      'actions: [ { destination: out } ]',
      'actions: [ { destination: out, body: "reason" } ]',
    );
    const { problems } = newStore().store.check('file:metrics.yaml', text);
    assert.ok(
      problems.some((p) =>
        /rules\[0\] \(failed-scheduling\)\.actions\[0\]: body: an action of a metric destination takes none/.test(p),
      ),
      problems.join('\n'),
    );
  });

  it("a team's document cannot declare the namespace label, and its label expressions count against TEAM_MAX_TEMPLATE_BYTES", () => {
    const { store } = newStore();
    const own = store.check(
      'configmap:team-a/rules/m.yaml',
      counter('namespace: \'"kube-system"\', reason: reason'),
      'team-a',
    ).problems;
    assert.ok(
      own.some((p) =>
        /destinations\.out\.metric\.labels\.namespace: a team's metrics always carry namespace="team-a" \(their own namespace\); it cannot be declared/.test(
          p,
        ),
      ),
      own.join('\n'),
    );
    assert.deepEqual(
      store.check('file:m.yaml', counter('namespace: involvedObject.namespace')).problems,
      [],
      'the cluster scope may declare it',
    );
    const long = store.check(
      'configmap:team-a/rules/m.yaml',
      counter(`reason: '${'"x" & '.repeat(1000)}"x"'`),
      'team-a',
    ).problems;
    assert.ok(
      long.some((p) =>
        /destinations\.out\.metric\.labels\.reason: the expression has \d+ bytes; a team's may have at most 4096/.test(
          p,
        ),
      ),
      long.join('\n'),
    );
  });
});

describe('metric destinations: rendering an observation', () => {
  const actionOf = (labels: string, extra = '') => {
    const destination = `kind: metric\nmetric:\n  name: x_total\n  type: counter\n  help: h\n  labels: { ${labels} }${extra}`;
    return compileDocument(parse(documentWith(destination)), 'd', { timeoutMs: 100 }).compiled!.rules[0].actions[0];
  };
  const render = (action: ReturnType<typeof actionOf>, input: unknown) =>
    metricKind.render(action, { input, bindings: {}, secrets: NO_CLUSTER_SECRETS, env: {} });

  it('label values are strings: a number becomes one, a long value is cut to 128 characters', async () => {
    const request = await render(actionOf('reason: reason, count: count, long: message'), {
      reason: 'FailedScheduling',
      count: 3,
      message: 'é'.repeat(300),
    });
    assert.equal(request.method, 'INC');
    assert.equal(request.url, 'kube_event_rules_user_x_total');
    assert.deepEqual(JSON.parse(request.body), {
      metric: 'kube_event_rules_user_x_total',
      type: 'counter',
      labels: { reason: 'FailedScheduling', count: '3', long: 'é'.repeat(128) },
    });
  });

  it('a value the service read from a Secret or env never shows in a label', async () => {
    knownSecrets.remember('s3cr3t-t0ken-value', 'shop');
    const request = await render(actionOf('message: message'), { message: 'login with s3cr3t-t0ken-value failed' });
    assert.deepEqual(JSON.parse(request.body).labels, { message: 'login with [redacted] failed' });
  });

  it('a label that is not a string or number, or has no value, is a permanent error of the action', async () => {
    await assert.rejects(
      render(actionOf('flag: "count > 1"'), { count: 3 }),
      (err: Error) =>
        err instanceof ConfigurationError &&
        /destination out metric label flag: the expression must give a string or number, got true/.test(err.message),
    );
    await assert.rejects(
      render(actionOf('owner: involvedObject.name'), {}),
      (err: Error) =>
        err instanceof ConfigurationError &&
        /metric label owner: the expression gave no value for this event/.test(err.message),
    );
    await assert.rejects(render(actionOf('bad: "$number(\'x\')"'), {}), /metric label bad|number/);
  });
});

describe('metric destinations: bounded series', () => {
  const observation = (labels: Record<string, string>) => ({
    metric: 'kube_event_rules_user_pulls_total',
    type: 'counter' as const,
    labels,
  });
  const declared = (maxSeries: number, team = false) => {
    const registry = new Registry();
    const userMetrics = new UserMetrics(registry, maxSeries);
    const compiled = compileDocument(
      parse(
        documentWith(
          'kind: metric\nmetric: { name: pulls_total, type: counter, help: h, labels: { registry: reason } }',
        ),
      ),
      'd',
      { timeoutMs: 100 },
    ).compiled!;
    const rules = team
      ? compiled.rules.map((rule) => ({
          ...rule,
          actions: rule.actions.map((a) => ({ ...a, destination: { ...a.destination, scope: 'team-a' } })),
        }))
      : compiled.rules;
    userMetrics.declare(rules);
    return { registry, userMetrics };
  };

  it('past METRIC_MAX_SERIES_PER_METRIC label sets, the label values become "other" and the overflow is counted', async () => {
    const { registry, userMetrics } = declared(2);
    for (const host of ['a.example', 'b.example', 'c.example', 'd.example', 'a.example'])
      assert.equal(userMetrics.record(observation({ registry: host })), undefined);
    const text = await registry.metrics();
    assert.deepEqual(
      samples(text, 'kube_event_rules_user_pulls_total').map((s) => [s.labels.registry, s.value]),
      [
        ['a.example', 2],
        ['b.example', 1],
        ['other', 2],
      ],
    );
    assert.equal(
      sample(text, 'kube_event_rules_metric_series_overflow_total', { metric: 'kube_event_rules_user_pulls_total' }),
      2,
    );
  });

  it('each team namespace has its own bound, and its overflow keeps its namespace', async () => {
    const { registry, userMetrics } = declared(1, true);
    userMetrics.record(observation({ registry: 'a.example', namespace: 'team-a' }));
    userMetrics.record(observation({ registry: 'b.example', namespace: 'team-a' }));
    userMetrics.record(observation({ registry: 'b.example', namespace: 'team-b' }));
    const found = samples(await registry.metrics(), 'kube_event_rules_user_pulls_total').map((s) => s.labels);
    assert.deepEqual(found, [
      { registry: 'a.example', namespace: 'team-a' },
      { registry: 'other', namespace: 'team-a' },
      { registry: 'b.example', namespace: 'team-b' },
    ]);
  });

  it("a team's metrics together record at most TEAM_MAX_METRIC_SERIES series in its namespace; a removed metric frees its share", async () => {
    const metrics = createMetrics({ maxSeriesPerMetric: 10, teamMaxSeries: 2 });
    const store = new RuleStore({ timeoutMs: 100 }, metrics, createLogger('silent'));
    const teamDocument = (name: string) =>
      counter('reason: reason', `${name}_total`).replace('failed-scheduling', name);
    assert.deepEqual(store.update('configmap:team-a/rules/one.yaml', teamDocument('one'), 'team-a'), []);
    assert.deepEqual(store.update('configmap:team-a/rules/two.yaml', teamDocument('two'), 'team-a'), []);
    const record = (name: string, reason: string, namespace = 'team-a') =>
      metrics.userMetrics.record({
        metric: `kube_event_rules_user_${name}_total`,
        type: 'counter',
        labels: { reason, namespace },
      });
    record('one', 'a');
    record('one', 'b');
    record('two', 'a'); // a third series of team-a: over its share
    record('two', 'a', 'team-b'); // team-b's share is its own
    const reasons = (text: string, name: string) =>
      samples(text, `kube_event_rules_user_${name}_total`).map((s) => `${s.labels.namespace}:${s.labels.reason}`);
    let text = await metrics.registry.metrics();
    assert.deepEqual(reasons(text, 'two'), ['team-a:other', 'team-b:a']);
    assert.equal(
      sample(text, 'kube_event_rules_metric_series_overflow_total', { metric: 'kube_event_rules_user_two_total' }),
      1,
    );
    store.remove('configmap:team-a/rules/one.yaml');
    record('two', 'c');
    text = await metrics.registry.metrics();
    assert.deepEqual(
      reasons(text, 'two'),
      ['team-a:other', 'team-b:a', 'team-a:c'],
      'the removed metric gave its series back',
    );
  });

  it('refuses an observation that does not fit the declaration (declared again meanwhile): the Broker may redeliver', () => {
    const { userMetrics } = declared(10);
    assert.deepEqual(userMetrics.record(observation({ host: 'a' })), {
      error:
        'metric kube_event_rules_user_pulls_total was declared again (a counter with labels registry) while this event was processed',
      retry: true,
    });
    assert.match(
      userMetrics.record({ ...observation({}), metric: 'kube_event_rules_user_gone_total' })!.error,
      /is no longer declared by any rule in force/,
    );
  });
});

describe('metric destinations: declared by the documents in force', () => {
  it('two documents with the same definition share the metric; a different one is rejected, naming the first', async () => {
    const { store, metrics } = newStore();
    assert.deepEqual(store.update('file:a.yaml', counter()), []);
    assert.deepEqual(
      store.update('file:b.yaml', counter().replace('failed-scheduling', 'failed-scheduling-b')),
      [],
      'the same definition: shared',
    );
    const problems = store.update(
      'file:c.yaml',
      counter('cause: reason').replace('failed-scheduling', 'failed-scheduling-c'),
    );
    assert.deepEqual(problems, [
      'file:c.yaml: metric kube_event_rules_user_scheduling_failures_total is already declared by file:a.yaml as a counter with labels reason, which comes first; this document declares a counter with labels cause: declare it the same way, or use another name; this document is not in force',
    ]);
    assert.deepEqual(store.current.rules.map((r) => r.name).sort(), ['failed-scheduling', 'failed-scheduling-b']);
    assert.match(await text(metrics), /^# TYPE kube_event_rules_user_scheduling_failures_total counter$/m);
  });

  it("a team's metric: never a cluster metric's name; another team's only with the same definition", () => {
    const { store } = newStore();
    assert.deepEqual(store.update('file:a.yaml', counter('namespace: involvedObject.namespace, reason: reason')), []);
    const clash = store.update(
      'configmap:team-a/rules/m.yaml',
      counter().replace('failed-scheduling', 'pending'),
      'team-a',
    );
    assert.match(
      clash.join('\n'),
      /metric kube_event_rules_user_scheduling_failures_total is declared by a cluster rule document \(file:a\.yaml\); a team's metric cannot share its name: rename it/,
    );
    const named = (team: string, labels: string) =>
      store.update(
        `configmap:${team}/rules/m.yaml`,
        counter(labels, 'pending_total').replace('failed-scheduling', 'pending'),
        team,
      );
    assert.deepEqual(named('team-a', 'reason: reason'), []);
    assert.deepEqual(
      named('team-b', 'reason: reason'),
      [],
      'the same definition: shared, each team under its namespace',
    );
    assert.match(
      named('team-c', 'cause: reason').join('\n'),
      /is already declared by another namespace's rules as a counter with labels namespace, reason, which comes first/,
    );
  });

  it('a metric no rule declares any more is unregistered; an unchanged one keeps its series across a reload', async () => {
    const { store, metrics } = newStore();
    store.update('file:a.yaml', counter());
    assert.equal(
      metrics.userMetrics.record({
        metric: 'kube_event_rules_user_scheduling_failures_total',
        type: 'counter',
        labels: { reason: 'x' },
      }),
      undefined,
    );
    store.update('file:a.yaml', `# edited\n${counter()}`);
    assert.equal(
      sample(await text(metrics), 'kube_event_rules_user_scheduling_failures_total', { reason: 'x' }),
      1,
      'kept across a reload',
    );
    store.update('file:a.yaml', counter('cause: reason'));
    assert.equal(
      samples(await text(metrics), 'kube_event_rules_user_scheduling_failures_total').length,
      0,
      'new labels: starts over',
    );
    assert.match(await text(metrics), /^# HELP kube_event_rules_user_scheduling_failures_total Pods not scheduled\.$/m);
    store.remove('file:a.yaml');
    assert.doesNotMatch(await text(metrics), /kube_event_rules_user_/);
    assert.deepEqual(metrics.userMetrics.names(), []);
  });
});
