/**
 * normalize turns a validated CloudEvent into what the matcher reads (an EventInput), or into a
 * reference that must first be resolved through the Kubernetes API (ApiServerSource Reference mode).
 * Pure: no I/O beyond the occurrence tracker's memory.
 */
import type { CloudEvent } from 'cloudevents';
import { InvalidEventError } from '../errors.js';
import { toCoreV1 } from './events-v1.js';
import type { CloudEventFacts, EventInput, ObjectReference } from './kube-event.js';
import { occurrenceKey, type Classifier, type Verb } from './occurrence.js';

const APISERVER_TYPE = /^dev\.knative\.apiserver\.(resource|ref)\.(add|update|delete)$/;

export type Normalized =
  | { kind: 'input'; input: EventInput }
  | { kind: 'reference'; ref: ObjectReference; verb: Verb; cloudevent: CloudEventFacts };

const isObject = (value: unknown): value is Record<string, unknown> =>
  typeof value === 'object' && value !== null && !Array.isArray(value);

/** cloudEventFacts copies attributes and extensions into a plain object (CloudEvent instances are frozen classes). */
export function cloudEventFacts(ce: CloudEvent<unknown>): CloudEventFacts {
  const facts: Record<string, unknown> = {};
  for (const key of Object.keys(ce)) {
    const value = (ce as unknown as Record<string, unknown>)[key];
    if (key === 'data_base64' || typeof value === 'function') continue;
    facts[key] = value;
  }
  return facts as CloudEventFacts;
}

export function normalize(ce: CloudEvent<unknown>, tracker: Classifier): Normalized {
  const cloudevent = cloudEventFacts(ce);
  const match = APISERVER_TYPE.exec(ce.type);
  if (!match) {
    const event = isObject(ce.data) ? ce.data : {};
    return { kind: 'input', input: { cloudevent, event, change: 'other', occurrence: `${ce.source}/${ce.id}` } };
  }
  const [, mode, verb] = match as unknown as [string, 'resource' | 'ref', Verb];
  if (!isObject(ce.data)) {
    throw new InvalidEventError(
      400,
      'invalid data',
      `${ce.type} needs a JSON object as data, got ${describe(ce.data)}`,
    );
  }
  if (mode === 'ref') {
    const { kind, namespace, name, apiVersion } = ce.data as ObjectReference;
    if (typeof name !== 'string' || name === '') {
      throw new InvalidEventError(400, 'invalid data', `${ce.type} data must be an object reference with a name`);
    }
    return { kind: 'reference', ref: { kind, namespace, name, apiVersion }, verb, cloudevent };
  }
  return { kind: 'input', input: fromObject(ce.data, verb, ce.id, cloudevent, tracker) };
}

/** fromObject normalizes a watched object (Resource mode, or a resolved reference). */
export function fromObject(
  data: Record<string, unknown>,
  verb: Verb,
  cloudEventId: string,
  cloudevent: CloudEventFacts,
  tracker: Classifier,
): EventInput {
  if (data.kind !== undefined && data.kind !== 'Event') {
    // ApiServerSource can watch any resource; such objects have no occurrences, every change counts.
    const metadata = isObject(data.metadata) ? data.metadata : {};
    const change = verb === 'delete' ? 'delete' : verb;
    // The API server's scalars; a forged object here only spoils its own key.
    // eslint-disable-next-line @typescript-eslint/no-base-to-string
    const occurrence = `${String(metadata.uid ?? '')}/${String(metadata.resourceVersion ?? '')}`;
    return { cloudevent, event: data, change, occurrence };
  }
  const event = toCoreV1(data);
  const change = tracker.classify(verb, data, event, cloudEventId);
  return { cloudevent, event, change, occurrence: occurrenceKey(data, event) };
}

function describe(value: unknown): string {
  if (value === undefined) return 'no data';
  if (Array.isArray(value)) return 'an array';
  if (value === null) return 'null';
  return typeof value === 'string' ? `a string (${JSON.stringify(value.slice(0, 40))}…)` : typeof value;
}
