/**
 * RecentEvents: the last N CloudEvents the service received, for the playground's event picker. Bounded in
 * count and in the size of each entry (a larger event is kept as a note, not its content), and redacted
 * with every secret value known when it is read. Recording is a reference on the hot path: an event whose
 * request size is known and small is serialized only when the playground asks (serializing every event
 * cost ≈ 3 % of the service's CPU in the bench). Only the admin API hands them out.
 */
import type { CloudEvent } from 'cloudevents';
import { knownSecrets } from '../redact.js';

/** An event as a CloudEvent file (`{headers, body}`), the form the playground and `test` read. */
export interface RecordedEvent {
  label: string;
  receivedAt: string;
  /** The CloudEvent file's JSON text; undefined when the event was larger than the entry limit. */
  text?: string;
  note?: string;
}

/** Events larger than this are listed but not kept (a 1 MiB message would crowd out the rest). */
export const MAX_ENTRY_BYTES = 64 * 1024;

/**
 * An entry: already serialized, or the event itself (and when it came, in ms) until the playground first asks for it.
 */
type Entry = RecordedEvent | { event: CloudEvent<unknown>; receivedAt: number };

export class RecentEvents {
  private readonly entries: Entry[] = [];

  constructor(private readonly capacity: number) {}

  /** record keeps the events of one request; `requestBytes` (when known) lets small ones wait to be serialized. */
  record(events: readonly CloudEvent<unknown>[], requestBytes?: number): void {
    if (this.capacity <= 0) return;
    const lazy = requestBytes !== undefined && requestBytes <= MAX_ENTRY_BYTES;
    const receivedAt = Date.now();
    for (const event of events) {
      this.entries.push(lazy ? { event, receivedAt } : toRecorded(event, receivedAt));
      if (this.entries.length > this.capacity) this.entries.shift();
    }
  }

  /** list returns the newest first, redacted with every secret known now. */
  list(): RecordedEvent[] {
    for (let i = 0; i < this.entries.length; i++) {
      const entry = this.entries[i];
      if ('event' in entry) this.entries[i] = toRecorded(entry.event, entry.receivedAt);
    }
    return (this.entries as RecordedEvent[]).map((entry) => knownSecrets.redactDeep(entry)).reverse();
  }
}

function toRecorded(event: CloudEvent<unknown>, receivedAtMs: number): RecordedEvent {
  const receivedAt = new Date(receivedAtMs).toISOString();
  const attributes = event.toJSON();
  const headers: Record<string, string> = { 'content-type': String(event.datacontenttype ?? 'application/json') };
  for (const [name, value] of Object.entries(attributes)) {
    if (name === 'data' || name === 'data_base64' || name === 'datacontenttype' || value === undefined) continue;
    // eslint-disable-next-line @typescript-eslint/no-base-to-string -- attributes are scalars (validated)
    headers[`ce-${name}`] = String(value);
  }
  const data = event.data;
  const raw = typeof data === 'string' || Buffer.isBuffer(data) || data instanceof Uint8Array;
  const file = raw
    ? { headers, bodyEncoding: 'raw', body: Buffer.from(data).toString('utf8') }
    : { headers, body: data ?? null };
  const involved = (data ?? {}) as {
    involvedObject?: { kind?: string; name?: string };
    regarding?: { kind?: string; name?: string };
    reason?: string;
  };
  const object = involved.involvedObject ?? involved.regarding;
  const label = knownSecrets.redact(
    `${String(event.type ?? '')}${involved.reason ? ` ${involved.reason}` : ''}${object?.kind ? ` ${object.kind}/${object.name ?? ''}` : ''} (${String(event.id ?? '')})`,
  );
  const text = knownSecrets.redact(JSON.stringify(file, null, 2));
  if (Buffer.byteLength(text) > MAX_ENTRY_BYTES)
    return { label, receivedAt, note: `not kept: ${Buffer.byteLength(text)} bytes (more than ${MAX_ENTRY_BYTES})` };
  return { label, receivedAt, text };
}
