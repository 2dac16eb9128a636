/**
 * TemplateQuarantine: a template that keeps hitting its guards (timeout, depth, sequence length) blocks
 * the event loop for up to TEMPLATE_TIMEOUT_MS each time, stalling every other event. After `strikes`
 * such trips within `windowMs`, the rule's templates are not evaluated for `cooldownMs` (its actions
 * are counted as errors) — the rest of the service keeps its latency.
 */
export const GUARD_CODES = new Set(['D1012', 'D1011', 'D2015']);

export class TemplateQuarantine {
  private readonly trips = new Map<string, number[]>();
  private readonly until = new Map<string, number>();

  constructor(
    private readonly strikes = 2,
    private readonly windowMs = 60_000,
    private readonly cooldownMs = 60_000,
    private readonly now: () => number = Date.now,
  ) {}

  /** quarantinedUntil: epoch ms until which the rule is held back, or undefined. */
  quarantinedUntil(rule: string): number | undefined {
    const until = this.until.get(rule);
    if (until === undefined) return undefined;
    if (until > this.now()) return until;
    this.until.delete(rule);
    return undefined;
  }

  /** trip records a guard trip; returns true when it put the rule in quarantine. */
  trip(rule: string): boolean {
    const since = this.now() - this.windowMs;
    const recent = [...(this.trips.get(rule) ?? []).filter((t) => t > since), this.now()];
    this.trips.set(rule, recent);
    if (recent.length < this.strikes) return false;
    this.trips.delete(rule);
    this.until.set(rule, this.now() + this.cooldownMs);
    return true;
  }
}
