/**
 * toCoreV1 maps an Event of either API (core/v1 or events.k8s.io/v1) onto core/v1 field names
 * (the README's "normalized Event" lists the mapping) and fills the fields later stages rely on.
 */
import type { KubeEvent, ObjectReference } from './kube-event.js';

type Raw = Record<string, unknown>;

const isObject = (value: unknown): value is Raw => typeof value === 'object' && value !== null && !Array.isArray(value);
const text = (value: unknown): string | undefined => (typeof value === 'string' && value !== '' ? value : undefined);
const number = (value: unknown): number | undefined =>
  typeof value === 'number' && Number.isFinite(value) ? value : undefined;

/** rawCount is the Event's own repeat count, if it has one (undefined for a first scheduler-style event). */
export function rawCount(raw: Raw): number | undefined {
  const series = isObject(raw.series) ? raw.series : {};
  return number(raw.count) ?? number(series.count) ?? number(raw.deprecatedCount);
}

export function toCoreV1(raw: Raw): KubeEvent {
  const series = isObject(raw.series) ? raw.series : undefined;
  const source = isObject(raw.source) ? raw.source : {};
  const deprecatedSource = isObject(raw.deprecatedSource) ? raw.deprecatedSource : {};
  const involvedObject = (
    isObject(raw.involvedObject) ? raw.involvedObject : isObject(raw.regarding) ? raw.regarding : {}
  ) as ObjectReference;
  const eventTime = text(raw.eventTime) ?? null;
  const component =
    text(source.component) ??
    text(deprecatedSource.component) ??
    text(raw.reportingComponent) ??
    text(raw.reportingController);
  const host = text(source.host) ?? text(deprecatedSource.host) ?? text(raw.reportingInstance);

  const event: KubeEvent = {
    ...raw,
    apiVersion: text(raw.apiVersion),
    kind: text(raw.kind) ?? 'Event',
    metadata: isObject(raw.metadata) ? raw.metadata : {},
    involvedObject,
    reason: text(raw.reason),
    message: typeof raw.message === 'string' ? raw.message : typeof raw.note === 'string' ? raw.note : '',
    source: { ...(component ? { component } : {}), ...(host ? { host } : {}) },
    type: text(raw.type),
    firstTimestamp: text(raw.firstTimestamp) ?? text(raw.deprecatedFirstTimestamp) ?? eventTime,
    lastTimestamp:
      text(raw.lastTimestamp) ??
      text(raw.deprecatedLastTimestamp) ??
      text(series?.lastObservedTime) ??
      eventTime ??
      text(raw.firstTimestamp) ??
      null,
    count: rawCount(raw) ?? 1,
    eventTime,
    reportingComponent: text(raw.reportingComponent) ?? text(raw.reportingController) ?? component,
    reportingInstance: text(raw.reportingInstance) ?? host ?? '',
  };
  // The events.k8s.io names are gone once mapped; keeping them would give rules two names for one field.
  for (const key of [
    'regarding',
    'note',
    'deprecatedSource',
    'deprecatedFirstTimestamp',
    'deprecatedLastTimestamp',
    'deprecatedCount',
    'reportingController',
  ]) {
    delete event[key];
  }
  return event;
}
