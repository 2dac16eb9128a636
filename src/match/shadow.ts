/**
 * Shadow rules: a rule (or a whole document) marked `shadow: true` is evaluated on live traffic beside the
 * live rules and never sends. For each event it could match, it is compared with its live twin — the live
 * rule of the same name in the same scope: matched by only one of them, or both matched and rendered a
 * different request (method, URL, headers, body; secrets redacted on both sides, so a changed secret value
 * is not seen). Differences are counted, logged, kept (the last ones, for /status and the playground) and
 * carried in dry-run reports. Promoting a shadow rule is removing its mark.
 */
import type { CompiledRule } from '../rules/compiled-rule.js';

/** A ConfigMap with this label set to "true" holds shadow rules only, whatever its documents say. */
export const SHADOW_LABEL = 'kube-event-rules/shadow';

/** A rendered request as reports print it (secrets already redacted), or why it could not be rendered. */
export type ShadowRequest =
  { method: string; url?: string; headers: Record<string, string>; body: unknown } | { error: string };

export interface ShadowOutcome {
  rule: string;
  matched: boolean;
  /** The live twin's result; `none` when no live rule has this name (a new rule). */
  live: 'matched' | 'not_matched' | 'none';
  differences: string[];
}

export type DifferenceKind = 'only_shadow' | 'only_live' | 'request';

/** twinOf finds the live rule a shadow rule stands beside. */
export function twinOf(shadow: CompiledRule, rules: readonly CompiledRule[]): CompiledRule | undefined {
  return rules.find((rule) => !rule.shadow && rule.name === shadow.name);
}

/**
 * compareShadow tells how a shadow rule's outcome differs from its twin's for one event. `render` gives
 * the requests of a rule's actions (only called when both matched).
 */
export async function compareShadow(
  shadow: CompiledRule,
  twin: CompiledRule | undefined,
  matched: ReadonlySet<CompiledRule>,
  render: (rule: CompiledRule) => Promise<ShadowRequest[]>,
): Promise<ShadowOutcome & { kinds: DifferenceKind[] }> {
  const shadowMatched = matched.has(shadow);
  if (!twin) return { rule: shadow.name, matched: shadowMatched, live: 'none', differences: [], kinds: [] };
  const twinMatched = matched.has(twin);
  const outcome = {
    rule: shadow.name,
    matched: shadowMatched,
    live: twinMatched ? ('matched' as const) : ('not_matched' as const),
  };
  if (shadowMatched !== twinMatched) {
    const difference = shadowMatched ? 'matched by the shadow rule only' : 'matched by the live rule only';
    return { ...outcome, differences: [difference], kinds: [shadowMatched ? 'only_shadow' : 'only_live'] };
  }
  if (!shadowMatched) return { ...outcome, differences: [], kinds: [] };
  const [mine, theirs] = await Promise.all([render(shadow), render(twin)]);
  const differences: string[] = [];
  for (let i = 0; i < Math.max(mine.length, theirs.length); i++) {
    const where = `action ${i} (${shadow.actions[i]?.destination.name ?? twin.actions[i]?.destination.name})`;
    if (!mine[i] || !theirs[i]) {
      differences.push(`${where}: only the ${mine[i] ? 'shadow' : 'live'} rule has it`);
      continue;
    }
    differences.push(...requestDifferences(mine[i], theirs[i]).map((d) => `${where}: ${d}`));
  }
  return { ...outcome, differences, kinds: differences.length > 0 ? ['request'] : [] };
}

/** Longest value shown in a difference: the point is where it differs, not the whole body. */
const SHOWN = 120;
const show = (value: unknown) => {
  const text = JSON.stringify(value) ?? 'nothing';
  return text.length > SHOWN ? `${text.slice(0, SHOWN)}…` : text;
};

/** requestDifferences lists what differs between two rendered requests, field by field. */
export function requestDifferences(shadow: ShadowRequest, live: ShadowRequest): string[] {
  if ('error' in shadow || 'error' in live) {
    if ('error' in shadow && 'error' in live)
      return shadow.error === live.error
        ? []
        : [`both fail, differently: shadow ${show(shadow.error)}, live ${show(live.error)}`];
    return [
      'error' in shadow
        ? `the shadow rule fails to render: ${show(shadow.error)}`
        : `the live rule fails to render: ${show((live as { error: string }).error)}`,
    ];
  }
  const differences: string[] = [];
  if (shadow.method !== live.method) differences.push(`method ${shadow.method} instead of ${live.method}`);
  if (shadow.url !== live.url) differences.push(`url ${show(shadow.url)} instead of ${show(live.url)}`);
  for (const name of new Set([...Object.keys(shadow.headers), ...Object.keys(live.headers)])) {
    if (shadow.headers[name] !== live.headers[name])
      differences.push(`header ${name}: ${show(shadow.headers[name])} instead of ${show(live.headers[name])}`);
  }
  differences.push(...valueDifferences('body', shadow.body, live.body));
  return differences;
}

/** valueDifferences walks two JSON values and names each path where they differ (at most 10). */
function valueDifferences(path: string, a: unknown, b: unknown, found: string[] = []): string[] {
  if (found.length >= 10) return found;
  const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null;
  if (isObject(a) && isObject(b) && Array.isArray(a) === Array.isArray(b)) {
    for (const key of new Set([...Object.keys(a), ...Object.keys(b)]))
      valueDifferences(`${path}.${key}`, a[key], b[key], found);
    return found;
  }
  if (JSON.stringify(a) !== JSON.stringify(b)) found.push(`${path}: ${show(a)} instead of ${show(b)}`);
  return found;
}

export interface ShadowDifference {
  at: string;
  rule: string;
  event: string;
  differences: string[];
}

/** ShadowLedger keeps the last differences (bounded) and counts, for /status. */
export class ShadowLedger {
  private readonly last: ShadowDifference[] = [];
  private readonly counts = new Map<string, { evaluated: number; matched: number; differed: number }>();

  constructor(private readonly capacity = 50) {}

  record(outcome: ShadowOutcome, event: string): void {
    const count = this.counts.get(outcome.rule) ?? { evaluated: 0, matched: 0, differed: 0 };
    count.evaluated++;
    if (outcome.matched) count.matched++;
    if (outcome.differences.length > 0) {
      count.differed++;
      this.last.push({ at: new Date().toISOString(), rule: outcome.rule, event, differences: outcome.differences });
      if (this.last.length > this.capacity) this.last.shift();
    }
    this.counts.set(outcome.rule, count);
  }

  /**
   * status: per shadow rule in force, how often it was evaluated, matched and differed; the last differences, newest
   * first.
   */
  status(inForce: readonly CompiledRule[]): {
    rules: { rule: string; twin: boolean; evaluated: number; matched: number; differed: number }[];
    lastDifferences: ShadowDifference[];
  } {
    const shadows = inForce.filter((rule) => rule.shadow);
    for (const rule of [...this.counts.keys()]) if (!shadows.some((s) => s.name === rule)) this.counts.delete(rule);
    return {
      rules: shadows.map((rule) => ({
        rule: rule.name,
        twin: twinOf(rule, inForce) !== undefined,
        ...(this.counts.get(rule.name) ?? { evaluated: 0, matched: 0, differed: 0 }),
      })),
      lastDifferences: [...this.last].reverse(),
    };
  }
}
