/**
 * The metrics rule documents declare (destination kind `metric`), on the service's own registry: what the
 * rules in force declare is registered, what no rule declares any more is unregistered (with its series),
 * and each metric's series are bounded — past the bound, an observation's label values become `other`.
 */
import { Counter, Histogram, type Registry } from 'prom-client';
import type { CompiledDestination, CompiledRule } from '../rules/compiled-rule.js';

/** What a metric action records: rendered from one event (kinds/metric.ts), recorded by its sender. */
export interface Observation {
  metric: string;
  type: 'counter' | 'histogram';
  labels: Record<string, string>;
  /** Histograms: the observed value. */
  value?: number;
}

/** A declared metric as /metrics shows it; two declarations of one name must agree on everything but help. */
export interface MetricDefinition {
  name: string;
  type: 'counter' | 'histogram';
  help: string;
  /** Sorted; a team's metric has `namespace`. */
  labelNames: string[];
  buckets?: number[];
  /**
   * Declared by a team's document: its series carry the team's namespace, and each namespace has its own series bound.
   */
  team: boolean;
}

/** The label a team's metrics always carry: the team's namespace. */
export const TEAM_LABEL = 'namespace';
/** What every label value of an observation past the series bound becomes (a team's namespace excepted). */
export const OVERFLOW_VALUE = 'other';

/** definitionOf: the metric a destination declares, as registered (undefined for other kinds). */
export function definitionOf(destination: CompiledDestination): MetricDefinition | undefined {
  const metric = destination.metric;
  if (!metric) return undefined;
  const team = destination.scope !== undefined;
  const labelNames = [...metric.labels.map(([name]) => name), ...(team ? [TEAM_LABEL] : [])].sort();
  return { name: metric.name, type: metric.type, help: metric.help, labelNames, buckets: metric.buckets, team };
}

/** sameDefinition: two declarations may share the metric (help aside: the first one's is shown). */
export function sameDefinition(a: MetricDefinition, b: MetricDefinition): boolean {
  return (
    a.type === b.type &&
    a.team === b.team &&
    a.labelNames.join() === b.labelNames.join() &&
    (a.buckets ?? []).join() === (b.buckets ?? []).join()
  );
}

/** describeDefinition: "a counter with labels namespace, reason" — for load errors. */
export function describeDefinition(d: MetricDefinition): string {
  const labels = d.labelNames.length > 0 ? `labels ${d.labelNames.join(', ')}` : 'no labels';
  return `a ${d.type} with ${labels}${d.buckets ? ` and buckets ${d.buckets.join(', ')}` : ''}`;
}

/**
 * declaredMetrics: every metric the live rules declare, the first declaration of each name (shadow rules never record).
 */
export function declaredMetrics(rules: readonly CompiledRule[]): MetricDefinition[] {
  const found = new Map<string, MetricDefinition>();
  for (const rule of rules) {
    if (rule.shadow) continue;
    for (const action of rule.actions) {
      const definition = definitionOf(action.destination);
      if (definition && !found.has(definition.name)) found.set(definition.name, definition);
    }
  }
  return [...found.values()];
}

interface Registered {
  definition: MetricDefinition;
  metric: Counter<string> | Histogram<string>;
  /** Label sets recorded so far, per series bound: '' for a cluster metric, the namespace for a team's. */
  series: Map<string, Set<string>>;
}

/**
 * What recording could not do: the error, and whether a redelivery may record it (the metric was redeclared meanwhile).
 */
export interface RecordProblem {
  error: string;
  retry?: boolean;
}

export class UserMetrics {
  private readonly registered = new Map<string, Registered>();
  private readonly overflow: Counter<'metric'>;
  /** Label sets recorded by each team namespace, all its metrics together. */
  private readonly teamSeries = new Map<string, number>();

