/**
 * Occurrences: an Event object is created once and then PATCHed each time it repeats (count+1), and
 * deleted by TTL about an hour later. ApiServerSource turns each of these into a CloudEvent with a new id,
 * so "one CloudEvent" is not "one occurrence". The occurrence key is uid + count (or lastTimestamp when
 * the Event has no count); an update is a new occurrence only when that key moved forward.
 */
import { rawCount } from './events-v1.js';
import type { Change, KubeEvent } from './kube-event.js';
import { trimOldest } from '../bounded-map.js';

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

/**
 * What is remembered per Event: the newest occurrence seen, and the CloudEvent ids recently classified as
 * new occurrences (so a Broker redelivery is classified the same way again, even when newer occurrences
 * arrived in between). One flat object with a single id in the common case: the map holds up to 100k of
 * these and the garbage collector walks them all (docs/performance.md, soak).
 */
interface Seen extends Position {
  newIds: string | string[];
}

/** Redeliveries come within minutes; a handful of recent ids per Event is enough. */
const REMEMBERED_IDS = 16;

export type Verb = 'add' | 'update' | 'delete';

/** Classifier: what normalization needs of a tracker. */
export interface Classifier {
  classify(verb: Verb, raw: Record<string, unknown>, event: KubeEvent, cloudEventId: string): Change;
}

/**
 * OccurrenceTracker classifies ApiServerSource add/update/delete into a Change, remembering the newest
 * occurrence per Event uid in a bounded map (oldest entries evicted first).
 */
export class OccurrenceTracker implements Classifier {
  private readonly seen = new Map<string, Seen>();

  constructor(private readonly capacity: number) {}

  /** readOnly gives a view that classifies like this tracker but remembers nothing (for dry runs). */
  readOnly(): Classifier {
    return { classify: (verb, raw, event, cloudEventId) => this.classify(verb, raw, event, cloudEventId, false) };
  }

  classify(verb: Verb, raw: Record<string, unknown>, event: KubeEvent, cloudEventId: string, remember = true): Change {
    if (verb === 'delete') return 'delete';
    const uid = event.metadata.uid;
    const position = positionOf(raw, event);
    if (!uid) return verb;
    const previous = this.seen.get(uid);
    if (verb === 'add') {
      if (remember) this.remember(uid, position, cloudEventId, previous);
      return 'add';
    }
    if (previous && remembered(previous, cloudEventId)) return 'update'; // a redelivery of an update that was new
    // Never seen this Event: a repeated one (count > 1) is an occurrence we must not lose; count 1 only had its metadata touched.
    const isNew = previous ? isAfter(position, previous) : position.count > 1 || !hasCount(raw);
    if (!isNew) return 'unchanged';
    if (remember) this.remember(uid, position, cloudEventId, previous);
    return 'update';
  }

  private remember(uid: string, position: Position, cloudEventId: string, previous: Seen | undefined): void {
    let seen: Seen;
    if (previous) {
      seen = previous; // updated in place: no new object per occurrence
      if (isAfter(position, previous)) {
        seen.count = position.count;
        seen.time = position.time;
      }
      const ids = typeof previous.newIds === 'string' ? [previous.newIds] : previous.newIds;
      seen.newIds = [...ids, cloudEventId].slice(-REMEMBERED_IDS);
    } else {
      seen = { count: position.count, time: position.time, newIds: cloudEventId };
    }
    this.seen.delete(uid); // re-insert so Map order is recency order
    this.seen.set(uid, seen);
    trimOldest(this.seen, this.capacity);
  }
}

function remembered(seen: Seen, cloudEventId: string): boolean {
  return typeof seen.newIds === 'string' ? seen.newIds === cloudEventId : seen.newIds.includes(cloudEventId);
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
