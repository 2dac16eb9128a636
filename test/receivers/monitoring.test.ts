/**
 * The monitoring deploy/ ships, against the real Prometheus (Debian's package on 127.0.0.1). The service is
 * driven with ApiServerSource CloudEvents until it has produced every series the Grafana dashboard and the
 * PrometheusRule read: deliveries that succeed, fail and are rejected by a capture sink, Broker redeliveries
 * (duplicates), throttled, shadowed, unmatched, unresolved, malformed, unauthenticated and over-capacity
 * events, digests (recorded, redelivered, flushed), change regions (ended, an end without a start), a
 * rule-declared metric past its series bound, a malformed traceparent, a template error, a template
 * quarantined after its guard tripped twice, a rejected rule document, lookups and a watch restart against
 * the fake Kubernetes API, an Event sent again by the standalone watch on start, Redis going away.
 * Prometheus scrapes it and evaluates the alerting rules; every panel query, with the dashboard's variables
 * substituted, returns a number, and each alert is proven as ALERT_PROOFS says.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../src/config.js';
import { startCaptureSink, type CaptureSink } from '../support/capture-sink.js';
import { startFakeKubeApi, type FakeKubeApi } from '../support/fake-kube-api.js';
import { loadFixture, withEvent, type EventFixture } from '../support/fixtures.js';
import { OWN_NAMESPACE, connectionTo, ruleConfigMap, waitUntil } from '../support/kube-fixtures.js';
import {
  alertingRules,
  dashboardQueries,
  prometheusRulesFile,
  readDashboard,
  withVariables,
  ALL,
} from '../support/monitoring.js';
import { needs } from '../support/needs.js';
import { startPrometheus, startRedis, type Receiver } from '../support/real-receivers.js';
import { sampleValue, startService, type RunningService } from '../support/running-service.js';

const TOKEN = 'the-broker-token';
/** The namespace label a PodMonitor gives the series; the dashboard's namespace variable selects by it. */
const NAMESPACE = 'kube-event-rules';
const POD = 'payment-5c7d9b8f6-2m4rt';

/**
 * How each alert is proven. `driven`: the test causes the fault; the expression returns series and
 * Prometheus' own evaluation makes the alert pending (each has a `for`). `stale-sync`: healthy now, so the
 * expression is empty while its selector returns the informers; evaluated 16 minutes later (Prometheus here
 * looks back 30 minutes, so the last scraped sync time is still seen), it fires.
 */
const ALERT_PROOFS: Record<string, 'driven' | 'stale-sync'> = {
  KubeEventRulesDeliveryFailures: 'driven', // the failing (500) and rejecting (400) destinations
  KubeEventRulesRuleLoadErrors: 'driven', // broken.yaml
  KubeEventRulesRefusingEvents: 'driven', // POST / without the Broker's token
  KubeEventRulesInformerStuck: 'stale-sync',
  KubeEventRulesOverCapacity: 'driven', // a batch over MAX_ACTIONS_PER_REQUEST
  KubeEventRulesRedisUnavailable: 'driven', // redis-server stopped
};

const eventRules = (sinkUrl: string) => `
destinations:
  ok: { url: "${sinkUrl}/ok" }
  failing: { url: "${sinkUrl}/fail" }
  rejecting: { url: "${sinkUrl}/reject" }
  digests: { url: "${sinkUrl}/digest" }
  crashloops-per-pod:
    kind: metric
    metric:
      name: crashloops_total
      type: counter
      help: Crash loops by pod.
      labels: { pod: involvedObject.name }
rules:
  - name: crashloops
    conditions: { all: [ { fact: event, path: $.reason, operator: equal, value: BackOff } ] }
    actions:
      - { destination: ok, body: '{ "pod": $object.metadata.name, "message": message }' }
      - { destination: failing }
      - { destination: rejecting }
      - { destination: crashloops-per-pod }
  - name: rescales
    throttle: { window: 10m, max: 1 }
    conditions: { all: [ { fact: event, path: $.reason, operator: equal, value: SuccessfulRescale } ] }
    actions: [ { destination: ok, body: '{ "hpa": involvedObject.name }' } ]
  - name: broken-template
    conditions: { all: [ { fact: event, path: $.reason, operator: equal, value: FailedGetResourceMetric } ] }
    actions: [ { destination: ok, body: '$error("no metric for " & involvedObject.name)' } ]
  - name: huge-output
    conditions: { all: [ { fact: event, path: $.reason, operator: equal, value: Huge } ] }
    actions: [ { destination: ok, body: '{ "text": $pad("", 1100000) }' } ]
  - name: crashloop-digest
    conditions: { all: [ { fact: event, path: $.reason, operator: equal, value: Digest } ] }
    digest: { key: involvedObject.name, window: 1s }
    actions: [ { destination: digests, body: '{ "pod": $digest.key, "count": $digest.count }' } ]
  - name: restart-region
    region:
      key: involvedObject.name
      start: { all: [ { fact: event, path: $.reason, operator: equal, value: RegionStart } ] }
      end: { all: [ { fact: event, path: $.reason, operator: equal, value: RegionEnd } ] }
      timeout: 1h
    actions: [ { destination: ok, body: '{ "from": $region.start.time, "to": $region.end.time }' } ]
  - name: long-messages
    conditions: { all: [ { fact: event, path: $.message, operator: matches, value: "^never" } ] }
    actions: [ { destination: ok } ]
`;

