/**
 * Change regions: a region rule pairs a start occurrence with its end by key (a rollout starting and
 * completing, a Node NotReady then Ready) and sends its actions once per pair, with both times
 * (`$region`). A start is recorded and answered 2xx once recorded (503 when it cannot be). An end claims
 * its region, delivers in its own request, and clears the region only once its actions are delivered (or
 * can never be): a failed delivery gives the region back, and the Broker's redelivery of the end closes it.
 * Regions whose end never comes are closed by the timeout sweep (src/deliver/region-timeouts.ts).
 *
 * Semantics (docs/rule-authoring.md, "Regions"):
 * - an occurrence that matches both sides is an end;
 * - the first start wins: a start while its region is open (a redelivery, a repeat) changes nothing;
 * - an end with no open region, or one that happened before the open start, is not sent: it is counted
 *   (`region_unmatched_ends_total`) and logged, and answered 2xx — a start that arrives after it opens a
 *   region that its timeout closes.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { EventInput } from '../normalize/kube-event.js';
import type { LazyFacts } from '../enrich/lazy-facts.js';
import { LookupFailedError } from '../enrich/lookup-failed.js';
import { TemplateError, describeError } from '../errors.js';
import { keyFailure } from './key-failure.js';
import { copied } from './copied.js';
import type { CompiledRule } from '../rules/compiled-rule.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { EventView, RegionStart, RegionStore } from '../store/region-store.js';
import { match } from './match.js';

/** What templates see as `$region`. */
export interface RegionBinding {
  /** The key's value. */
  key: unknown;
  start: { time: number; event: EventView };
  /** After a timeout: time = start + the rule's timeout, event null. */
  end: { time: number; event: EventView | null };
  endedBy: 'end' | 'timeout';
}

/** A region occurrence that sends nothing: a start recorded (or already open), or an end without its start. */
export type RegionOutcome = 'region_started' | 'region_unmatched';

export interface RegionReport {
  rule: string;
  destination: string;
  outcome: RegionOutcome | 'failed' | 'error';
  error?: string;
  retryAfterMs?: number;
  unavailable?: boolean;
}

type Delivered = { outcome: string };

/** The longest region key (JSON text) kept; a longer one is an error of the rule's key template. */
const MAX_KEY_BYTES = 1024;
/** Longest text field of an Event a region keeps (the message; other fields: a tenth). */
const MAX_TEXT = 4096;
/** A closing holds its region this long past its request's deadline (a crash then frees it). */
const CLAIM_MARGIN_MS = 5000;
/** An end that finds its region being closed elsewhere asks the Broker to come back after this long. */
const CLAIMED_RETRY_MS = 1000;

/** regionId: where a region is kept — its rule and key, hashed (the key is event data of any length). */
export function regionId(rule: string, key: string): string {
  return createHash('sha256').update(rule).update('\n').update(key).digest('base64url');
}

/** eventTime: when the occurrence happened (the normalized Event always has lastTimestamp), else now. */
export function eventTime(event: Record<string, unknown>): number {
  const time = typeof event.lastTimestamp === 'string' ? Date.parse(event.lastTimestamp) : NaN;
  return Number.isFinite(time) ? time : Date.now();
}

const FIELDS = [
  'reason',
  'message',
  'type',
  'count',
  'firstTimestamp',
  'lastTimestamp',
  'eventTime',
  'action',
  'reportingComponent',
  'reportingInstance',
];
const OBJECT_FIELDS: Record<string, string[]> = {
  metadata: ['name', 'namespace', 'uid'],
  involvedObject: ['kind', 'namespace', 'name', 'uid', 'apiVersion', 'fieldPath'],
  source: ['component', 'host'],
};

