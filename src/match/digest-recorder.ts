/**
 * Recording a digest rule's match: instead of rendering and sending its actions for this event, the
 * occurrence is added to its group (key evaluated now, with the facts the key reads). The event is
 * acknowledged only once that is done: a store that cannot record answers 503 (the Broker redelivers), a
 * rule already holding DIGEST_MAX_GROUPS groups answers 429. A dry run records nothing: it reports the key,
 * whether the group is open and how many it holds, and the request the digest would send, as if this
 * occurrence were the group's latest.
 */
import { ENRICHMENT_FACTS, type LazyFacts } from '../enrich/lazy-facts.js';
import { describeError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { EventInput } from '../normalize/kube-event.js';
import { knownSecrets } from '../redact.js';
import { backgroundBindings } from '../deliver/background-delivery.js';
import { renderAction, type ActionRenderDeps } from '../render/render-action.js';
import { keyFailure } from './key-failure.js';
import { redacted } from '../render/render-request.js';
import type { CompiledRule } from '../rules/compiled-rule.js';
import { MAX_KEY_CHARS, occurrenceView, type CompiledDigest, type DigestOccurrence } from './digest-rule.js';
import type { DigestGroup, DigestStore } from './digest-store.js';

/** What an action's report says about its digest. */
export interface DigestReport {
  key: unknown;
  /** `open`: the occurrence joins (dry run: would join) a group; `new`: it opens one. */
  group: 'new' | 'open';
  /** Occurrences in the group (dry run: were this one added). */
  count: number;
}

export interface DigestActionReport {
  rule: string;
  destination: string;
  /** `grouped`: recorded in its digest group (sent when the group is flushed). */
  outcome: 'grouped' | 'failed' | 'error' | 'rendered';
  digest?: DigestReport;
  request?: ReturnType<typeof redacted>;
  error?: string;
  retryAfterMs?: number;
  unavailable?: boolean;
}

/** `$digest` as an action's templates see it. */
export function digestBinding(group: Pick<DigestGroup, 'key' | 'count' | 'first' | 'last' | 'start' | 'end'>) {
  return {
    key: JSON.parse(group.key) as unknown,
    count: group.count,
    first: group.first,
    last: group.last,
    start: new Date(group.start).toISOString(),
    end: new Date(group.end).toISOString(),
  };
}

/** While the group store cannot record, ask the Broker to try again after this long. */
const UNRECORDED_RETRY_MS = 1000;

export interface DigestRecorderDeps {
  store: DigestStore;
  render: ActionRenderDeps;
  metrics: Metrics;
  log: Logger;
  maxGroups: number;
}

export interface DigestRecorder {
  record(
    rule: CompiledRule,
    digest: CompiledDigest,
    input: EventInput,
    facts: LazyFacts,
  ): Promise<DigestActionReport[]>;
}

export function createDigestRecorder(deps: DigestRecorderDeps): DigestRecorder {
  const { metrics, log } = deps;
  return {
    async record(rule, digest, input, facts) {
      const each = (report: Omit<DigestActionReport, 'rule' | 'destination'>) =>
        rule.actions.map((action): DigestActionReport => ({
          rule: rule.name,
          destination: action.destination.name,
          ...report,
        }));
      const fields = { rule: rule.name, occurrence: input.occurrence, ceId: input.cloudevent.id };
      let key: string;
      try {
        const bindings: Record<string, unknown> = {
          cloudevent: input.cloudevent,
          occurrence: input.occurrence,
          change: input.change,
        };
        for (const fact of ENRICHMENT_FACTS) bindings[fact] = digest.key.uses.has(fact) ? await facts[fact]() : null;
        key = JSON.stringify((await digest.key.evaluate(input.event, bindings)) ?? null);
        if (key.length > MAX_KEY_CHARS)
          throw new Error(`the key is ${key.length} characters as JSON; at most ${MAX_KEY_CHARS}`);
      } catch (err) {
        const failure = keyFailure(err, `digest key: ${describeError(err)}`, {
          log,
          metrics,
          fields,
          what: 'digest key',
          notKept: 'grouped',
        });
        return each(failure);
      }
      const view = occurrenceView(input.event);
      // A dry run's store (readOnlyDigests) records nothing: say which group the occurrence would join.
      if (deps.store.previewOnly) return preview(rule, key, view);
      // A delete is a notification of its own although it carries the occurrence (uid/count) of the add or update.
      const id = input.change === 'delete' ? `${input.occurrence}|delete` : input.occurrence;
      let outcome;
      try {
        outcome = await deps.store.record(rule.name, key, id, view, {
          windowMs: digest.windowMs,
          maxEvents: digest.maxEvents,
          keep: digest.keep,
          maxGroups: deps.maxGroups,
        });
      } catch (err) {
        metrics.digestOccurrences.inc({ rule: rule.name, outcome: 'failed' });
        const error = `the digest group store could not record the occurrence: ${describeError(err)}`;
        log.warn({ ...fields, error }, 'occurrence not recorded in its digest group; the Broker will redeliver');
        return each({ outcome: 'failed', error, retryAfterMs: UNRECORDED_RETRY_MS, unavailable: true });
      }
      metrics.digestOccurrences.inc({ rule: rule.name, outcome });
      if (outcome === 'over_capacity') {
        const error = `rule ${rule.name} already holds DIGEST_MAX_GROUPS (${deps.maxGroups}) digest groups; this key opens none until some are flushed`;
        log.warn({ ...fields, key }, error);
        return each({ outcome: 'failed', error, retryAfterMs: digest.windowMs });
      }
      log.debug({ ...fields, key, duplicate: outcome === 'duplicate' }, 'occurrence recorded in its digest group');
      return each({ outcome: 'grouped' });
    },
  };

  async function preview(rule: CompiledRule, key: string, view: DigestOccurrence): Promise<DigestActionReport[]> {
    const open = await deps.store.peek(rule.name, key);
    const count = (open ?? 0) + 1;
    const report: DigestReport = { key: JSON.parse(key) as unknown, group: open === undefined ? 'new' : 'open', count };
    const now = Date.now();
    const binding = digestBinding({ key, count, first: [view], last: [], start: now, end: now });
    return Promise.all(
      rule.actions.map(async (action): Promise<DigestActionReport> => {
        const base = { rule: rule.name, destination: action.destination.name, digest: report };
        try {
          const request = await renderAction(
            deps.render,
            rule,
            action,
            view,
            backgroundBindings(rule, 'dry-run', { digest: binding }),
            rule.scope,
          );
          return { ...base, outcome: 'rendered', request: redacted(request) };
        } catch (err) {
          return { ...base, outcome: 'error', error: knownSecrets.redact(describeError(err)) };
        }
      }),
    );
  }
}
