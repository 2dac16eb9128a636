/**
 * The rule document as authors write it (YAML or JSON); rule-document.schema.json is its JSON Schema.
 */
import type { TopLevelCondition } from 'json-rules-engine';
import type { Change } from '../normalize/kube-event.js';

export type ValueSource =
  | string
  | number
  | boolean
  | { jsonata: string }
  | { env: string; prefix?: string }
  | { secretKeyRef: { name: string; key: string }; prefix?: string };

/** Where TLS material or a proxy credential comes from (README: Networks). */
export type MaterialSource =
  | { secretKeyRef: { name: string; key: string } }
  | { configMapKeyRef: { name: string; key: string } }
  | { file: string };

export interface TlsSpec {
  ca?: MaterialSource;
  clientCert?: MaterialSource;
  clientKey?: MaterialSource;
  serverName?: string;
  /** Cluster documents only. */
  insecureSkipVerify?: boolean;
}

export interface ProxySpec {
  url: string;
  username?: MaterialSource;
  password?: MaterialSource;
}

export interface DestinationSpec {
  /** A name in the destination-kind registry (default http). */
  kind?: string;
  url?: ValueSource;
  method?: 'POST' | 'PUT' | 'PATCH';
  headers?: Record<string, ValueSource>;
  timeoutSeconds?: number;
  tls?: TlsSpec;
  proxy?: ProxySpec;
  /** kind `metric`: the metric it records. */
  metric?: MetricSpec;
}

/**
 * A counter or histogram a `metric` destination records; label values and the observed value are JSONata expressions.
 */
export interface MetricSpec {
  name: string;
  type: 'counter' | 'histogram';
  help: string;
  labels?: Record<string, string>;
  buckets?: number[];
  value?: string;
}

export interface ActionSpec {
  destination: string;
  body?: string;
  preset?: string;
  fields?: Record<string, ValueSource>;
}

export interface RuleSpec {
  name: string;
  /** Runs beside the live rule of the same name, never sends, reports differences. */
  shadow?: boolean;
  description?: string;
  on?: Change[];
  /** Required unless the rule has a region (then they narrow it further). */
  conditions?: TopLevelCondition;
  actions: ActionSpec[];
  throttle?: { key?: string; window: string | number; max?: number };
  digest?: { key?: string; window: string | number; maxEvents?: number; keep?: number };
  region?: RegionSpec;
}

/** A change region: a start occurrence paired with its end by key; the end (or the timeout) sends both times. */
export interface RegionSpec {
  /** JSONata over the normalized Event; default: the involved object. */
  key?: string;
  start: TopLevelCondition;
  end: TopLevelCondition;
  timeout: string | number;
}

export interface RuleDocument {
  /** Every rule of the document is a shadow rule. */
  shadow?: boolean;
  destinations?: Record<string, DestinationSpec>;
  rules: RuleSpec[];
}
