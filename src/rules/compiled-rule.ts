/**
 * A rule document once compiled (compile-document.ts makes it): the types the matcher, renderers and destination kinds
 * read.
 */
import type { Change } from '../normalize/kube-event.js';
import type { Template } from '../render/template.js';
import type { CompiledValue } from '../render/value-source.js';
import type { CompiledTransport } from '../render/transport.js';
import type { EvaluableRule } from './conditions.js';
import type { ConditionTest } from '../match/condition-fast-path.js';
import type { TopLevelCondition } from 'json-rules-engine';
import type { EnrichmentFact } from '../enrich/enrichment-facts.js';

export interface CompiledDestination {
  name: string;
  /** A name in the destination-kind registry (src/deliver/kinds/registry.ts). */
  kind: string;
  url?: CompiledValue;
  method: string;
  headers: [string, CompiledValue][];
  timeoutMs?: number;
  /** TLS material and proxy, when the destination sets them. */
  transport?: CompiledTransport;
  /**
   * The team namespace of the document that declares it (set with the team's rules); undefined for the cluster scope.
   */
  scope?: string;
  /** What a `metric` destination records (src/deliver/kinds/metric.ts). */
  metric?: CompiledMetric;
}

/** A metric a rule document declares: a counter or histogram on the service's /metrics. */
export interface CompiledMetric {
  /** The name on /metrics: the declared name after the user-metric prefix. */
  name: string;
  type: 'counter' | 'histogram';
  help: string;
  /** Label name → the JSONata expression of its value, in the declared order (a team's `namespace` is added). */
  labels: [string, Template][];
  /** Histograms: the bucket upper bounds, increasing, and the observed value. */
  buckets?: number[];
  value?: Template;
}

export interface CompiledAction {
  index: number;
  /**
   * What the delivered memory knows the action by: a hash of its destination name, body, preset and fields
   * (and its rank among identical actions of the rule), so an edit that moves actions keeps each one's key.
   */
  identity: string;
  destination: CompiledDestination;
  body?: Template;
  /** Headers a preset adds (the destination's own headers win). */
  presetHeaders: [string, CompiledValue][];
  /** Body fields set after the body is built: dotted path → value. */
  fields: [string, CompiledValue][];
  /** Enrichment bindings its templates read. */
  uses: ReadonlySet<EnrichmentFact>;
}

/** A rule's digest (src/match/digest-rule.ts checks and compiles it). */
export interface CompiledDigest {
  key: Template;
  windowMs: number;
  /** Flush as soon as the group holds this many occurrences. */
  maxEvents?: number;
  /** How many of the first, and of the last, occurrences the group keeps. */
  keep: number;
}

export interface CompiledRule {
  /**
   * Unique in the rule set: the declared name for cluster rules, `namespace/name` for a team's (metrics, logs,
   * reports).
   */
  name: string;
  /** The name as the document declares it (`$rule.name` in templates). */
  declaredName: string;
  /** A shadow rule: evaluated and rendered beside its live twin (same name), never sent (src/match/shadow.ts). */
  shadow?: boolean;
  description: string;
  source: string;
  /** Set for a team's rules (a ConfigMap outside the cluster namespaces): they only see events of this namespace. */
  scope?: string;
  on: ReadonlySet<Change>;
  /** The conditions the rule is matched by (a region rule: its conditions and either side of the region). */
  conditions: TopLevelCondition;
  rule: EvaluableRule;
  /** The conditions as a synchronous test, when they allow one (src/match/condition-fast-path.ts). */
  test?: ConditionTest;
  actions: CompiledAction[];
  throttle?: { key: Template; windowMs: number; max: number };
  /** Matches are grouped and sent once per key and window (src/match/digest-rule.ts). */
  digest?: CompiledDigest;
  /** A change region: its actions are sent once per start/end pair (src/match/region-pairing.ts). */
  region?: CompiledRegion;
}

/** One side of a region: its conditions, evaluated like a rule's. */
export interface RegionSide {
  rule: EvaluableRule;
  test?: ConditionTest;
}

export interface CompiledRegion {
  key: Template;
  start: RegionSide;
  end: RegionSide;
  timeoutMs: number;
}

export interface CompiledDocument {
  source: string;
  rules: CompiledRule[];
}
