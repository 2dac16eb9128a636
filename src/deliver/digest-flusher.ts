/**
 * The digest flusher: a background job that claims due digest groups (window over, or `maxEvents` reached)
 * and sends each through its rule's actions with `$digest` bound — by background delivery, so with the
 * same senders and policies as any action, and once per group and action (the dedup key names both).
 *
 * A flush that failed (a destination down, the rule not loaded on this replica yet) is tried again later
 * (1 s doubling to 60 s), counted and logged; after DIGEST_FLUSH_ATTEMPTS failures the group is dropped
 * with the reason — counted and logged as an error, never silently. With Redis the claim is a lease: if
 * this process dies while flushing, another replica (or this one restarted) flushes the group when the
 * lease ends. With the memory store, a graceful shutdown flushes every group at once and counts as lost
 * what it could not deliver in time.
 */
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { digestBinding } from '../match/digest-recorder.js';
import type { DigestClaim, DigestStore } from '../match/digest-store.js';
import type { CompiledRule } from '../rules/compiled-rule.js';
import type { RuleSet } from '../rules/rule-store.js';
import { retryDelayMs, type BackgroundDelivery, type BackgroundResult } from './background-delivery.js';

/** How often due groups are looked for: the lateness of a flush past its window. */
const POLL_MS = 250;
/** Groups claimed per look; the rest wait for the next one. */
const CLAIM_LIMIT = 50;

export interface DigestFlusherOptions {
  store: DigestStore;
  rules: () => RuleSet;
  background: BackgroundDelivery;
  metrics: Metrics;
  log: Logger;
  /** Failed flushes of one group before it is dropped. */
  maxAttempts: number;
  /** How long a claim holds a group: longer than a flush can take (every action runs to its deadline). */
  leaseMs: number;
}

export interface DigestFlusher {
  start(): void;
  /** One look for due groups, flushed before it resolves (tests, shutdown). */
  flushDue(): Promise<void>;
  /** Stops looking; the memory store's groups are flushed now, up to `timeoutMs`, and the rest counted as lost. */
  close(timeoutMs: number): Promise<void>;
}

export function createDigestFlusher(options: DigestFlusherOptions): DigestFlusher {
  const { store, metrics, log } = options;
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;
  let closed = false;
  /** Rules by name, per rule set (a reload makes a new one). */
  const byName = new WeakMap<RuleSet, Map<string, CompiledRule>>();
  const ruleNamed = (name: string) => {
    const set = options.rules();
    let names = byName.get(set);
    if (!names) byName.set(set, (names = new Map(set.rules.filter((r) => !r.shadow).map((r) => [r.name, r]))));
    return names.get(name);
  };

  async function flush(claim: DigestClaim): Promise<void> {
    const { group } = claim;
    const fields = { rule: group.rule, digest: group.id, count: group.count };
    const rule = ruleNamed(group.rule);
    let results: BackgroundResult[];
    if (!rule?.digest) {
      results = [{ outcome: 'failed', error: `rule ${group.rule} is not loaded here (or has no digest now)` }];
    } else {
      const input = group.last.at(-1) ?? group.first.at(-1) ?? {};
      const bindings = { digest: digestBinding(group) };
      results = await Promise.all(
        rule.actions.map((action) =>
          options.background.deliver({
            rule,
            action,
            input,
            bindings,
            key: `digest|${group.id}|${action.identity}`,
            what: 'digest',
            id: group.id,
            namespace: rule.scope,
          }),
        ),
      );
    }
    const failed = results.filter((r) => r.outcome === 'failed');
    if (failed.length === 0) {
      const outcome = results.every((r) => r.outcome === 'delivered' || r.outcome === 'skipped_duplicate')
        ? 'delivered'
        : 'rejected';
      await store.complete(claim);
      metrics.digestFlushes.inc({ rule: group.rule, outcome });
      if (outcome === 'rejected')
        log.error(
          { ...fields, errors: results.map((r) => r.error).filter(Boolean) },
          'digest not delivered: refused or not renderable; not retried',
        );
      return;
    }
    const failures = group.failures + 1;
    const reason = failed.map((r) => r.error ?? (r.status ? `HTTP ${r.status}` : 'failed')).join('; ');
    if (failures >= options.maxAttempts) {
      await store.complete(claim);
      metrics.digestFlushes.inc({ rule: group.rule, outcome: 'dropped' });
      log.error(
        { ...fields, failures, reason },
        `digest dropped after ${failures} failed flushes (DIGEST_FLUSH_ATTEMPTS)`,
      );
      return;
    }
    const delay = retryDelayMs(failures, Math.max(0, ...failed.map((r) => r.retryAfterMs ?? 0)));
    await store.retryLater(claim, Date.now() + delay);
    metrics.digestFlushes.inc({ rule: group.rule, outcome: 'retry' });
    log.warn({ ...fields, failures, retryInMs: delay, reason }, 'digest flush failed; tried again later');
  }

  async function look(): Promise<void> {
    const claims = await store.claimDue(options.leaseMs, CLAIM_LIMIT);
    await Promise.all(
      claims.map((claim) =>
        flush(claim).catch((err: unknown) =>
          log.error(
            { rule: claim.group.rule, digest: claim.group.id, err: (err as Error).message },
            'digest flush failed unexpectedly; the group is due again when its claim ends',
          ),
        ),
      ),
    );
  }

  /** One look at a time: a slow flush delays the next look rather than doubling the work. */
  function flushDue(): Promise<void> {
    running ??= look().finally(() => (running = undefined));
    return running;
  }

  return {
    start() {
      if (!closed) timer ??= setInterval(() => void flushDue(), POLL_MS).unref();
    },
    flushDue,
    async close(timeoutMs) {
      closed = true;
      clearInterval(timer);
      timer = undefined;
      const end = Date.now() + timeoutMs;
      await Promise.race([running, new Promise((resolve) => setTimeout(resolve, timeoutMs).unref())]);
      if (store.shared) return; // the groups stay in Redis: another replica, or this one restarted, flushes them
      await store.dueNow();
      while ((await store.groups()) > 0 && Date.now() < end) {
        await Promise.race([
          flushDue(),
          new Promise((resolve) => setTimeout(resolve, Math.max(0, end - Date.now())).unref()),
        ]);
        if ((await store.groups()) > 0) await new Promise((resolve) => setTimeout(resolve, 50));
        await store.dueNow();
      }
      const lost = await store.groups();
      if (lost === 0) return;
      const byRule = await store.groupsByRule();
      for (const [rule, groups] of byRule) metrics.digestFlushes.inc({ rule, outcome: 'lost' }, groups);
      log.error(
        { groups: lost, byRule: Object.fromEntries(byRule) },
        'shutdown: digest groups held in memory could not be flushed in time and are lost (use REDIS_URL to keep them)',
      );
    },
  };
}
