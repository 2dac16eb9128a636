/**
 * The Grafana dashboard (deploy/components/grafana-dashboard) offline: it queries only metrics the service
 * exports (a renamed metric fails here, not on an operator's empty panel), every query goes through the
 * `${datasource}` variable and is scoped by the namespace and instance variables, and kustomize ships it as a
 * ConfigMap that Grafana's dashboard sidecar loads.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { USER_METRIC_PREFIX } from '../../src/deliver/kinds/metric.js';
import { createMetrics } from '../../src/metrics.js';
import {
  DASHBOARD_FILE,
  alertingRules,
  dashboardQueries,
  metricNames,
  panelsOf,
  readDashboard,
  unquotedExpr,
} from '../support/monitoring.js';
import { needs } from '../support/needs.js';

type Obj = Record<string, any>;

/** Every series name the service exports: prom-client's names, with a histogram's _bucket, _sum and _count. */
async function exportedNames(): Promise<Set<string>> {
  const metrics = await createMetrics().registry.getMetricsAsJSON();
  return new Set(
    metrics.flatMap((m) =>
      String(m.type) === 'histogram' || String(m.type) === 'summary'
        ? [m.name, `${m.name}_bucket`, `${m.name}_sum`, `${m.name}_count`]
        : [m.name],
    ),
  );
}

