/**
 * TokenBucket: a client-side rate limit, so an event storm cannot hammer the API server.
 * `take()` never waits: a caller without a token gets "rate limited", with `waitMs()` as its Retry-After.
 * `pauseFor()` honours the API server's own Retry-After: no token until it has passed.
 */
export class TokenBucket {
  private tokens: number;
  private last: number;
  private pausedUntil = 0;

  constructor(
    private readonly perSecond: number,
    private readonly burst: number,
    private readonly now: () => number = Date.now,
  ) {
    this.tokens = burst;
    this.last = now();
  }

  take(): boolean {
    const now = this.now();
    if (now < this.pausedUntil) return false;
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.perSecond);
    this.last = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** waitMs: how long until `take()` can succeed again (at least 1 ms). */
  waitMs(): number {
    const now = this.now();
    const paused = this.pausedUntil - now;
    const refill = this.tokens >= 1 ? 0 : ((1 - this.tokens) / this.perSecond) * 1000;
    return Math.max(1, Math.ceil(Math.max(paused, refill)));
  }

  /** pauseFor refuses every request for `ms` (the API server answered 429 with this Retry-After). */
  pauseFor(ms: number): void {
    this.pausedUntil = Math.max(this.pausedUntil, this.now() + ms);
  }
}