/** The candidate of `rescales`: compared with it on every event, never sent. */
const shadowRules = (sinkUrl: string) => `
shadow: true
destinations:
  ok: { url: "${sinkUrl}/ok" }
rules:
  - name: rescales
    conditions: { all: [ { fact: event, path: $.reason, operator: equal, value: SuccessfulRescale } ] }
    actions: [ { destination: ok, body: '{ "hpa": involvedObject.name, "replicas": 2 }' } ]
`;

/** A rule from a ConfigMap, so the rules informer runs. */
const configMapRules = (sinkUrl: string) => `
destinations:
  ok: { url: "${sinkUrl}/ok" }
rules:
  - name: metric-warnings
    conditions: { all: [ { fact: event, path: $.reason, operator: equal, value: FailedGetResourceMetric } ] }
    actions: [ { destination: ok, body: '{ "hpa": involvedObject.name }' } ]
`;

/** A team's rule (ConfigMap in its namespace) declaring a metric: its series carry the team's namespace. */
const teamRules = `
destinations:
  crashloops:
    kind: metric
    metric: { name: team_crashloops_total, type: counter, help: Crash loops in the team's namespace., labels: {} }
rules:
  - name: team-crashloops
    conditions: { all: [ { fact: event, path: $.reason, operator: equal, value: BackOff } ] }
    actions: [ { destination: crashloops } ]
`;

interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}

