/**
 * KubeEvent: the core/v1 Event shape every later stage reads, whatever API the Event came from.
 * Normalization also fills firstTimestamp, lastTimestamp and count, so rules and templates can rely on them.
 */
export interface ObjectReference {
  kind?: string;
  namespace?: string;
  name?: string;
  uid?: string;
  apiVersion?: string;
  resourceVersion?: string;
  fieldPath?: string;
}

export interface KubeEvent {
  apiVersion?: string;
  kind?: string;
  metadata: { name?: string; namespace?: string; uid?: string; resourceVersion?: string; [key: string]: unknown };
  involvedObject: ObjectReference;
  reason?: string;
  message?: string;
  source: { component?: string; host?: string };
  type?: string;
  firstTimestamp?: string | null;
  lastTimestamp?: string | null;
  count: number;
  eventTime?: string | null;
  series?: { count?: number; lastObservedTime?: string };
  action?: string;
  related?: ObjectReference;
  reportingComponent?: string;
  reportingInstance?: string;
  [key: string]: unknown;
}

/**
 * Change says what happened to the Event object, which decides whether a rule fires by default:
 * - add: a new Event; update: an existing Event repeated (count grew) — both are new occurrences;
 * - unchanged: an update that is not a new occurrence; delete: the Event expired (TTL) or was removed;
 * - other: a CloudEvent that is not an ApiServerSource Event.
 */
export type Change = 'add' | 'update' | 'unchanged' | 'delete' | 'other';
/** Rules fire on these unless they opt in to others with `on:`. */
export const DEFAULT_CHANGES: readonly Change[] = ['add', 'update', 'other'];

/** CloudEventFacts: the CloudEvent's attributes and extensions, plus its data, as rules and templates see them. */
export type CloudEventFacts = Record<string, unknown> & { type: string; id: string; source: string; data?: unknown };

/** EventInput: one event ready for matching. */
export interface EventInput {
  cloudevent: CloudEventFacts;
  /** The normalized Event; for other CloudEvent types, the data object (or {}). */
  event: Record<string, unknown>;
  change: Change;
  /** Occurrence key: Event uid + count (or lastTimestamp); for other types, source + id. */
  occurrence: string;
}
