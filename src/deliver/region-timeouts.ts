/**
 * The timeout sweep of change regions: every second it asks the region store for regions past their
 * timeout, claims each (so one replica closes it) and sends the rule's actions with `$region.endedBy =
 * "timeout"` and the end at start + timeout, through the background delivery (outside any request; once per
 * region and action, across replicas with Redis). The template input is the start's Event. A failed delivery
 * gives the region back to be tried again later (retryDelayMs); after MAX_FAILURES it is dropped and counted.
 * It starts once the rules are loaded: a region whose rule is not loaded is dropped (logged), and at start-up
 * every rule would look missing.
 */
import { randomUUID } from 'node:crypto';
import { describeError } from '../errors.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { timeoutBinding } from '../match/region-pairing.js';
import { retryDelayMs, type BackgroundDelivery } from './background-delivery.js';
import type { CompiledRule } from '../rules/compiled-rule.js';
import type { RegionStore } from '../store/region-store.js';

/** How often the sweep looks (a region closes at most this late after its timeout, when delivery succeeds at once). */
const SWEEP_EVERY_MS = 1000;
/** Regions closed per sweep at most (the rest wait for the next). */
const PER_SWEEP = 100;
/** Failed deliveries of one region's timeout before it is dropped (≈ 4 minutes of retries). */
const MAX_FAILURES = 10;
/** A claim outlives the delivery's deadline by this much (a crash frees the region then). */
const CLAIM_MARGIN_MS = 5000;

export interface RegionTimeoutOptions {
  store: RegionStore;
  rules: () => { rules: readonly CompiledRule[] };
  background: BackgroundDelivery;
  /** How long one closing may take (DELIVERY_DEADLINE_SECONDS: the background delivery's deadline). */
  deadlineMs: number;
  metrics: Metrics;
  log: Logger;
  everyMs?: number;
}

export interface RegionTimeouts {
  /** Runs one sweep now (tests; the timer runs them every second). */
  sweep(): Promise<void>;
  /** Stops the timer and waits for the sweep in progress. */
  stop(): Promise<void>;
}

export function startRegionTimeouts(options: RegionTimeoutOptions): RegionTimeouts {
  const { store, metrics, log } = options;
  let running: Promise<void> | undefined;
  let stopped = false;
  /** Failed deliveries per region (this replica's count: another replica starts its own). */
  const failures = new Map<string, number>();

  async function closeOne(id: string): Promise<void> {
    const token = randomUUID();
    const claim = await store.claim(id, token, options.deadlineMs + CLAIM_MARGIN_MS);
    if (claim.status !== 'taken') return;
    const { start } = claim;
    const context = { rule: start.rule, occurrence: start.occurrence, key: start.key };
    const rule = options.rules().rules.find((r) => r.name === start.rule && r.region !== undefined && !r.shadow);
    if (!rule) {
      log.warn(context, 'region timed out, but its rule is no longer loaded (or no longer has a region): dropped');
      await store.clear(id, token, start.scope);
      return;
    }
    const region = timeoutBinding(start);
    const namespace = (start.event.metadata as { namespace?: string } | undefined)?.namespace || undefined;
    const results = await Promise.all(
      rule.actions.map((action) =>
        options.background.deliver({
          rule,
          action,
          input: start.event,
          bindings: { region, occurrence: start.occurrence, cloudevent: start.cloudevent },
          key: `region|${id}|${start.time}|${action.identity}`,
          what: 'region',
          id,
          namespace,
        }),
      ),
    );
    const failed = results.filter((result) => result.outcome === 'failed');
    if (failed.length > 0) {
      const count = (failures.get(id) ?? 0) + 1;
      if (count < MAX_FAILURES) {
        failures.set(id, count);
        const retryInMs = retryDelayMs(count, Math.max(0, ...failed.map((result) => result.retryAfterMs ?? 0)));
        await store.release(id, token, Date.now() + retryInMs);
        return;
      }
      log.error({ ...context, failures: count }, 'region timed out, and its delivery kept failing: dropped');
      metrics.regionsClosed.inc({ rule: rule.name, how: 'dropped' });
    } else {
      metrics.regionsClosed.inc({ rule: rule.name, how: 'timeout' });
      log.info({ ...context, startedAt: new Date(start.time).toISOString() }, 'region closed by its timeout');
    }
    failures.delete(id);
    await store.clear(id, token, start.scope);
  }

  async function sweep(): Promise<void> {
    let ids: string[];
    try {
      ids = await store.due(Date.now(), PER_SWEEP);
    } catch {
      return; // Redis unavailable: counted by the store; the next sweep tries again
    }
    await Promise.all(
      ids.map((id) =>
        closeOne(id).catch((err: unknown) => {
          log.warn({ error: describeError(err) }, 'region timeout not closed now; the next sweep tries again');
        }),
      ),
    );
  }

  const runSweep = () => (running ??= sweep().finally(() => (running = undefined)));
  const timer = setInterval(() => {
    if (!stopped) void runSweep();
  }, options.everyMs ?? SWEEP_EVERY_MS).unref();

  return {
    sweep: runSweep,
    async stop() {
      stopped = true;
      clearInterval(timer);
      await running;
    },
  };
}
