/**
 * Digest rules: `digest: { key, window, maxEvents, keep }` groups a rule's matches by a JSONata key over a
 * window, and the rule's actions are sent once per group (by the flusher, src/deliver/digest-flusher.ts)
 * with `$digest` = { key, count, first, last, start, end } — a crash-looping Deployment with 50 pods is
 * one message, not 50. This file checks a rule's digest at load and builds the occurrence view a digest keeps.
 */
import type { CompiledAction, CompiledDigest } from '../rules/compiled-rule.js';

export type { CompiledDigest };
import type { RuleSpec } from '../rules/document.js';
import { compileTemplate, type Template, type TemplateOptions } from '../render/template.js';
import { destinationKind } from '../deliver/kinds/registry.js';
import { DEFAULT_THROTTLE_KEY, parseDuration } from './throttle.js';
import { copied } from './copied.js';

const MIN_WINDOW_MS = 1000;
const MAX_WINDOW_MS = 86_400_000;
export const DEFAULT_KEEP = 3;
/** Longest digest key, as JSON: it is kept with the group and shown in `$digest.key`. */
export const MAX_KEY_CHARS = 1024;
/** Longest message kept per occurrence: the digest is a summary, and many are kept per group. */
const MAX_MESSAGE_CHARS = 1024;

/**
 * compileDigest checks a rule's digest and returns it compiled, or throws with every problem (each starting
 * with the field it is about, after "digest"): the window's bounds, the key's JSONata, and what a digest
 * cannot combine with — a throttle, a shadow rule, templates that read one event's cluster objects.
 */
export function compileDigest(
  spec: RuleSpec,
  shadow: boolean,
  actions: CompiledAction[],
  options: TemplateOptions,
): { digest?: CompiledDigest; problems: string[] } {
  const digest = spec.digest!;
  const problems: string[] = [];
  const windowMs = parseDuration(digest.window);
  if (windowMs < MIN_WINDOW_MS || windowMs > MAX_WINDOW_MS)
    problems.push(
      `digest.window: ${JSON.stringify(digest.window)} is outside 1s to 1d (a group stays open that long after its first occurrence)`,
    );
  let key: Template | undefined;
  try {
    key = compileTemplate(digest.key ?? DEFAULT_THROTTLE_KEY, options);
  } catch (err) {
    problems.push(`digest.key: ${(err as Error).message}`);
  }
  if (spec.throttle)
    problems.push(
      'digest: a rule cannot have both digest and throttle (a digest already sends one delivery per key and window); drop throttle',
    );
  if (spec.region)
    problems.push(
      'digest: a rule cannot have both digest and region (a region already sends one delivery per start and end); keep one',
    );
  if (shadow)
    problems.push(
      'digest: a shadow rule cannot have a digest (shadow rules are compared event by event); try the digest on a live rule with a log destination',
    );
  for (const action of actions) {
    const kind = destinationKind(action.destination.kind);
    if (kind.reads.length > 0) {
      problems.push(
        `actions[${action.index}].destination: a ${kind.name} destination reads the event's ${kind.reads.join(', ')} and cannot send a digest`,
      );
    } else if (action.uses.size > 0) {
      problems.push(
        `actions[${action.index}]: a digest's templates cannot read ${[...action.uses].map((f) => `$${f}`).join(', ')} (a digest is sent after its window, for many events); read them in digest.key or in the conditions`,
      );
    }
  }
  if (problems.length > 0 || !key) return { problems };
  return { digest: { key, windowMs, maxEvents: digest.maxEvents, keep: digest.keep ?? DEFAULT_KEEP }, problems };
}

/**
 * One occurrence as a digest keeps it: the Event's fields templates read, each text cut (the message at 1,024
 * characters, the others at 256) — event data is hostile, and a group keeps up to 2 × `keep` of these.
 */
export type DigestOccurrence = Record<string, unknown>;

const MAX_TEXT_CHARS = 256;
const TEXT_FIELDS = ['reason', 'type', 'firstTimestamp', 'lastTimestamp', 'reportingComponent'] as const;
const OBJECT_FIELDS = {
  metadata: ['name', 'namespace', 'uid'],
  involvedObject: ['kind', 'namespace', 'name', 'uid', 'apiVersion', 'fieldPath'],
  source: ['component', 'host'],
} as const;

const cut = (value: unknown, max = MAX_TEXT_CHARS) =>
  typeof value === 'string' && value.length > max ? copied(`${value.slice(0, max)}…`) : value;

export function occurrenceView(event: Record<string, unknown>): DigestOccurrence {
  const view: DigestOccurrence = {};
  for (const [field, keys] of Object.entries(OBJECT_FIELDS)) {
    const value = event[field];
    if (value === null || typeof value !== 'object') continue;
    const kept: Record<string, unknown> = {};
    for (const key of keys) {
      const inner = (value as Record<string, unknown>)[key];
      if (typeof inner === 'string') kept[key] = cut(inner);
    }
    view[field] = kept;
  }
  for (const field of TEXT_FIELDS) if (typeof event[field] === 'string') view[field] = cut(event[field]);
  if (typeof event.count === 'number') view.count = event.count;
  if (typeof event.message === 'string') view.message = cut(event.message, MAX_MESSAGE_CHARS);
  return view;
}