/** eventView: the fields of an Event a region keeps — bounded, whatever the Event holds. */
export function eventView(event: Record<string, unknown>): EventView {
  const scalar = (value: unknown, max: number) =>
    typeof value === 'string'
      ? value.length > max
        ? copied(value.slice(0, max)) // a slice would keep the whole text alive
        : value
      : typeof value === 'number' || typeof value === 'boolean'
        ? value
        : undefined;
  const view: EventView = {};
  for (const field of FIELDS) {
    const value = scalar(event[field], field === 'message' ? MAX_TEXT : MAX_TEXT / 10);
    if (value !== undefined) view[field] = value;
  }
  for (const [field, names] of Object.entries(OBJECT_FIELDS)) {
    const object = event[field];
    if (object === null || typeof object !== 'object') continue;
    const picked: Record<string, unknown> = {};
    for (const name of names) {
      const value = scalar((object as Record<string, unknown>)[name], MAX_TEXT / 10);
      if (value !== undefined) picked[name] = value;
    }
    view[field] = picked;
  }
  return view;
}

/** timeoutBinding: `$region` of a region closed by its timeout (end = start + timeout, as recorded when it opened). */
export function timeoutBinding(start: RegionStart): RegionBinding {
  return {
    key: JSON.parse(start.key),
    start: { time: start.time, event: start.event },
    end: { time: start.expiresAt, event: null },
    endedBy: 'timeout',
  };
}

/** The two sides as rules of their own, so match() evaluates them with the event's facts (built once per rule). */
const sidesOf = new WeakMap<CompiledRule, { end: CompiledRule; start: CompiledRule }>();
function sides(rule: CompiledRule): { end: CompiledRule; start: CompiledRule } {
  let found = sidesOf.get(rule);
  if (!found) {
    const region = rule.region!;
    found = {
      end: { ...rule, rule: region.end.rule, test: region.end.test },
      start: { ...rule, rule: region.start.rule, test: region.start.test },
    };
    sidesOf.set(rule, found);
  }
  return found;
}

export interface RegionPairing {
  /**
   * occurrence handles one matched occurrence of a region rule: records a start, or closes the region with
   * `deliverAll` (the rule's actions with `$region` bound). A dry run's store records and claims nothing
   * (readOnlyRegions).
   */
  occurrence<R extends Delivered>(
    rule: CompiledRule,
    input: EventInput,
    facts: LazyFacts,
    deadline: number,
    deliverAll: (region: RegionBinding) => Promise<R[]>,
  ): Promise<(R | RegionReport)[]>;
}

/**
 * createRegionPairing pairs through `store`. The service's dry runs give it a read-only view of the live store
 * (readOnlyRegions); the CLI's `test` and the playground a memory of their own, so a start and its end among
 * one run's events pair.
 */
