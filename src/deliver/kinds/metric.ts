/**
 * `metric`: an action increments a counter or observes a histogram on the service's own /metrics, with
 * label values rendered by JSONata from the event. The destination declares the metric (name, type, help,
 * labels, buckets, value); UserMetrics (../user-metrics.ts) registers what the rules in force declare and
 * bounds the series. Rendering builds the observation and only the sender records it, so a dry run, a
 * shadow rule or the playground never changes a metric.
 */
import { ConfigurationError, TemplateError } from '../../errors.js';
import { knownSecrets } from '../../redact.js';
import { EMPTY_RESULT, compileTemplate, type Template, type TemplateOptions } from '../../render/template.js';
import type { CompiledMetric } from '../../rules/compiled-rule.js';
import type { MetricSpec } from '../../rules/document.js';
import type { ResolveContext } from '../../render/value-source.js';
import { TEAM_LABEL, type Observation } from '../user-metrics.js';
import type { DestinationKind } from './destination-kind.js';

/** Every rule-declared metric is named with this prefix, apart from the service's own metrics. */
export const USER_METRIC_PREFIX = 'kube_event_rules_user_';
/** Longer label values are cut (a label is for grouping, not for text). */
export const MAX_LABEL_VALUE_LENGTH = 128;

/** Prometheus' metric and label name syntax (no colons: they are for recording rules). */
const NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const MAX_NAME_LENGTH = 100;
const MAX_HELP_LENGTH = 1024;
const MAX_LABELS = 10;
const MAX_BUCKETS = 30;
/** Fields of other kinds: none applies to a metric. */
const NETWORK_FIELDS = ['url', 'method', 'headers', 'timeoutSeconds', 'tls', 'proxy'] as const;

export const metricKind: DestinationKind = {
  name: 'metric',
  description: "increments a counter or observes a histogram on the service's /metrics",
  check(spec) {
    const foreign = NETWORK_FIELDS.filter((field) => spec[field] !== undefined);
    if (foreign.length > 0)
      return `${foreign.join(', ')}: not for a metric destination (it records on the service's own /metrics, nothing is sent)`;
    return spec.metric ? undefined : 'a metric destination needs metric: { name, type, help, labels }';
  },
  checkAction(action) {
    const extra = (['body', 'preset', 'fields'] as const).filter((field) => action[field] !== undefined);
    return extra.length > 0
      ? `${extra.join(', ')}: an action of a metric destination takes none (its labels and value are declared with the metric)`
      : undefined;
  },
  compile: (spec, options) => ({ metric: compileMetric(spec.metric!, options) }),
  reads: [],
  network: false,
  async render(action, context) {
    const { destination } = action;
    const metric = destination.metric!;
    const observation: Observation = { metric: metric.name, type: metric.type, labels: {} };
    for (const [label, template] of metric.labels) {
      const value = await evaluate(template, context, `destination ${destination.name} metric label ${label}`);
      if (typeof value !== 'string' && typeof value !== 'number')
        throw new ConfigurationError(
          `destination ${destination.name} metric label ${label}: the expression must give a string or number, got ${shown(value)}`,
        );
      // /metrics is an output like any other: a Secret's value copied into an Event never shows there.
      observation.labels[label] = Array.from(knownSecrets.redact(String(value)))
        .slice(0, MAX_LABEL_VALUE_LENGTH)
        .join('');
    }
    // A team's series always say whose they are; the team cannot declare this label (tenancy policy).
    if (destination.scope !== undefined) observation.labels[TEAM_LABEL] = destination.scope;
    if (metric.value) {
      const value = await evaluate(metric.value, context, `destination ${destination.name} metric value`);
      if (typeof value !== 'number')
        throw new ConfigurationError(
          `destination ${destination.name} metric value: the expression must give a number, got ${shown(value)}`,
        );
      observation.value = value;
    }
    return {
      method: metric.type === 'counter' ? 'INC' : 'OBSERVE',
      url: metric.name,
      headers: {},
      body: JSON.stringify(observation),
      secretHeaders: [],
      secretUrl: false,
    };
  },
  sender: ({ userMetrics }) => ({
    async send(request) {
      const problem = userMetrics.record(JSON.parse(request.body) as Observation);
      if (!problem) return { outcome: 'delivered', attempts: 1 };
      return { outcome: problem.retry ? 'failed' : 'rejected', attempts: 1, error: problem.error };
    },
  }),
};

