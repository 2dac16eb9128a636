/**
 * The hot path's CloudEvent reader: a binary-mode request with `content-type: application/json` and
 * plain attribute headers — what ApiServerSource and the Broker send, nearly every request — becomes the
 * very CloudEvent `HTTP.toEvent` would build, at a fraction of its cost (the SDK sanitizes the headers
 * twice, builds two errors per parse and formats the time through the local time zone:
 * docs/performance.md). Anything else returns undefined and goes to the SDK. A differential test
 * (test/receive/binary-json-fast-path.test.ts) holds the two to the same output on fixtures and
 * thousands of mutated requests.
 */
import { CloudEvent } from 'cloudevents';
import type { IncomingHttpHeaders } from 'node:http';

/** Binary-mode headers and the attribute each one carries (cloudevents message/http/headers.js, v1). */
const ATTRIBUTE_HEADERS: [header: string, attribute: string][] = [
  ['ce-type', 'type'],
  ['ce-specversion', 'specversion'],
  ['ce-source', 'source'],
  ['ce-id', 'id'],
  ['ce-time', 'time'],
  ['ce-dataschema', 'dataschema'],
  ['ce-subject', 'subject'],
  ['datacontenttype', 'datacontenttype'],
  ['content-type', 'datacontenttype'],
];
const MAPPED = new Set(ATTRIBUTE_HEADERS.map(([header]) => header));

/** The SDK parses JSON with json-bigint instead when this is set; we then leave every request to it. */
const SDK_USES_BIG_INT = process.env.CE_USE_BIG_INT === 'true';

/** fastBinaryJson returns the CloudEvent of a plain binary-mode JSON request, or undefined to use the SDK. */
export function fastBinaryJson(headers: IncomingHttpHeaders, body: string): CloudEvent<unknown> | undefined {
  if (SDK_USES_BIG_INT || headers['content-type'] !== 'application/json' || headers['ce-specversion'] !== '1.0')
    return undefined;
  if (body.charCodeAt(0) !== 0x7b /* { */) return undefined; // the SDK quotes bodies that do not start with { [ or "
  const event: Record<string, unknown> = {};
  for (const [header, attribute] of ATTRIBUTE_HEADERS) {
    const value = headers[header];
    if (value === undefined) continue;
    // Empty or repeated headers take odd paths through the SDK (an empty one becomes an extension).
    if (typeof value !== 'string' || value === '') return undefined;
    event[attribute] = value;
  }
  if (typeof event.id !== 'string') return undefined;
  if (event.time !== undefined) {
    const millis = Date.parse(event.time as string);
    if (Number.isNaN(millis)) return undefined; // the SDK replaces an unparsable time with the current time
    event.time = new Date(millis).toISOString();
  }
  for (const header in headers) {
    if (/[A-Z]/.test(header)) return undefined; // Node lowercases names; other callers (files, tests) may not
    if (!header.startsWith('ce-') || MAPPED.has(header)) continue;
    const value = headers[header];
    if (typeof value !== 'string' || value === '') return undefined;
    event[header.slice(3)] = value;
  }
  let data: unknown;
  try {
    data = JSON.parse(body);
  } catch {
    return undefined; // the SDK words the error
  }
  return new CloudEvent({ ...event, data }, false);
}