  constructor(
    private readonly registry: Registry,
    /** Most label sets per metric (per metric and namespace for a team's); beyond, the `other` series. */
    private readonly maxSeries: number,
    /** Most label sets of one team namespace's metrics together (a team may declare many metrics). */
    private readonly teamMaxSeries: number = maxSeries,
  ) {
    this.overflow = new Counter({
      name: 'kube_event_rules_metric_series_overflow_total',
      help: `Observations of a rule-declared metric recorded with label values "${OVERFLOW_VALUE}" because the metric (a team's: in that namespace) already had METRIC_MAX_SERIES_PER_METRIC series, or the team's metrics TEAM_MAX_METRIC_SERIES.`,
      labelNames: ['metric'] as const,
      registers: [registry],
    });
  }

  /**
   * declare makes the registry hold exactly the metrics these rules declare. A metric whose definition and
   * help are unchanged keeps its series (a reload of its document does not reset it); a changed one starts
   * over; one no rule declares any more is unregistered.
   */
  declare(rules: readonly CompiledRule[]): void {
    const wanted = new Map(declaredMetrics(rules).map((definition) => [definition.name, definition]));
    for (const [name, registered] of this.registered) {
      const definition = wanted.get(name);
      // A new help text starts the metric over too (prom-client fixes it at registration): a counter reset, which
      // rate() handles. Not for a team's metric: other teams may share it, and one team's edit of its help text
      // must not reset their series (the help shown stays the one registered).
      if (
        definition &&
        sameDefinition(definition, registered.definition) &&
        (definition.help === registered.definition.help || registered.definition.team)
      )
        continue;
      this.registry.removeSingleMetric(name);
      this.overflow.remove({ metric: name });
      if (registered.definition.team) {
        for (const [namespace, seen] of registered.series)
          this.teamSeries.set(namespace, (this.teamSeries.get(namespace) ?? 0) - seen.size);
      }
      this.registered.delete(name);
    }
    for (const [name, definition] of wanted) {
      if (this.registered.has(name)) continue;
      const common = { name, help: definition.help, labelNames: definition.labelNames, registers: [this.registry] };
      const metric =
        definition.type === 'counter' ? new Counter(common) : new Histogram({ ...common, buckets: definition.buckets });
      this.registered.set(name, { definition, metric, series: new Map() });
    }
  }

  /** names: the metrics registered now. */
  names(): string[] {
    return [...this.registered.keys()];
  }

  /**
   * record counts or observes; past the metric's series bound (a team's: or its namespace's, all its metrics
   * together) every label value becomes `other` (counted).
   */
  record(observation: Observation): RecordProblem | undefined {
    const registered = this.registered.get(observation.metric);
    if (!registered) return { error: `metric ${observation.metric} is no longer declared by any rule in force` };
    const { definition, metric, series } = registered;
    const names = Object.keys(observation.labels).sort();
    if (observation.type !== definition.type || names.join() !== definition.labelNames.join()) {
      return {
        error: `metric ${observation.metric} was declared again (${describeDefinition(definition)}) while this event was processed`,
        retry: true,
      };
    }
    if (definition.type === 'histogram' && !Number.isFinite(observation.value))
      return { error: `metric ${observation.metric}: the observed value is not a number` };
    const bound = definition.team ? observation.labels[TEAM_LABEL] : '';
    let seen = series.get(bound);
    if (!seen) series.set(bound, (seen = new Set()));
    let labels = observation.labels;
    const key = JSON.stringify(names.map((name) => labels[name]));
    if (!seen.has(key)) {
      const teamFull = definition.team && (this.teamSeries.get(bound) ?? 0) >= this.teamMaxSeries;
      if (seen.size < this.maxSeries && !teamFull) {
        seen.add(key);
        if (definition.team) this.teamSeries.set(bound, (this.teamSeries.get(bound) ?? 0) + 1);
      } else {
        labels = Object.fromEntries(
          names.map((name) => [name, definition.team && name === TEAM_LABEL ? labels[name] : OVERFLOW_VALUE]),
        );
        this.overflow.inc({ metric: observation.metric });
      }
    }
    if (metric instanceof Counter) metric.inc(labels);
    else metric.observe(labels, observation.value!);
    return undefined;
  }
}