async function evaluate(template: Template, context: ResolveContext, what: string): Promise<unknown> {
  try {
    return await template.evaluate(context.input, context.bindings, context.deadline);
  } catch (err) {
    if (err instanceof TemplateError && err.code === EMPTY_RESULT)
      throw new ConfigurationError(`${what}: the expression gave no value for this event`);
    throw err;
  }
}

const shown = (value: unknown) => {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 60)}…` : text;
};

/** compileMetric checks a declaration (throws naming the field) and compiles its expressions. */
export function compileMetric(spec: MetricSpec, options: TemplateOptions): CompiledMetric {
  const { name, type } = spec;
  if (!NAME.test(name) || name.length > MAX_NAME_LENGTH)
    throw new Error(
      `metric.name: ${JSON.stringify(name)} is not a metric name (letters, digits and _, not starting with a digit, at most ${MAX_NAME_LENGTH} characters)`,
    );
  if (name.startsWith('__'))
    throw new Error(`metric.name: ${JSON.stringify(name)}: names starting with __ are reserved by Prometheus`);
  if (type === 'counter' && !name.endsWith('_total'))
    throw new Error(`metric.name: a counter's name ends in _total (${name}_total)`);
  if (type === 'histogram' && /_(total|bucket|sum|count)$/.test(name))
    throw new Error(
      `metric.name: a histogram's name may not end in _total, _bucket, _sum or _count (Prometheus adds _bucket, _sum and _count)`,
    );
  if (spec.help.length > MAX_HELP_LENGTH)
    throw new Error(`metric.help: ${spec.help.length} characters; at most ${MAX_HELP_LENGTH}`);
  const declared = Object.entries(spec.labels ?? {});
  if (declared.length > MAX_LABELS) throw new Error(`metric.labels: ${declared.length} labels; at most ${MAX_LABELS}`);
  const labels = declared.map(([label, expression]): [string, Template] => {
    if (!NAME.test(label))
      throw new Error(`metric.labels.${label}: not a label name (letters, digits and _, not starting with a digit)`);
    if (label.startsWith('__'))
      throw new Error(`metric.labels.${label}: label names starting with __ are reserved by Prometheus`);
    if (label === 'le' && type === 'histogram')
      throw new Error('metric.labels.le: a histogram sets le itself (the bucket bound)');
    try {
      return [label, compileTemplate(expression, options)];
    } catch (err) {
      throw new Error(`metric.labels.${label}: ${(err as Error).message}`);
    }
  });
  if (type === 'counter') {
    if (spec.buckets !== undefined) throw new Error('metric.buckets: only a histogram has buckets');
    if (spec.value !== undefined)
      throw new Error('metric.value: a counter counts 1 per action; only a histogram observes a value');
    return { name: `${USER_METRIC_PREFIX}${name}`, type, help: spec.help, labels };
  }
  const { buckets } = spec;
  if (buckets === undefined)
    throw new Error('metric.buckets: a histogram needs its bucket upper bounds, e.g. [1, 5, 10, 50]');
  if (buckets.length > MAX_BUCKETS)
    throw new Error(`metric.buckets: ${buckets.length} buckets; at most ${MAX_BUCKETS}`);
  const unordered = buckets.findIndex((bound, i) => !Number.isFinite(bound) || (i > 0 && bound <= buckets[i - 1]));
  if (unordered >= 0)
    throw new Error(
      `metric.buckets[${unordered}]: ${buckets[unordered]} — the bounds must be finite numbers, each larger than the one before`,
    );
  if (spec.value === undefined)
    throw new Error('metric.value: a histogram needs the JSONata expression of the value it observes');
  let value: Template;
  try {
    value = compileTemplate(spec.value, options);
  } catch (err) {
    throw new Error(`metric.value: ${(err as Error).message}`);
  }
  return { name: `${USER_METRIC_PREFIX}${name}`, type, help: spec.help, labels, buckets: [...buckets], value };
}
