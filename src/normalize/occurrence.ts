/**
 * Occurrences: an Event object is created once and then PATCHed each time it repeats (count+1), and
 * deleted by TTL about an hour later. ApiServerSource turns each of these into a CloudEvent with a new id,
 * so "one CloudEvent" is not "one occurrence". The occurrence key is uid + count (or lastTimestamp when
 * the Event has no count); an update is a new occurrence only when that key moved forward.
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

/** Where an occurrence stands: its count (1 when the Event has none yet), then its time. */
interface Position {
  count: number;
  time: number;
}

/** The fields the tracker keeps per Event uid: the newest occurrence's count and time. */
const COUNT = 0;
const TIME = 1;

export type Verb = 'add' | 'update' | 'delete';

/** Classifier: what normalization needs of a tracker. */
export interface Classifier {
  classify(verb: Verb, raw: Record<string, unknown>, event: KubeEvent, cloudEventId: string): Change;
}

/**
 * OccurrenceTracker classifies ApiServerSource add/update/delete into a Change. It remembers, in bounded
 * tables (least recently written evicted first), the newest occurrence per Event uid and the CloudEvent
 * ids recently classified as new occurrences — so a Broker redelivery is classified the same way again,
 * even when newer occurrences of its Event arrived in between (redeliveries come within minutes).
 */
export class OccurrenceTracker implements Classifier {
  private readonly newest: HashedTable;
  private readonly newIds: HashedTable;

  constructor(capacity: number) {
    this.newest = new HashedTable(capacity, 2);
    this.newIds = new HashedTable(capacity, 0);
  }

  /** readOnly gives a view that classifies like this tracker but remembers nothing (for dry runs). */
  readOnly(): Classifier {
    return { classify: (verb, raw, event, cloudEventId) => this.classify(verb, raw, event, cloudEventId, false) };
  }

  classify(verb: Verb, raw: Record<string, unknown>, event: KubeEvent, cloudEventId: string, remember = true): Change {
    if (verb === 'delete') return 'delete';
    const uid = event.metadata.uid;
    if (!uid) return verb;
    const position = positionOf(raw, event);
    const idKey = `${uid} ${cloudEventId}`;
    if (verb === 'add') {
      const previous = this.previous(uid);
      if (remember) this.remember(uid, previous && !isAfter(position, previous) ? previous : position, idKey);
      return 'add';
    }
    if (this.newIds.find(idKey) >= 0) return 'update'; // a redelivery of an update that was new
    const previous = this.previous(uid);
    // Never seen this Event: a repeated one (count > 1) is an occurrence we must not lose; count 1 only had its metadata touched.
    const isNew = previous ? isAfter(position, previous) : position.count > 1 || !hasCount(raw);
    if (!isNew) return 'unchanged';
    if (remember) this.remember(uid, position, idKey); // new, so this position is the newest
    return 'update';
  }

  /** remember records `newest` as the Event's newest occurrence and `idKey` as classified new. */
  private remember(uid: string, newest: Position, idKey: string): void {
    this.newIds.write(idKey);
    const slot = this.newest.write(uid); // written even for an older add, so recently active Events stay longest
    this.newest.set(slot, COUNT, newest.count);
    this.newest.set(slot, TIME, newest.time);
  }

  private previous(uid: string): Position | undefined {
    const slot = this.newest.find(uid);
    return slot < 0 ? undefined : { count: this.newest.get(slot, COUNT), time: this.newest.get(slot, TIME) };
  }
}

function hasCount(raw: Record<string, unknown>): boolean {
  return rawCount(raw) !== undefined;
}

/**
 * positionOf: events.k8s.io Events have no count until they repeat (then series.count is 2), so a
 * missing count is 1 and the time orders occurrences of equal count.
 */
function positionOf(raw: Record<string, unknown>, event: KubeEvent): Position {
  const time = Date.parse(event.lastTimestamp ?? '');
  return { count: rawCount(raw) ?? 1, time: Number.isNaN(time) ? 0 : time };
}

function isAfter(a: Position, b: Position): boolean {
  return a.count > b.count || (a.count === b.count && a.time > b.time);
}