export function createRegionPairing(store: RegionStore, metrics: Metrics, log: Logger): RegionPairing {
  /**
   * The occurrences of one region in this process are handled one after the other, in the order they reach
   * it: a batch holding a start and its end (its events run at once) opens the region before the end closes it,
   * and one holding the end twice closes it once.
   */
  const queues = new Map<string, Promise<unknown>>();
  const inOrder = async <T>(id: string, handle: () => Promise<T>): Promise<T> => {
    const before = queues.get(id);
    const handled = (async () => {
      await before?.catch(() => undefined);
      return handle();
    })();
    queues.set(id, handled);
    try {
      return await handled;
    } finally {
      if (queues.get(id) === handled) queues.delete(id);
    }
  };

  return {
    async occurrence(rule, input, facts, deadline, deliverAll) {
      const region = rule.region!;
      const reports = (outcome: RegionReport['outcome'], extra: Partial<RegionReport> = {}): RegionReport[] =>
        rule.actions.map((action) => ({ rule: rule.name, destination: action.destination.name, outcome, ...extra }));
      const context = { rule: rule.name, occurrence: input.occurrence, ceId: input.cloudevent.id };

      const { end: endSide, start: startSide } = sides(rule);
      const decided = await match([endSide, startSide], input, facts);
      if (decided.failed.length > 0) {
        const cause = decided.failed[0].cause;
        return reports('failed', {
          error: `region: ${decided.failed[0].error}`,
          retryAfterMs: cause instanceof LookupFailedError ? cause.retryAfterMs : undefined,
        });
      }
      const isEnd = decided.matched.includes(endSide);
      if (!isEnd && !decided.matched.includes(startSide)) return [];

      let key: string;
      try {
        key = JSON.stringify(
          await region.key.evaluate(
            input.event,
            { cloudevent: input.cloudevent, occurrence: input.occurrence },
            deadline,
          ),
        );
        if (Buffer.byteLength(key) > MAX_KEY_BYTES)
          throw new TemplateError(`the value has more than ${MAX_KEY_BYTES} bytes as JSON`);
      } catch (err) {
        const { outcome, ...failure } = keyFailure(err, `rule ${rule.name} region.key: ${describeError(err)}`, {
          log,
          metrics,
          fields: context,
          what: 'region key',
          notKept: 'paired',
        });
        return reports(outcome, failure);
      }
      const id = regionId(rule.name, key);
      // An Event stamped in the future (its sender sets the time) counts as now: a start must still time out.
      const time = Math.min(eventTime(input.event), Date.now());
      return inOrder(id, () => (isEnd ? closeRegion() : openRegion()));

      /** What deliverAll reports per action. */
      type Sent = Awaited<ReturnType<typeof deliverAll>>[number];

      async function openRegion(): Promise<RegionReport[]> {
        const start: RegionStart = {
          rule: rule.name,
          ...(rule.scope === undefined ? {} : { scope: rule.scope }),
          key,
          time,
          expiresAt: time + region.timeoutMs,
          occurrence: input.occurrence,
          cloudevent: { id: input.cloudevent.id, type: input.cloudevent.type, source: input.cloudevent.source },
          event: eventView(input.event),
        };
        try {
          const opened = await store.open(id, start);
          if (opened === 'full' || opened === 'team_full') {
            const error =
              opened === 'full'
                ? 'REGION_MAX_OPEN regions are open'
                : `namespace ${rule.scope}'s rules hold TEAM_MAX_OPEN_REGIONS open regions`;
            log.warn({ ...context, error }, 'region start not recorded; the Broker will redeliver');
            return reports('failed', { error: `${error}; start not recorded`, retryAfterMs: CLAIMED_RETRY_MS * 5 });
          }
          log.info(
            { ...context, key, opened: opened === 'opened' },
            opened === 'opened' ? 'region opened' : 'region already open; the first start stands',
          );
          return reports('region_started');
        } catch (err) {
          log.warn({ ...context, error: describeError(err) }, 'region start not recorded; the Broker will redeliver');
          return reports('failed', { error: `region start not recorded: ${describeError(err)}` });
        }
      }

      async function closeRegion(): Promise<(RegionReport | Sent)[]> {
        const end = { time, event: eventView(input.event) };
        const unmatched = (why: string): RegionReport[] => {
          metrics.regionUnmatchedEnds.inc({ rule: rule.name });
          log.info({ ...context, key }, `region end not sent: ${why}`);
          return reports('region_unmatched', { error: why });
        };
        const token = randomUUID();
        let claim;
        try {
          claim = await store.claim(id, token, Math.max(0, deadline - Date.now()) + CLAIM_MARGIN_MS);
        } catch (err) {
          log.warn({ ...context, error: describeError(err) }, 'region end not paired now; the Broker will redeliver');
          return reports('failed', { error: `region not read: ${describeError(err)}` });
        }
        if (claim.status === 'none') return unmatched('no open region for its key');
        if (claim.status === 'claimed')
          return reports('failed', {
            error: 'the region is being closed by another delivery',
            retryAfterMs: CLAIMED_RETRY_MS,
          });
        const { start } = claim;
        if (start.time > time) {
          await store.release(id, token).catch(() => undefined);
          return unmatched('it happened before the open region started');
        }
        const delivered = await deliverAll({
          key: JSON.parse(key),
          start: { time: start.time, event: start.event },
          end,
          endedBy: 'end',
        });
        if (delivered.some((report) => report.outcome === 'failed')) {
          await store.release(id, token).catch(() => undefined); // else it is freed when the claim ends
          return delivered;
        }
        try {
          await store.clear(id, token, start.scope);
        } catch (err) {
          // Delivered, but the region is still there: the redelivery finds it delivered (dedup) and clears it.
          return [
            ...delivered,
            ...reports('failed', { error: `region delivered but not cleared: ${describeError(err)}` }).slice(0, 1),
          ];
        }
        metrics.regionsClosed.inc({ rule: rule.name, how: 'end' });
        log.info({ ...context, key, startedAt: new Date(start.time).toISOString() }, 'region closed by its end');
        return delivered;
      }
    },
  };
}
