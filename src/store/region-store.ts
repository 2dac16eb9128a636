/**
 * RegionStore keeps the open change regions: a start waiting for its end (or its timeout). Closing is a
 * claim, not a take: whoever closes a region (an end's request, the timeout sweep, on any replica) claims
 * it for a while, delivers, and only then clears it — or releases it when the delivery failed, so the
 * Broker's redelivery of the end (or the next sweep) closes it again. Two claims of one region never
 * overlap, so a region is delivered once (the delivered-action memory covers a crash between delivery and clear).
 * This file: the interface and the in-memory store (one replica, lost on restart); with REDIS_URL,
 * redis-region-store.ts.
 */

/** The fields of an Event a region keeps (bounded: what the presets and most templates read). */
export interface EventView {
  [field: string]: unknown;
}

export interface RegionStart {
  /** The rule's unique name (a team's: namespace/name). */
  rule: string;
  /** The team namespace of the rule, if it is a team's: its regions count against its own share. */
  scope?: string;
  /** The region key's value, as JSON text. */
  key: string;
  /** When the start happened (its Event's lastTimestamp), ms since the epoch. */
  time: number;
  /** time + the rule's timeout when it opened: the end of a region that times out. */
  expiresAt: number;
  /** The start's occurrence key and CloudEvent, for the timeout's delivery. */
  occurrence: string;
  cloudevent: { id: string; type: string; source: string };
  event: EventView;
}

export type RegionClaim = { status: 'none' } | { status: 'claimed' } | { status: 'taken'; start: RegionStart };

/**
 * REGION_MAX_OPEN, and TEAM_MAX_OPEN_REGIONS: a team's rules may hold only their share, so one team cannot take every
 * region.
 */
export interface RegionLimits {
  maxOpen: number;
  maxOpenPerTeam: number;
}

export interface RegionStore {
  /**
   * Records a start unless one is open for the id (the first start wins); `full` at REGION_MAX_OPEN, `team_full` at the
   * team's share.
   */
  open(id: string, start: RegionStart): Promise<'opened' | 'open' | 'full' | 'team_full'>;
  /** The open start, without claiming it (dry runs). */
  peek(id: string): Promise<RegionStart | undefined>;
  /** Claims the region for `holdMs`: `none` when no start is open, `claimed` while another closing holds it. */
  claim(id: string, token: string, holdMs: number): Promise<RegionClaim>;
  /** Removes the region if `token` still holds it (`scope`: the start's). */
  clear(id: string, token: string, scope: string | undefined): Promise<void>;
  /** Gives the claim up; the timeout sweep looks at it again at `retryAt`, or else at its timeout. */
  release(id: string, token: string, retryAt?: number): Promise<void>;
  /** Ids of regions past their timeout (or retry time) and not claimed, at most `limit`. */
  due(now: number, limit: number): Promise<string[]>;
  /** Regions open now. */
  size(): Promise<number>;
}

interface Entry {
  start: RegionStart;
  /** When the timeout sweep should close it. */
  due: number;
  claim?: string;
  claimedUntil: number;
}

export function createMemoryRegionStore(limits: RegionLimits, now: () => number = Date.now): RegionStore {
  const entries = new Map<string, Entry>();
  const perTeam = new Map<string, number>();
  return {
    async open(id, start) {
      if (entries.has(id)) return 'open';
      if (entries.size >= limits.maxOpen) return 'full';
      if (start.scope !== undefined) {
        const held = perTeam.get(start.scope) ?? 0;
        if (held >= limits.maxOpenPerTeam) return 'team_full';
        perTeam.set(start.scope, held + 1);
      }
      entries.set(id, { start, due: start.expiresAt, claimedUntil: 0 });
      return 'opened';
    },
    async peek(id) {
      return entries.get(id)?.start;
    },
    async claim(id, token, holdMs) {
      const entry = entries.get(id);
      if (!entry) return { status: 'none' };
      if (entry.claimedUntil > now()) return { status: 'claimed' };
      entry.claim = token;
      entry.claimedUntil = now() + holdMs;
      return { status: 'taken', start: entry.start };
    },
    async clear(id, token) {
      const entry = entries.get(id);
      if (entry?.claim !== token) return;
      entries.delete(id);
      const scope = entry.start.scope;
      if (scope === undefined) return;
      const held = (perTeam.get(scope) ?? 1) - 1;
      if (held > 0) perTeam.set(scope, held);
      else perTeam.delete(scope);
    },
    async release(id, token, retryAt) {
      const entry = entries.get(id);
      if (entry?.claim !== token) return;
      entry.claim = undefined;
      entry.claimedUntil = 0;
      entry.due = retryAt ?? entry.start.expiresAt;
    },
    async due(at, limit) {
      const ids: string[] = [];
      for (const [id, entry] of entries) {
        if (ids.length >= limit) break;
        if (entry.due <= at && entry.claimedUntil <= at) ids.push(id);
      }
      return ids;
    },
    async size() {
      return entries.size;
    },
  };
}

/**
 * readOnlyRegions: the store as a dry run sees it — a start would open (or find one open), an end finds the open
 * start as if it claimed it, and nothing is recorded, claimed or cleared.
 */
export function readOnlyRegions(store: RegionStore): RegionStore {
  return {
    open: async (id) => ((await store.peek(id)) ? 'open' : 'opened'),
    peek: (id) => store.peek(id),
    claim: async (id) => {
      const start = await store.peek(id);
      return start ? { status: 'taken', start } : { status: 'none' };
    },
    clear: async () => undefined,
    release: async () => undefined,
    due: async () => [],
    size: () => store.size(),
  };
}
