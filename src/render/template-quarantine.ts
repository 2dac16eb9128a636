/**
 * TemplateQuarantine: a template that keeps hitting its guards (timeout or CPU budget, depth, sequence
 * length, output size, its worker's heap or overrun) costs a worker — or, without workers, the event loop — up to a
 * budget each time. After `strikes` such trips within `windowMs`, the rule's templates are not evaluated for
 * `cooldownMs` (its actions are answered 503 so the Broker redelivers later) — the rest keeps its latency.
 */
import { OUTPUT_TOO_LARGE } from './template.js';
import { CPU_BUDGET, OUT_OF_MEMORY, OVERRUN } from './template-sandbox.js';

export const GUARD_CODES = new Set(['D1012', 'D1011', 'D2015', OUTPUT_TOO_LARGE, CPU_BUDGET, OVERRUN, OUT_OF_MEMORY]);

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
