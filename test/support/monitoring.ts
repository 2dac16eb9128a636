/**
 * The monitoring deploy/ ships, read as Grafana and the Prometheus Operator read it: every PromQL expression
 * of the Grafana dashboard (panel targets, with its template variables) and every rule of the PrometheusRule.
 */
import { readFileSync } from 'node:fs';
import { parse, stringify } from 'yaml';

const root = new URL('../../', import.meta.url);
export const DASHBOARD_FILE = new URL('deploy/components/grafana-dashboard/kube-event-rules.json', root).pathname;
export const PROMETHEUS_RULE_FILE = new URL('deploy/components/prometheus-operator/prometheusrule.yaml', root).pathname;

type Obj = Record<string, any>;

export function readDashboard(): Obj {
  return JSON.parse(readFileSync(DASHBOARD_FILE, 'utf8')) as Obj;
}

/** Every panel, those nested in collapsed rows too. */
export function panelsOf(dashboard: Obj): Obj[] {
  return (dashboard.panels as Obj[]).flatMap((panel) => [panel, ...((panel.panels as Obj[] | undefined) ?? [])]);
}

export interface PanelQuery {
  /** "<panel title> / <refId>", to name the query in a failure. */
  name: string;
  expr: string;
}

export function dashboardQueries(dashboard = readDashboard()): PanelQuery[] {
  return panelsOf(dashboard).flatMap((panel) =>
    ((panel.targets as Obj[] | undefined) ?? []).map((target) => ({
      name: `${panel.title} / ${target.refId}`,
      expr: target.expr as string,
    })),
  );
}

export interface AlertingRule {
  alert: string;
  expr: string;
  for?: string;
}

/** The PrometheusRule's spec.groups as a Prometheus rules file (what `promtool check rules` and `rule_files` read). */
export function prometheusRulesFile(): string {
  const rule = parse(readFileSync(PROMETHEUS_RULE_FILE, 'utf8')) as Obj;
  return stringify({ groups: rule.spec.groups });
}

export function alertingRules(): AlertingRule[] {
  const { groups } = parse(prometheusRulesFile()) as { groups: { rules: Obj[] }[] };
  return groups.flatMap((group) => group.rules).filter((rule) => rule.alert) as AlertingRule[];
}

/** The instance variable's "All": Grafana puts the variable's allValue in as it is. */
export const ALL = { all: true } as const;

/**
 * withVariables substitutes the dashboard's template variables as Grafana does for one selected value of
 * each (its regex characters escaped) or for All, and Grafana's $__rate_interval with a fixed window.
 */
export function withVariables(
  expr: string,
  values: { namespace: string; instance: string | typeof ALL; rateInterval: string },
): string {
  const instance =
    values.instance === ALL ? '.*' : (values.instance as string).replace(/[.*+?^${}()|[\]\\]/g, '\\\\$&');
  return expr
    .replaceAll('$__rate_interval', values.rateInterval)
    .replaceAll('$namespace', values.namespace)
    .replaceAll('$instance', instance);
}

/** unquoted: the expression with every string literal emptied (label values are not names). */
export function unquotedExpr(expr: string): string {
  return expr.replace(/"(?:[^"\\]|\\.)*"/g, '""');
}

/**
 * metricNames: the metric names an expression selects — identifiers before a `{` label selector, every
 * identifier with the service's prefixes (a selector without braces), and `__name__` matchers (as written,
 * a regex for `=~`). Quoted label values are skipped.
 */
export function metricNames(expr: string): string[] {
  const names = new Set<string>();
  for (const m of expr.matchAll(/__name__\s*=~?\s*"([^"]*)"/g)) names.add(m[1]);
  const unquoted = unquotedExpr(expr);
  for (const m of unquoted.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{/g)) names.add(m[1]);
  for (const m of unquoted.matchAll(/\b((?:kube_event_rules|process|nodejs)_[a-zA-Z0-9_]+)\b/g)) names.add(m[1]);
  return [...names];
}
