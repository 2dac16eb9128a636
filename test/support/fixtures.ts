/**
 * Example events: ApiServerSource CloudEvents as `{headers, body}` (examples/events, copied from the
 * shared fixtures). `bodyEncoding: "raw"` means the body string is sent verbatim.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

export const EXAMPLES_DIR = new URL('../../examples/events/', import.meta.url).pathname;

export interface EventFixture {
  headers: Record<string, string>;
  body: unknown;
  bodyEncoding?: 'raw';
}

export function loadFixture(name: string, dir = EXAMPLES_DIR): EventFixture {
  return JSON.parse(readFileSync(join(dir, name.endsWith('.json') ? name : `${name}.json`), 'utf8')) as EventFixture;
}

export function fixtureNames(dir = EXAMPLES_DIR): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.json'))
    .sort();
}

/** bodyOf gives the request body as sent on the wire. */
export function bodyOf(fixture: EventFixture): string {
  return fixture.bodyEncoding === 'raw' ? String(fixture.body) : JSON.stringify(fixture.body);
}

/** withEvent returns a copy of a fixture whose Event (body) and headers are changed by `edit`. */
export function withEvent(
  fixture: EventFixture,
  edit: (body: Record<string, any>, headers: Record<string, string>) => void,
): EventFixture {
  const copy = structuredClone(fixture);
  edit(copy.body as Record<string, any>, copy.headers);
  return copy;
}