describe('Grafana dashboard', () => {
  const dashboard = readDashboard();
  const queries = dashboardQueries(dashboard);

  it('queries only metrics the service exports (and the PrometheusRule too)', async () => {
    const exported = await exportedNames();
    assert.ok(
      exported.has('kube_event_rules_deliveries_total') && exported.has('process_cpu_seconds_total'),
      'the registry was read',
    );
    const variableQueries = (dashboard.templating.list as Obj[])
      .filter((v) => v.type === 'query')
      .map((v) => ({ name: `variable ${v.name}`, expr: v.query.query as string }));
    const all = [
      ...queries,
      ...variableQueries,
      ...alertingRules().map((r) => ({ name: `alert ${r.alert}`, expr: r.expr })),
    ];
    assert.ok(queries.length >= 40, `read the panels' queries (${queries.length})`);
    // The metrics rule documents declare are selected as a family, by the prefix the metric kind gives them.
    const known = (metric: string) => exported.has(metric) || metric === `${USER_METRIC_PREFIX}.+`;
    const unknown = all.flatMap(({ name, expr }) =>
      metricNames(expr)
        .filter((metric) => !known(metric))
        .map((metric) => `${name}: ${metric}`),
    );
    assert.deepEqual(unknown, [], 'every metric a panel or an alert selects is exported by the service');
    const without = all.filter(({ expr }) => metricNames(expr).length === 0).map(({ name }) => name);
    assert.deepEqual(without, [], 'every query selects a metric');
  });

  it("shows every one of the service's own metrics (a new metric needs a panel, driven in test/receivers/monitoring.test.ts)", async () => {
    const shown = new Set(queries.flatMap(({ expr }) => metricNames(expr)));
    const own = [...(await exportedNames())].filter(
      (name) => name.startsWith('kube_event_rules_') && !/_(bucket|sum|count)$/.test(name),
    );
    const histogramShown = (name: string) => shown.has(`${name}_bucket`) || shown.has(`${name}_count`);
    assert.deepEqual(
      own.filter((name) => !shown.has(name) && !histogramShown(name)),
      [],
    );
  });

  it('names a renamed metric', () => {
    assert.deepEqual(
      metricNames(
        'sum by (rule) (rate(kube_event_rules_rule_match_total{namespace="$namespace", outcome="kube_event_rules_x"}[5m])) / on() up',
      ),
      ['kube_event_rules_rule_match_total'],
    );
    assert.deepEqual(metricNames('max by (source) (kube_event_rules_rule_load_errors) > 0'), [
      'kube_event_rules_rule_load_errors',
    ]);
    assert.deepEqual(metricNames('count by (__name__) ({__name__=~"kube_event_rules_usr_.+", namespace="x"})'), [
      'kube_event_rules_usr_.+',
    ]);
  });

  it('every panel and query uses the ${datasource} variable, of type prometheus', () => {
    const variables = dashboard.templating.list as Obj[];
    assert.deepEqual(
      variables.find((v) => v.name === 'datasource'),
      { ...variables.find((v) => v.name === 'datasource'), type: 'datasource', query: 'prometheus' },
    );
    const datasource = { type: 'prometheus', uid: '${datasource}' };
    for (const panel of panelsOf(dashboard).filter((p) => p.type !== 'row')) {
      assert.deepEqual(panel.datasource, datasource, panel.title);
      for (const target of panel.targets as Obj[])
        assert.deepEqual(target.datasource, datasource, `${panel.title} / ${target.refId}`);
    }
    for (const variable of variables.filter((v) => v.type === 'query'))
      assert.deepEqual(variable.datasource, datasource, variable.name);
  });

  it('every selector is scoped to the namespace and instance variables', () => {
    const variables = Object.fromEntries((dashboard.templating.list as Obj[]).map((v) => [v.name, v]));
    assert.equal(variables.namespace.query.query, 'label_values(kube_event_rules_rules_loaded, namespace)');
    assert.equal(
      variables.instance.query.query,
      'label_values(kube_event_rules_rules_loaded{namespace="$namespace"}, instance)',
    );
    assert.equal(variables.instance.includeAll, true);
    assert.equal(variables.instance.allValue, '.*');
    for (const { name, expr } of queries) {
      for (const [, metric, selector] of unquotedExpr(expr).matchAll(
        /\b((?:kube_event_rules|process|nodejs)_\w+)(\{)?/g,
      ))
        assert.ok(selector, `${name}: ${metric} has a label selector`);
      const selectors = [...expr.matchAll(/\{([^}]*)\}/g)].map((m) => m[1]);
      assert.ok(selectors.length > 0, name);
      for (const labels of selectors)
        assert.match(labels, /(^|, )namespace="\$namespace", instance=~"\$instance"(, |$)/, name);
    }
  });

  it('panel ids are unique and panels do not overlap', () => {
    const panels = panelsOf(dashboard);
    assert.equal(new Set(panels.map((p) => p.id)).size, panels.length);
    const cells = new Set<string>();
    for (const panel of panels) {
      const { x, y, w, h } = panel.gridPos as { x: number; y: number; w: number; h: number };
      assert.ok(x + w <= 24, `${panel.title} fits the 24 columns`);
      for (let i = x; i < x + w; i++)
        for (let j = y; j < y + h; j++) {
          assert.ok(!cells.has(`${i},${j}`), `${panel.title} overlaps another panel at ${i},${j}`);
          cells.add(`${i},${j}`);
        }
    }
  });

  it(
    'the monitoring example ships it as a ConfigMap for the Grafana sidecar, in the service namespace',
    { skip: needs('kubectl') },
    () => {
      const root = new URL('../../', import.meta.url).pathname;
      const yaml = execFileSync('kubectl', ['kustomize', 'deploy/examples/knative-with-monitoring'], {
        cwd: root,
        encoding: 'utf8',
      });
      const objects = parseAllDocuments(yaml).map((d) => d.toJS() as Obj);
      const configMap = objects.find((o) => o.kind === 'ConfigMap' && o.metadata.labels?.grafana_dashboard === '1');
      assert.ok(configMap, 'a ConfigMap labelled grafana_dashboard: "1"');
      assert.equal(
        configMap.metadata.name,
        'kube-event-rules-dashboard',
        'a stable name (no hash suffix): an upgrade replaces it',
      );
      assert.equal(configMap.metadata.namespace, 'kube-event-rules');
      assert.deepEqual(Object.keys(configMap.data), ['kube-event-rules.json']);
      assert.equal(configMap.data['kube-event-rules.json'], readFileSync(DASHBOARD_FILE, 'utf8'));
      for (const kind of ['PodMonitor', 'PrometheusRule'])
        assert.equal(
          objects.find((o) => o.kind === kind)?.metadata.namespace,
          'kube-event-rules',
          `the ${kind} is in the service namespace (a PodMonitor selects pods of its own namespace)`,
        );
    },
  );
});
