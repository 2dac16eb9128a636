/**
 * parseCloudEvents reads binary, structured and batch mode requests with the cloudevents SDK (plain
 * binary-mode JSON through an equivalent fast path: binary-json-fast-path.ts), then
 * validates each event (the SDK does not for binary and structured mode) and makes sure JSON data is
 * parsed (the SDK leaves it a string for content types such as `application/json;charset=UTF-8`).
 * Anything wrong becomes an InvalidEventError(400) that says exactly what.
 */
import { HTTP, ValidationError, type CloudEvent } from 'cloudevents';
import type { IncomingHttpHeaders } from 'node:http';
import { InvalidEventError } from '../errors.js';
import { fastBinaryJson } from './binary-json-fast-path.js';

/** Batches larger than this are refused: one request must stay bounded in time and memory. */
export const MAX_BATCH = 1000;

/**
 * Data nested deeper than this is refused (400): rendering and matching walk it recursively, and a
 * 400,000-deep array overflowed the stack at every redelivery. A Kubernetes Event is about 5 levels deep.
 */
export const MAX_DATA_DEPTH = 100;

export function parseCloudEvents(headers: IncomingHttpHeaders, body: string): CloudEvent<unknown>[] {
  let parsed: CloudEvent<unknown> | CloudEvent<unknown>[];
  try {
    parsed = fastBinaryJson(headers, body) ?? sdkToEvent(headers, body);
  } catch (err) {
    throw toInvalid(err);
  }
  const events = Array.isArray(parsed) ? parsed : [parsed];
  if (events.length === 0) throw new InvalidEventError(400, 'empty batch', 'the batch holds no CloudEvent');
  if (events.length > MAX_BATCH)
    throw new InvalidEventError(413, 'batch too large', `${events.length} events in one batch; at most ${MAX_BATCH}`);
  const binary = !String(headers['content-type'] ?? '')
    .toLowerCase()
    .startsWith('application/cloudevents');
  const shallow = openingBrackets(body, MAX_DATA_DEPTH) <= MAX_DATA_DEPTH;
  return events.map((event, i) => {
    const where = events.length > 1 ? `batch entry ${i}: ` : '';
    try {
      event.validate();
    } catch (err) {
      const invalid = toInvalid(err);
      throw new InvalidEventError(400, invalid.error, where + invalid.detail);
    }
    const parsed = binary ? withJsonData(event, where) : event;
    // No walk when the whole body could not nest that deep (fewer brackets than the limit).
    const depth = shallow ? 0 : nestingDepth(parsed.data, MAX_DATA_DEPTH);
    if (depth > MAX_DATA_DEPTH)
      throw new InvalidEventError(
        400,
        'data too deeply nested',
        `${where}data is nested more than ${MAX_DATA_DEPTH} levels deep`,
      );
    return parsed;
  });
}

/**
 * openingBrackets counts `{` and `[` in the text (in strings too: an upper bound of how deep it nests), up to past
 * `limit`.
 */
function openingBrackets(text: string, limit: number): number {
  let count = 0;
  for (const bracket of ['{', '[']) {
    for (let at = text.indexOf(bracket); at >= 0 && count <= limit; at = text.indexOf(bracket, at + 1)) count++;
  }
  return count;
}

/** nestingDepth measures how deep arrays and objects nest, without recursion; stops counting past `limit`. */
export function nestingDepth(value: unknown, limit: number): number {
  if (value === null || typeof value !== 'object') return 0;
  let deepest = 0;
  const nodes: object[] = [value];
  const depths: number[] = [1];
  while (nodes.length > 0) {
    const node = nodes.pop() as Record<string, unknown>;
    const depth = depths.pop() as number;
    if (depth > deepest) {
      deepest = depth;
      if (deepest > limit) return deepest;
    }
    for (const key in node) {
      const child = node[key];
      if (child !== null && typeof child === 'object') {
        nodes.push(child);
        depths.push(depth + 1);
      }
    }
  }
  return deepest;
}

/** sdkToEvent reads any request with the SDK (the fast path's reference in its differential test). */
export function sdkToEvent(headers: IncomingHttpHeaders, body: string): CloudEvent<unknown> | CloudEvent<unknown>[] {
  // The SDK builds ValidationErrors eagerly on every parse (parsers.js) and we only ever use their
  // messages: without stack capture a parse costs a third less (docs/performance.md).
  const stackTraceLimit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return HTTP.toEvent({ headers, body }) as CloudEvent<unknown> | CloudEvent<unknown>[];
  } finally {
    Error.stackTraceLimit = stackTraceLimit;
  }
}

/** The content types whose binary-mode body the SDK already parsed as JSON (cloudevents parsers.js). */
const PARSED_BY_SDK = new Set([
  'application/json',
  'application/json; charset=utf-8',
  'application/cloudevents+json',
  'application/cloudevents+json; charset=utf-8',
]);

/** withJsonData parses a binary-mode JSON body the SDK left as text (e.g. `application/json;charset=UTF-8`). */
function withJsonData(event: CloudEvent<unknown>, where: string): CloudEvent<unknown> {
  let data = event.data;
  if (data instanceof Uint8Array) data = Buffer.from(data).toString('utf8');
  const contentType = event.datacontenttype ?? 'application/json';
  const isJson = /[/+]json\b/i.test(contentType) && !PARSED_BY_SDK.has(contentType);
  if (typeof data !== 'string' || !isJson) return data === event.data ? event : event.cloneWith({ data }, false);
  try {
    return event.cloneWith({ data: JSON.parse(data) as unknown }, false);
  } catch (err) {
    throw new InvalidEventError(400, 'invalid JSON', `${where}data is not valid JSON: ${(err as Error).message}`);
  }
}

function toInvalid(err: unknown): InvalidEventError {
  if (err instanceof InvalidEventError) return err;
  if (err instanceof ValidationError) {
    if (/no cloud event detected/i.test(err.message)) {
      return new InvalidEventError(
        400,
        'not a CloudEvent',
        'expected binary mode (ce-specversion, ce-id, ce-source, ce-type headers) or content-type application/cloudevents+json or application/cloudevents-batch+json',
      );
    }
    const errors = (err.errors ?? []) as unknown[];
    const details = errors.map((e) =>
      typeof e === 'object' && e !== null && 'message' in e
        ? `${String((e as { instancePath?: string }).instancePath || 'event')} ${String(e.message)}`
        : String(e),
    );
    return new InvalidEventError(400, 'invalid CloudEvent', details.length > 0 ? details.join('; ') : err.message);
  }
  if (err instanceof SyntaxError) return new InvalidEventError(400, 'invalid JSON', err.message);
  return new InvalidEventError(400, 'invalid CloudEvent', err instanceof Error ? err.message : String(err));
}
