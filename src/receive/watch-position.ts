/**
 * WatchPosition: how far standalone mode's Event watch has got — the newest resourceVersion whose changes
 * were all handled (delivered, rejected, or given up after the in-process retries). It is kept with the
 * dedup store (Redis with REDIS_URL), so a restart resumes from it: Events changed since are handled,
 * those not changed since are not sent again. Without it (no REDIS_URL, first start, a Redis outage)
 * the start window STANDALONE_MAX_AGE_SECONDS applies, and what it sends is counted as possible duplicates.
 *
 * resourceVersions are compared as numbers (etcd's revision); one that is not a number disables resuming.
 */
export interface PositionStore {
  get(key: string): Promise<string | undefined>;
  set(key: string, value: string): Promise<void>;
}

/** revision parses a resourceVersion as etcd's revision, or undefined. */
export function revision(resourceVersion: unknown): number | undefined {
  if (typeof resourceVersion !== 'string' || !/^\d{1,15}$/.test(resourceVersion)) return undefined;
  return Number(resourceVersion);
}

/**
 * PositionTracker: the position is the newest revision such that every change up to it was handled —
 * a change still retrying holds it back, so a restart hands it to the new process instead of losing it.
 */
export class PositionTracker {
  private readonly inFlight = new Map<number, number>(); // revision → changes at it still being handled
  private newest: number;

  constructor(start = 0) {
    this.newest = start;
  }

  begin(rev: number): void {
    this.inFlight.set(rev, (this.inFlight.get(rev) ?? 0) + 1);
    if (rev > this.newest) this.newest = rev;
  }

  end(rev: number): void {
    const left = (this.inFlight.get(rev) ?? 1) - 1;
    if (left <= 0) this.inFlight.delete(rev);
    else this.inFlight.set(rev, left);
  }

  /** seen: a change that needed no handling (skipped) still moves the position. */
  seen(rev: number): void {
    if (rev > this.newest) this.newest = rev;
  }

  get position(): number {
    let oldest = Number.POSITIVE_INFINITY;
    for (const rev of this.inFlight.keys()) oldest = Math.min(oldest, rev);
    return oldest === Number.POSITIVE_INFINITY ? this.newest : Math.min(this.newest, oldest - 1);
  }
}
