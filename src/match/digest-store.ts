/**
 * Where digest groups live between their first occurrence and their flush. A group is one key of one rule
 * over one window; recording an occurrence is what lets the event be acknowledged, so `record` either
 * records it (or finds it recorded already: a Broker redelivery counts once) or throws.
 *
 * Flushing claims due groups (window over, or `maxEvents` reached): a claim closes the group — the next
 * occurrence of its key opens a new one — and leases it for `leaseMs`; the claimant then completes it
 * (delivered, or given up) or puts it back for a later try. A claim not completed in time (the process
 * died) is due again when its lease ends, so another claimant flushes it.
 *
 * This is the in-memory store: one process's groups, lost if it dies (docs/reliability.md); with REDIS_URL,
 * src/store/redis-digest-store.ts keeps them in Redis, shared by every replica.
 */
import { randomUUID } from 'node:crypto';
import { HashedTable } from '../store/hashed-table.js';
import type { DigestOccurrence } from './digest-rule.js';

export interface DigestGroup {
  id: string;
  rule: string;
  /** The key's value as JSON. */
  key: string;
  count: number;
  /** When the first and the last occurrence were recorded (ms since the epoch). */
  start: number;
  end: number;
  first: DigestOccurrence[];
  /** The last `keep` occurrences after the first `keep` (none while count ≤ keep). */
  last: DigestOccurrence[];
  /** Flushes that failed so far. */
  failures: number;
}

export interface DigestClaim {
  group: DigestGroup;
  token: string;
}

export interface RecordOptions {
  windowMs: number;
  maxEvents?: number;
  keep: number;
  /** Most groups one rule may hold; beyond, a new key is refused (`over_capacity`). */
  maxGroups: number;
}

export type RecordOutcome = 'recorded' | 'duplicate' | 'over_capacity';

export interface DigestStore {
  /** Shared by replicas and kept when this process dies (Redis), or this process's own (memory). */
  readonly shared: boolean;
  /** A dry run's view (readOnlyDigests): nothing is recorded, claimed or completed; the recorder only previews. */
  readonly previewOnly?: boolean;
  /** record adds occurrence `id` to the open group of (rule, key), opening one if needed; throws if it cannot. */
  record(rule: string, key: string, id: string, view: DigestOccurrence, options: RecordOptions): Promise<RecordOutcome>;
  /** peek: the open group's count (dry runs), changing nothing. */
  peek(rule: string, key: string): Promise<number | undefined>;
  claimDue(leaseMs: number, limit: number): Promise<DigestClaim[]>;
  /** complete removes a claimed group (flushed, or given up). */
  complete(claim: DigestClaim): Promise<void>;
  /** retryLater counts a failed flush and makes the group due again at `at`. */
  retryLater(claim: DigestClaim, at: number): Promise<void>;
  /** Groups recorded and not yet completed. */
  groups(): Promise<number>;
  /** The same, by rule. */
  groupsByRule(): Promise<Map<string, number>>;
  /** Makes every group due now (a graceful shutdown of the memory store flushes what it holds). */
  dueNow(): Promise<void>;
}

interface MemoryGroup extends DigestGroup {
  due: number;
  openKey?: string;
  token?: string;
}

/** The in-memory store; `seenWindowMs`: how long a recorded occurrence is remembered (DEDUP_WINDOW_SECONDS). */
export function createMemoryDigestStore(
  seenWindowMs: number,
  seenCapacity = 100_000,
  now: () => number = Date.now,
): DigestStore {
  const groups = new Map<string, MemoryGroup>();
  const open = new Map<string, string>();
  const perRule = new Map<string, number>();
  // Checked and written without an await between: two deliveries of one occurrence at once record it once.
  const seen = new HashedTable(seenCapacity, 1); // field 0: until when the occurrence is remembered
  const wasSeen = (key: string) => {
    const slot = seen.find(key);
    return slot >= 0 && seen.get(slot) > now();
  };
  const openKeyOf = (rule: string, key: string) => `${rule}\n${key}`;
  const close = (group: MemoryGroup) => {
    if (group.openKey && open.get(group.openKey) === group.id) open.delete(group.openKey);
    group.openKey = undefined;
  };
  return {
    shared: false,
    async record(rule, key, id, view, options) {
      const seenKey = `${rule}\n${id}`;
      if (wasSeen(seenKey)) return 'duplicate';
      const openKey = openKeyOf(rule, key);
      let group = groups.get(open.get(openKey) ?? '');
      const at = now();
      if (!group) {
        if ((perRule.get(rule) ?? 0) >= options.maxGroups) return 'over_capacity';
        group = {
          id: randomUUID(),
          rule,
          key,
          count: 0,
          start: at,
          end: at,
          first: [],
          last: [],
          failures: 0,
          due: at + options.windowMs,
          openKey,
        };
        groups.set(group.id, group);
        open.set(openKey, group.id);
        perRule.set(rule, (perRule.get(rule) ?? 0) + 1);
      }
      group.count++;
      group.end = at;
      if (group.count <= options.keep) group.first.push(view);
      else {
        group.last.push(view);
        if (group.last.length > options.keep) group.last.shift();
      }
      if (options.maxEvents !== undefined && group.count >= options.maxEvents) {
        group.due = at;
        close(group);
      }
      seen.set(seen.write(seenKey), 0, at + seenWindowMs);
      return 'recorded';
    },
    async peek(rule, key) {
      return groups.get(open.get(openKeyOf(rule, key)) ?? '')?.count;
    },
    async claimDue(leaseMs, limit) {
      const at = now();
      const claims: DigestClaim[] = [];
      for (const group of groups.values()) {
        if (claims.length >= limit) break;
        if (group.due > at) continue;
        close(group);
        group.due = at + leaseMs;
        group.token = randomUUID();
        const { id, rule, key, count, start, end, failures, token } = group;
        claims.push({
          group: { id, rule, key, count, start, end, failures, first: [...group.first], last: [...group.last] },
          token,
        });
      }
      return claims;
    },
    async complete(claim) {
      const group = groups.get(claim.group.id);
      if (!group || group.token !== claim.token) return;
      groups.delete(group.id);
      const left = (perRule.get(group.rule) ?? 1) - 1;
      if (left > 0) perRule.set(group.rule, left);
      else perRule.delete(group.rule);
    },
    async retryLater(claim, at) {
      const group = groups.get(claim.group.id);
      if (!group || group.token !== claim.token) return;
      group.failures++;
      group.token = undefined;
      group.due = at;
    },
    async groups() {
      return groups.size;
    },
    async groupsByRule() {
      return new Map(perRule);
    },
    async dueNow() {
      const at = now();
      for (const group of groups.values()) if (!group.token) group.due = Math.min(group.due, at);
    },
  };
}

/** readOnlyDigests: the store as a dry run sees it — open groups can be peeked at, nothing else happens. */
export function readOnlyDigests(store: DigestStore): DigestStore {
  return {
    shared: store.shared,
    previewOnly: true,
    record: async () => 'duplicate',
    peek: (rule, key) => store.peek(rule, key),
    claimDue: async () => [],
    complete: async () => undefined,
    retryLater: async () => undefined,
    groups: () => store.groups(),
    groupsByRule: () => store.groupsByRule(),
    dueNow: async () => undefined,
  };
}