describe(
  'the Grafana dashboard and the alerts against the real Prometheus',
  { skip: needs('prometheus', 'promtool', 'redis-server') },
  () => {
    let dir: string;
    let sink: CaptureSink;
    let fake: FakeKubeApi;
    let redis: Receiver;
    let svc: RunningService;
    let prometheus: Receiver;
    let instance: string;
    /** When the queries are evaluated: a scrape after the last of the load. */
    let at: number;

    async function query(promql: string, time = at): Promise<Sample[]> {
      const response = await fetch(
        `${prometheus.url}/api/v1/query?${new URLSearchParams({ query: promql, time: String(time) }).toString()}`,
      );
      const body = (await response.json()) as {
        status: string;
        error?: string;
        data: { resultType: string; result: Sample[] };
      };
      assert.equal(body.status, 'success', `${promql}: ${body.error}`);
      assert.equal(body.data.resultType, 'vector', promql);
      return body.data.result;
    }
    const now = () => Date.now() / 1000;

    /** Waits until Prometheus has scraped at least what the service has counted now. */
    async function scraped(): Promise<void> {
      const own = await (await fetch(`${svc.url}/metrics`)).text();
      const counters = [
        'kube_event_rules_events_received_total',
        'kube_event_rules_deliveries_total',
        'kube_event_rules_rule_reloads_total',
        'kube_event_rules_requests_refused_total',
        'kube_event_rules_informer_restarts_total',
      ];
      await waitUntil(
        'Prometheus has scraped what the service counted',
        async () => {
          for (const name of counters) {
            const [sample] = await query(`sum(${name})`, now());
            if (!sample || Number(sample.value[1]) < sampleValue(own, name)) return false;
          }
          return true;
        },
        30_000,
      );
    }

    /** One round of load; run twice, so every series has grown between scrapes (rates and quantiles are numbers). */
    async function drive(round: number): Promise<void> {
      const post = async (
        fixture: EventFixture,
        status: number | number[],
        what: string,
        edit: (body: Record<string, any>, headers: Record<string, string>) => void = () => undefined,
      ) => {
        const response = await svc.post(
          withEvent(fixture, (body, headers) => {
            headers.authorization = `Bearer ${TOKEN}`;
            if (body.metadata) body.metadata.uid = `${body.metadata.uid}-${round}`;
            headers['ce-id'] = `${headers['ce-id']}-${round}`;
            edit(body, headers);
          }),
        );
        assert.ok([status].flat().includes(response.status), `${what}: ${response.status} ${response.text}`);
        return response.text;
      };
      /** 503 while failing's breaker is closed, 429 once it opened (5 consecutive failures). */
      const redelivered = [503, 429];
      const backoff = loadFixture('pod-backoff-crashloop-resource-update');
      const as = (reason: string, n: number) => (body: Record<string, any>, headers: Record<string, string>) => {
        body.reason = reason;
        body.metadata.uid = `${reason}-${round}-${n}`;
        headers['ce-id'] = `${reason}-${round}-${n}`;
      };
      // Digests and regions are kept in Redis: recorded while it is up (round 1), answered 503 once it is gone.
      const recorded = round === 1 ? 204 : 503;
      await post(backoff, recorded, 'a digest occurrence', as('Digest', 1));
      await post(backoff, recorded, 'the same occurrence redelivered: counted once', as('Digest', 1));
      await post(backoff, recorded, 'a region starts', as('RegionStart', 1));
      if (round === 1) {
        await post(backoff, 204, 'the region ends: sent with both times', as('RegionEnd', 1));
        await post(backoff, 204, 'an end without a start: not sent', as('RegionEnd', 2));
        await sink.waitFor('/digest', 1, 10_000);
        await waitUntil(
          'the digest flush is recorded',
          async () => (await svc.metric('kube_event_rules_digest_flushes_total')) > 0,
          10_000,
        );
      }
      const gone = (body: Record<string, any>, headers: Record<string, string>) => {
        body.involvedObject.name = 'gone-pod';
        body.metadata.uid = `gone-${round}`;
        headers['ce-id'] = `gone-${round}`;
      };
      // Matched: delivered to ok ($object found, then not found), failed at failing, rejected by rejecting: 503.
      await post(backoff, redelivered, 'a failed delivery is redelivered');
      await post(
        backoff,
        redelivered,
        "the Broker's redelivery: ok and rejecting are skipped as duplicates, failing fails again",
      );
      if (round === 1) await redis.stop(); // Redis goes away: the memory stores stand in, and every command is counted
      await post(
        backoff,
        redelivered,
        'the involved object is gone (a second pod: past the metric series bound of 1)',
        gone,
      );
      // Throttled: the second rescale of the HPA within the window is suppressed; the shadow twin differs.
      await post(loadFixture('hpa-successful-rescale-up-resource-add'), 204, 'a rescale');
      await post(loadFixture('hpa-successful-rescale-down-resource-add'), 204, 'a throttled rescale');
      await post(
        loadFixture('hpa-failed-get-resource-metric-warning-resource-add'),
        204,
        'a template error is permanent',
      );
      // A template over TEMPLATE_MAX_OUTPUT_BYTES trips its guard (503); a second trip within a minute
      // quarantines its rule.
      const huge = (n: number) => (body: Record<string, any>, headers: Record<string, string>) => {
        body.reason = 'Huge';
        body.metadata.uid = `huge-${round}-${n}`;
        headers['ce-id'] = `huge-${round}-${n}`;
      };
      if (round === 1) for (const n of [1, 2]) await post(backoff, 503, 'a guard trip', huge(n));
      assert.match(await post(backoff, 503, 'quarantined', huge(3)), /templates quarantined until/);
      await post(
        loadFixture('deployment-scaling-replica-set-resource-add'),
        204,
        'no rule matches; a malformed traceparent is ignored',
        (_body, headers) => {
          headers.traceparent = '00-not-a-trace';
        },
      );
      await post(loadFixture('hpa-successful-rescale-up-reference-add'), 204, 'Reference mode: the Event is gone');
      await post(loadFixture('malformed-missing-ce-type'), 400, 'malformed');
      const unauthenticated = await svc.post(loadFixture('hpa-successful-rescale-up-resource-add'));
      assert.equal(unauthenticated.status, 401);
      const structured = (n: number) => {
        const { headers, body } = loadFixture('pod-backoff-crashloop-resource-update');
        const attributes = Object.fromEntries(
          Object.entries(headers)
            .filter(([k]) => k.startsWith('ce-'))
            .map(([k, v]) => [k.slice(3), v]),
        );
        const event = body as Record<string, any>;
        return {
          ...attributes,
          id: `batch-${round}-${n}`,
          datacontenttype: 'application/json',
          data: { ...event, metadata: { ...event.metadata, uid: `batch-${round}-${n}` } },
        };
      };
      const batch = await svc.postRaw(
        { 'content-type': 'application/cloudevents-batch+json', authorization: `Bearer ${TOKEN}` },
        JSON.stringify([1, 2, 3, 4].map(structured)),
      );
      assert.equal(batch.status, 429, `4 events × 4 actions is over MAX_ACTIONS_PER_REQUEST: ${batch.text}`);
      fake.resetWatches();
      await svc.writeRules('broken.yaml', `rules:\n  - name: broken-${round}\n`);
    }

    before(async () => {
      dir = await mkdtemp(join(tmpdir(), 'ker-monitoring-'));
      await writeFile(join(dir, 'token'), TOKEN);
      sink = await startCaptureSink();
      sink.always('/fail', 500);
      sink.always('/reject', 400);
      fake = await startFakeKubeApi();
      fake.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'shop' } });
      fake.apply({ apiVersion: 'v1', kind: 'Pod', metadata: { name: POD, namespace: 'shop' } });
      fake.apply(ruleConfigMap(OWN_NAMESPACE, 'platform-rules', { 'metric-warnings.yaml': configMapRules(sink.url) }));
      fake.apply(ruleConfigMap('shop', 'team-rules', { 'crashloops.yaml': teamRules }));
      // Standalone mode watches Events too: this recent one is sent on start, with no saved watch position yet.
      fake.apply({
        apiVersion: 'events.k8s.io/v1',
        kind: 'Event',
        metadata: { name: 'web-1.1', namespace: 'shop', uid: 'uid-web-1' },
        eventTime: new Date().toISOString(),
        reason: 'FailedScheduling',
        type: 'Warning',
        reportingController: 'default-scheduler',
        reportingInstance: 'default-scheduler-node1',
        action: 'Scheduling',
        regarding: { kind: 'Pod', namespace: 'shop', name: 'web-1' },
        note: '0/3 nodes are available: 3 Insufficient cpu.',
      });
      redis = await startRedis();
      const defaults = loadConfig({});
      svc = await startService({
        rules: { 'events.yaml': eventRules(sink.url), 'shadow.yaml': shadowRules(sink.url) },
        kube: connectionTo(fake),
        config: {
          auth: { ...defaults.auth, tokenFile: join(dir, 'token') },
          redisUrl: redis.url,
          deliveryAttempts: 2,
          maxActionsPerRequest: 10,
          metricMaxSeriesPerMetric: 1,
          standalone: { enabled: true, maxAgeMs: 300_000, retries: 3 },
          regex: { ...defaults.regex, maxInputBytes: 16 },
        },
      });
      instance = new URL(svc.url).host;
      prometheus = await startPrometheus(instance, {
        labels: { namespace: NAMESPACE },
        rules: prometheusRulesFile(),
        flags: ['--query.lookback-delta=30m'],
      });
      await drive(1);
      await scraped();
      await drive(2);
      await scraped();
      // Two more scrapes: a series first seen in the last round has two samples, so its rate is a number.
      const last = now();
      await waitUntil(
        'two more scrapes',
        async () =>
          Number((await query('timestamp(kube_event_rules_rules_loaded)', now()))[0]?.value[1] ?? 0) > last + 1,
        10_000,
      );
      at = now();
    });
    after(async () => {
      await prometheus?.stop();
      await svc?.stop();
      await redis?.stop();
      await fake?.close();
      await sink?.close();
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    it('promtool check rules passes on the PrometheusRule (its spec.groups as a rules file)', async () => {
      const file = join(dir, 'rules.yml');
      await writeFile(file, prometheusRulesFile());
      const output = execFileSync('promtool', ['check', 'rules', file], { encoding: 'utf8' });
      assert.match(output, new RegExp(`SUCCESS: ${alertingRules().length} rules found`));
    });

    it("the namespace and instance variables' queries list this service", async () => {
      const values = async (label: string, match: string) => {
        const body = (await (
          await fetch(
            `${prometheus.url}/api/v1/label/${label}/values?${new URLSearchParams({ 'match[]': match }).toString()}`,
          )
        ).json()) as { data: string[] };
        return body.data;
      };
      // label_values(metric, label) is Grafana's form of the label values API.
      const variables = Object.fromEntries(
        (readDashboard().templating.list as { name: string; query?: { query: string } }[]).map((v) => [
          v.name,
          v.query?.query,
        ]),
      );
      const [, namespaceMetric, namespaceLabel] = /^label_values\((.+), (\w+)\)$/.exec(variables.namespace!)!;
      assert.deepEqual(await values(namespaceLabel, namespaceMetric), [NAMESPACE]);
      const [, instanceMetric, instanceLabel] = /^label_values\((.+), (\w+)\)$/.exec(
        variables.instance!.replace('$namespace', NAMESPACE),
      )!;
      assert.deepEqual(await values(instanceLabel, instanceMetric), [instance]);
    });

    for (const selected of ['this instance', 'All instances'] as const) {
      it(`every panel query returns series with a number, for this namespace and ${selected}`, async () => {
        const queries = dashboardQueries();
        assert.ok(queries.length >= 40);
        const failures: string[] = [];
        for (const { name, expr } of queries) {
          const promql = withVariables(expr, {
            namespace: NAMESPACE,
            instance: selected === 'this instance' ? instance : ALL,
            rateInterval: '1m',
          });
          const result = await query(promql);
          if (result.length === 0) failures.push(`${name}: no series — ${promql}`);
          else if (!result.some((s) => Number.isFinite(Number(s.value[1]))))
            failures.push(`${name}: no number (${result.map((s) => s.value[1]).join(', ')}) — ${promql}`);
        }
        assert.deepEqual(failures, []);
      });
    }

    it("a team's rule-declared metric: the pod's namespace is `namespace`, the team's becomes `exported_namespace`", async () => {
      const series = await query('kube_event_rules_user_team_crashloops_total');
      assert.deepEqual(
        series.map((s) => [s.metric.namespace, s.metric.exported_namespace]),
        [[NAMESPACE, 'shop']],
        'Prometheus keeps the target label and renames the scraped one (honor_labels: false, as a PodMonitor has by default)',
      );
    });

    it('the selectors are scoped: another namespace returns nothing', async () => {
      const [{ expr }] = dashboardQueries().filter(({ name }) => name.startsWith('Events received by outcome'));
      assert.ok((await query(withVariables(expr, { namespace: NAMESPACE, instance, rateInterval: '1m' }))).length > 0);
      assert.deepEqual(await query(withVariables(expr, { namespace: 'elsewhere', instance, rateInterval: '1m' })), []);
    });

    it('Prometheus loaded every alerting rule and evaluates it without error', async () => {
      const body = (await (await fetch(`${prometheus.url}/api/v1/rules`)).json()) as {
        data: { groups: { rules: { name: string; health: string; lastError?: string }[] }[] };
      };
      const loaded = body.data.groups.flatMap((g) => g.rules);
      assert.deepEqual(
        loaded.map((r) => r.name).sort(),
        alertingRules()
          .map((r) => r.alert)
          .sort(),
      );
      assert.deepEqual(
        loaded.filter((r) => r.health !== 'ok').map((r) => `${r.name}: ${r.health} ${r.lastError}`),
        [],
      );
      assert.deepEqual(
        Object.keys(ALERT_PROOFS).sort(),
        alertingRules()
          .map((r) => r.alert)
          .sort(),
        'every alert has a proof here',
      );
    });

    for (const [alert, proof] of Object.entries(ALERT_PROOFS)) {
      if (proof === 'driven') {
        it(`${alert}: the fault the test caused makes it pending`, async () => {
          const rule = alertingRules().find((r) => r.alert === alert)!;
          assert.ok(rule.for, 'it waits before firing');
          assert.ok((await query(rule.expr)).length > 0, `${rule.expr} returns the fault`);
          await waitUntil(
            `${alert} is pending`,
            async () => {
              const body = (await (await fetch(`${prometheus.url}/api/v1/alerts`)).json()) as {
                data: { alerts: { labels: { alertname: string }; state: string }[] };
              };
              return body.data.alerts.some((a) => a.labels.alertname === alert && a.state === 'pending');
            },
            10_000,
          );
        });
      } else {
        it(`${alert}: quiet while the informers list, fires once the last sync is older than its threshold`, async () => {
          const rule = alertingRules().find((r) => r.alert === alert)!;
          const [, inner] = /^time\(\) - (.+) > \d+$/.exec(rule.expr)!;
          const informers = await query(inner);
          assert.ok(informers.length > 0, `${inner} returns the informers`);
          assert.deepEqual(await query(rule.expr), [], 'healthy: nothing to alert on');
          const later = await query(rule.expr, at + 16 * 60);
          assert.deepEqual(later.map((s) => s.metric.informer).sort(), informers.map((s) => s.metric.informer).sort());
        });
      }
    }
  },
);
