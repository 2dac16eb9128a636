/**
 * Occurrences: an Event object is created once and then PATCHed each time it repeats (count+1), and
 * deleted by TTL about an hour later. ApiServerSource turns each of these into a CloudEvent with a new id,
 * so "one CloudEvent" is not "one occurrence". The occurrence key is uid + count (or lastTimestamp when
 * the Event has no count); an update is a new occurrence when its key was not seen before.
 */
import { rawCount } from './events-v1.js';
import type { Change, KubeEvent } from './kube-event.js';
import { HashedTable } from '../store/hashed-table.js';

/** occurrenceKey identifies one occurrence of an Event: `<uid>/<count>` or `<uid>/<lastTimestamp>`. */
export function occurrenceKey(raw: Record<string, unknown>, event: KubeEvent): string {
  const identity = event.metadata.uid ?? `${event.metadata.namespace ?? ''}/${event.metadata.name ?? ''}`;
  const count = rawCount(raw);
  return `${identity}/${count ?? event.lastTimestamp ?? ''}`;
}

export type Verb = 'add' | 'update' | 'delete';

/** Classifier: what normalization needs of a tracker. */
export interface Classifier {
  classify(verb: Verb, raw: Record<string, unknown>, event: KubeEvent, cloudEventId: string): Change;
}

/**
 * OccurrenceTracker classifies ApiServerSource add/update/delete into a Change. It remembers, in bounded
 * tables (least recently written evicted first), the occurrence keys it has seen and the CloudEvent ids
 * that introduced them — so a Broker redelivery is classified the same way again.
 *
 * Only an occurrence that was itself seen is `unchanged`. Order says nothing: the Broker may deliver
 * count 6 before count 5, and with several replicas count 5 may have failed on another one — so an older
 * count never seen here is a late occurrence and fires (the delivered-action store keeps it from being
 * sent twice). Nothing is compared across keys, so an Event stamped far in the future suppresses nothing
 * but itself. A wrong `update` costs one skipped duplicate; a wrong `unchanged` would lose an occurrence,
 * which is why "seen" is kept per replica and never inferred from a newer count.
 */
/** A classifier that can also give a view of itself that remembers nothing (a batch's check, a dry run). */
export interface Occurrences extends Classifier {
  readOnly(): Occurrences;
}

export class OccurrenceTracker implements Occurrences {
  private readonly seen: HashedTable;
  private readonly newIds: HashedTable;

  constructor(capacity: number) {
    this.seen = new HashedTable(capacity, 0);
    this.newIds = new HashedTable(capacity, 0);
  }

  /** readOnly gives a view that classifies like this tracker but remembers nothing (for dry runs). */
  readOnly(): Occurrences {
    const view: Occurrences = {
      classify: (verb, raw, event, cloudEventId) => this.classify(verb, raw, event, cloudEventId, false),
      readOnly: () => view,
    };
    return view;
  }

  classify(verb: Verb, raw: Record<string, unknown>, event: KubeEvent, cloudEventId: string, remember = true): Change {
    if (verb === 'delete') return 'delete';
    if (!event.metadata.uid) return verb;
    const key = occurrenceKey(raw, event);
    if (verb === 'add') {
      if (remember) this.seen.write(key);
      return 'add';
    }
    const idKey = `${key} ${cloudEventId}`;
    if (this.newIds.find(idKey) >= 0) return 'update'; // a redelivery of an update that was new
    if (this.seen.find(key) >= 0) return 'unchanged'; // this very occurrence was seen: only metadata moved
    // Count 1 is the occurrence the add introduced; an update that still says 1 only touched metadata.
    const count = rawCount(raw);
    if (count !== undefined && count <= 1) return 'unchanged';
    if (remember) {
      this.seen.write(key);
      this.newIds.write(idKey);
    }
    return 'update';
  }
}
