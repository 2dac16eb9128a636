/**
 * The hot path, top to bottom: normalize → (resolve a reference) → match → enrich → render → deliver.
 * Every stage returns a value or a reason; a failing action is counted and reported and never stops
 * the others. The report tells the receiver how to answer the Broker.
 */
import type { CloudEvent } from 'cloudevents';
import type { Config } from './config.js';
import type { DeliveryResult } from './deliver/destination.js';
import type { DeliveredStore } from './deliver/delivered-store.js';
import type { Senders } from './deliver/kinds/registry.js';
import type { ThrottleStore } from './match/throttle.js';
import { GUARD_CODES, TemplateQuarantine } from './render/template-quarantine.js';
import type { Cluster } from './enrich/cluster.js';
import { LookupFailedError } from './enrich/lookup-failed.js';
import { ConfigurationError, TemplateError, TemplateQueueError, describeError } from './errors.js';
import { ENRICHMENT_FACTS, type LazyFacts } from './enrich/lazy-facts.js';
import { factsByScope, matchByScope } from './match/match-by-scope.js';
import { compileTenancyPolicy, type TenancyPolicy } from './rules/tenancy-policy.js';
import { renderAction } from './render/render-action.js';
import type { Logger } from './log.js';
import type { DeliveryOutcome, Metrics } from './metrics.js';
import type { EventInput, ObjectReference } from './normalize/kube-event.js';
import { fromObject, type Normalized } from './normalize/normalize.js';
import type { OccurrenceTracker } from './normalize/occurrence.js';
import { redacted, type RenderedRequest } from './render/render-request.js';
import { compareShadow, twinOf, type ShadowLedger, type ShadowOutcome, type ShadowRequest } from './match/shadow.js';
import { hideOwnSecrets } from './deliver/error-excerpt.js';
import { knownSecrets } from './redact.js';
import { explainConditions, type ConditionOutcome } from './match/explain.js';
import type { CompiledAction, CompiledRule } from './rules/compiled-rule.js';
import type { RuleSet } from './rules/rule-store.js';
import { NO_TRACE, type EventTrace } from './trace/event-trace.js';
import { createRegionPairing, type RegionOutcome } from './match/region-pairing.js';
import { createMemoryRegionStore, type RegionStore } from './store/region-store.js';
import { createDigestRecorder, type DigestReport } from './match/digest-recorder.js';
import { createMemoryDigestStore, type DigestStore } from './match/digest-store.js';

export interface ActionReport {
  rule: string;
  destination: string;
  /** `rendered`: a dry run built the request and sent nothing; `suppressed`: the rule's throttle held it back; region_*: src/match/region-pairing.ts; `grouped`: recorded in its digest group. */
  outcome: DeliveryOutcome | 'rendered' | 'suppressed' | RegionOutcome | 'grouped';
  /** A digest rule's action: the group the occurrence joined (dry runs: would join). */
  digest?: DigestReport;
  /** Dry runs: the request that would be sent, secrets redacted. */
  request?: ReturnType<typeof redacted>;
  status?: number;
  attempts?: number;
  error?: string;
  retryAfterMs?: number;
  /** Failed because this service could not do the work now (a template guard, quarantine): answered 503. */
  unavailable?: boolean;
}

/** `retry`: a lookup a rule (or Reference mode) needs failed; the event must be redelivered (503, or 429 + Retry-After). */
export type EventOutcome = 'matched' | 'no_match' | 'unresolved' | 'retry';

export interface EventReport {
  id: string;
  type: string;
  outcome: EventOutcome;
  change?: string;
  occurrence?: string;
  matched: string[];
  actions: ActionReport[];
  detail?: string;
  /** With outcome `retry`: when every failed lookup was rate limited, how long to wait. */
  retryAfterMs?: number;
  /** Dry runs: every rule evaluated for this event and the conditions that decided. */
  evaluated?: { rule: string; shadow?: boolean; matched: boolean; conditions: ConditionOutcome[] }[];
  /** Shadow rules that could match this event: their outcome beside their live twin's (never sent). */
  shadow?: ShadowOutcome[];
}

/** Template bindings beside the usual ones (a region's `$region`). */
type Bindings = Record<string, unknown>;

/** Why an action could not be rendered (see render). */
type RenderFailure = { outcome: 'error' | 'failed'; error: string; retryAfterMs?: number; unavailable?: boolean };

/** After a guard trip, ask the Broker to wait this long before redelivering (quarantine asks for its remaining time). */
const GUARD_RETRY_AFTER_MS = 1000;

export interface PipelineDeps {
  config: Config;
  rules: () => RuleSet;
  tracker: OccurrenceTracker;
  cluster: Cluster;
  /** Each destination kind's sender, its policies (bulkhead, breaker, retry) inside (createSenders). */
  senders: Senders;
  delivered: DeliveredStore;
  throttle: ThrottleStore;
  metrics: Metrics;
  log: Logger;
  env: Record<string, string | undefined>;
  /** What each scope's rules may read and send (default: compiled from config.tenancy). */
  tenancy?: TenancyPolicy;
  /** Where shadow rules' differences are kept for /status (none in dry-run pipelines). */
  shadow?: ShadowLedger;
  /** Open change regions (default: in memory). */
  regions?: RegionStore;
  /** The CLI's and the playground's dry runs: where their starts are recorded, so a start and its end in one run pair. */
  dryRunRegions?: RegionStore;
  /** Where digest rules record their occurrences (default: in memory). */
  digests?: DigestStore;
}

export interface ProcessOptions {
  /** Render and report, but send nothing and change no state (no metrics, no dedup memory). */
  dryRun?: boolean;
  /** The event's trace: spans per stage, and the traceparent its deliveries carry (default: none). */
  trace?: EventTrace;
}

/** An event resolved and matched, not yet throttled, rendered or delivered. */
export interface PreparedEvent {
  /** The matched rules' actions: what running it puts in flight. */
  actions: number;
  /** Of those, the actions of each team namespace's rules (each namespace has its own share). */
  teamActions?: ReadonlyMap<string, number>;
  /** run applies throttles, renders and delivers, and reports. */
  run(deadline: number): Promise<EventReport>;
}

/**
 * A Pipeline processes one event; `prepare` does the first half (resolve, match) so a receiver can count
 * a batch's actions before any of them starts (src/receive/action-capacity.ts).
 */
export type Pipeline = ((normalized: Normalized, ce: CloudEvent<unknown>, deadline: number, options?: ProcessOptions) => Promise<EventReport>) & {
  prepare(normalized: Normalized, ce: CloudEvent<unknown>, options?: ProcessOptions): Promise<PreparedEvent>;
};

/**
 * inScope keeps the rules that may see this event: cluster-wide rules always, a team's rules only for
 * events in the team's namespace about objects there. When the Event's own namespace and its involved
 * object's disagree (the API server refuses such Events; a forged one), no team sees it.
 */
function inScope(rules: CompiledRule[], input: EventInput): CompiledRule[] {
  if (rules.every((rule) => rule.scope === undefined)) return rules;
  const involved = (input.event.involvedObject as ObjectReference | undefined)?.namespace || undefined;
  const eventNamespace = ownNamespaceOf(input);
  const namespace = involved && eventNamespace && involved !== eventNamespace ? undefined : (involved ?? eventNamespace);
  return rules.filter((rule) => rule.scope === undefined || rule.scope === namespace);
}

/** ownNamespaceOf: the namespace the Event is recorded in (its metadata, else the CloudEvent's attribute). */
function ownNamespaceOf(input: EventInput): string | undefined {
  const own = (input.event.metadata as { namespace?: unknown } | undefined)?.namespace ?? input.cloudevent.namespace;
  return typeof own === 'string' && own !== '' ? own : undefined;
}

/** laneOf: destinations are per document, so the same name in two documents is two bulkhead lanes. */
function laneOf(rule: CompiledRule, action: CompiledAction): string {
  return `${rule.source}#${action.destination.name}`;
}

export function createPipeline(deps: PipelineDeps): Pipeline {
  const { metrics, log } = deps;
  const quarantine = new TemplateQuarantine();
  const tenancy = deps.tenancy ?? compileTenancyPolicy(deps.config.tenancy);
  const renderDeps = { config: deps.config, cluster: deps.cluster, tenancy, env: deps.env };
  const regions = createRegionPairing(deps.regions ?? createMemoryRegionStore(deps.config.regions), metrics, log, deps.dryRunRegions);
  const digests = createDigestRecorder({ store: deps.digests ?? createMemoryDigestStore(deps.config.dedupWindowMs), render: renderDeps, metrics, log, maxGroups: deps.config.digest.maxGroups });

  /** Deliveries running in this process by key: a second claim of the same key (a batch holding one event twice) waits for the first. */
  const inFlight = new Map<string, Promise<ActionReport>>();

  /** deliver: one action of a matched rule — skip if already delivered or being delivered, render, send, remember. */
  async function deliver(rule: CompiledRule, action: CompiledAction, input: EventInput, facts: LazyFacts, deadline: number, dryRun: boolean, trace: EventTrace, extra?: Bindings): Promise<ActionReport> {
    if (dryRun) return deliverOnce(rule, action, input, facts, deadline, '', true, trace, extra);
    // A delete is a notification of its own although it carries the occurrence (uid/count) the add or update had.
    const key = `${input.occurrence}|${input.change === 'delete' ? 'delete|' : ''}${rule.name}|${action.identity}`;
    const running = inFlight.get(key);
    if (running) {
      const first = await running;
      if (first.outcome === 'failed') {
        metrics.deliveries.inc({ rule: rule.name, destination: action.destination.name, outcome: 'failed' });
        return { ...first, error: `the same action of the same occurrence in this request failed: ${first.error ?? ''}`, attempts: 0 };
      }
      metrics.deliveries.inc({ rule: rule.name, destination: action.destination.name, outcome: 'skipped_duplicate' });
      return { rule: rule.name, destination: action.destination.name, outcome: 'skipped_duplicate' };
    }
    const delivery = deliverOnce(rule, action, input, facts, deadline, key, false, trace, extra);
    inFlight.set(key, delivery);
    try {
      return await delivery;
    } finally {
      inFlight.delete(key);
    }
  }

  async function deliverOnce(rule: CompiledRule, action: CompiledAction, input: EventInput, facts: LazyFacts, deadline: number, key: string, dryRun: boolean, trace: EventTrace, extra?: Bindings): Promise<ActionReport> {
    const destination = action.destination.name;
    const report = (outcome: ActionReport['outcome'], extra: Partial<ActionReport> = {}): ActionReport => {
      if (outcome !== 'rendered' && outcome !== 'suppressed' && !dryRun) metrics.deliveries.inc({ rule: rule.name, destination, outcome });
      return { rule: rule.name, destination, outcome, ...extra };
    };
    if (!dryRun && (await deps.delivered.has(key))) {
      log.info({ rule: rule.name, destination, occurrence: input.occurrence, ceId: input.cloudevent.id }, 'already delivered for this occurrence; skipped');
      return report('skipped_duplicate');
    }
    const rendering = trace.render(rule.name, destination);
    const rendered = await render(rule, action, input, facts, dryRun, deadline, extra);
    rendering.end('outcome' in rendered ? rendered.outcome : undefined);
    if ('outcome' in rendered) {
      const { outcome, ...extra } = rendered;
      return report(outcome, extra);
    }
    if (dryRun) return report('rendered', { request: redacted(rendered) });
    const result = await send(rule, action, input, rendered, deadline, trace);
    if (result.outcome !== 'failed') await deps.delivered.add(key);
    return report(result.outcome, { status: result.status, attempts: result.attempts, error: result.error, retryAfterMs: result.retryAfterMs });
  }

  /**
   * render builds the request, or says why it cannot be built: `error` when retrying cannot change it (a type
   * error, no value, a bad configuration); `failed` when it may pass later — a Kubernetes lookup or Secret read that failed, a guard
   * trip (time, heap, size: they depend on load and on the limits set) or quarantine, so the Broker redelivers
   * and in the end dead-letters the event instead of it being acknowledged unsent.
   */
  async function render(rule: CompiledRule, action: CompiledAction, input: EventInput, facts: LazyFacts, dryRun: boolean, deadline?: number, extra?: Bindings): Promise<RenderedRequest | RenderFailure> {
    const destination = action.destination.name;
    const held = quarantine.quarantinedUntil(rule.name);
    if (held !== undefined) {
      const error = `rule ${rule.name}: templates quarantined until ${new Date(held).toISOString()} after repeated guard trips (time, depth, size or memory)`;
      return { outcome: 'failed', error, retryAfterMs: held - Date.now(), unavailable: true };
    }
    try {
      const bindings: Record<string, unknown> = {
        cloudevent: input.cloudevent,
        rule: { name: rule.declaredName, description: rule.description },
        occurrence: input.occurrence,
        change: input.change,
      };
      if (extra) Object.assign(bindings, extra);
      for (const fact of ENRICHMENT_FACTS) bindings[fact] = action.uses.has(fact) ? await facts[fact]() : null;
      return await renderAction(renderDeps, rule, action, input.event, bindings, ownNamespaceOf(input), deadline);
    } catch (err) {
      const error = knownSecrets.redact(`${err instanceof TemplateError ? `rule ${rule.name} action ${action.index} body: ` : ''}${describeError(err)}`);
      const guard = err instanceof TemplateError && GUARD_CODES.has(err.code ?? '');
      // Template and configuration errors are permanent; a guard trip or anything else (an API outage reading a Secret) may pass.
      const permanent = !guard && (err instanceof TemplateError || err instanceof ConfigurationError);
      if (!dryRun) {
        if (err instanceof TemplateError) metrics.templateErrors.inc({ rule: rule.name });
        if (guard && quarantine.trip(rule.name)) {
          metrics.templateQuarantines.inc({ rule: rule.name });
          log.error({ rule: rule.name }, 'template keeps hitting its guards; rule quarantined for 60 s so other events keep their latency');
        }
        log.error({ rule: rule.name, destination, occurrence: input.occurrence, ceId: input.cloudevent.id, error }, permanent ? 'action not rendered' : 'action not rendered; the Broker will redeliver');
      }
      if (permanent) return { outcome: 'error', error };
      if (!guard) return { outcome: 'failed', error, retryAfterMs: err instanceof LookupFailedError || err instanceof TemplateQueueError ? err.retryAfterMs : undefined };
      const held = quarantine.quarantinedUntil(rule.name);
      return { outcome: 'failed', error, retryAfterMs: held === undefined ? GUARD_RETRY_AFTER_MS : held - Date.now(), unavailable: true };
    }
  }

  /**
   * runShadows compares each shadow rule that could match this event with its live twin (src/match/shadow.ts):
   * rendered as a dry run, never sent; counted, logged and kept unless this is itself a dry run.
   */
  async function runShadows(candidates: CompiledRule[], rules: readonly CompiledRule[], matched: ReadonlySet<CompiledRule>, input: EventInput, facts: (scope: string | undefined) => LazyFacts, dryRun: boolean, ceId: string): Promise<ShadowOutcome[]> {
    const renderAll = (rule: CompiledRule) =>
      Promise.all(
        rule.actions.map(async (action): Promise<ShadowRequest> => {
          const rendered = await render(rule, action, input, facts(rule.scope), true);
          return 'outcome' in rendered ? { error: rendered.error } : redacted(rendered);
        }),
      );
    return Promise.all(
      candidates
        .filter((rule) => rule.shadow)
        .map(async (rule) => {
          const { kinds, ...outcome } = await compareShadow(rule, twinOf(rule, rules), matched, renderAll);
          if (!dryRun) {
            if (outcome.matched) metrics.shadowMatches.inc({ rule: rule.name });
            for (const kind of kinds) metrics.shadowDifferences.inc({ rule: rule.name, kind });
            deps.shadow?.record(outcome, ceId);
            if (outcome.differences.length > 0) log.info({ rule: rule.name, ceId, live: outcome.live, differences: outcome.differences }, 'shadow rule differs from its live rule');
          }
          return outcome;
        }),
    );
  }

  /** send delivers with the destination kind's sender (its policies may refuse at once: lane full, breaker open). */
  async function send(rule: CompiledRule, action: CompiledAction, input: EventInput, request: RenderedRequest, deadline: number, trace: EventTrace): Promise<DeliveryResult> {
    const destination = action.destination.name;
    const started = performance.now();
    const delivering = trace.deliver(rule.name, destination);
    let result = await deps.senders[action.destination.kind].send(request, {
      timeoutMs: action.destination.timeoutMs ?? deps.config.deliveryTimeoutMs,
      deadline,
      destination,
      lane: laneOf(rule, action),
      context: { rule: rule.name, ceId: input.cloudevent.id, occurrence: input.occurrence },
      trace: delivering.headers,
    });
    delivering.end(result);
    // A destination may echo what it was sent (the Authorization header, a secret URL path) in its error body.
    if (result.error) result = { ...result, error: knownSecrets.redact(hideOwnSecrets(result.error, request)) };
    metrics.deliveryDuration.observe({ destination }, (performance.now() - started) / 1000);
    const fields = { rule: rule.name, destination, occurrence: input.occurrence, ceId: input.cloudevent.id, status: result.status, attempts: result.attempts };
    if (result.outcome === 'failed') log.warn({ ...fields, error: result.error }, 'delivery failed; the Broker will redeliver');
    else if (result.outcome === 'rejected') log.error({ ...fields, error: result.error }, 'delivery rejected by the destination; not retried');
    else log.info(fields, 'delivered');
    return result;
  }

  /** admitted applies the rule's throttle to this occurrence; a failing key admits (never lose silently). */
  async function admitted(rule: CompiledRule, throttle: NonNullable<CompiledRule['throttle']>, input: EventInput, dryRun: boolean): Promise<boolean> {
    let key: string;
    try {
      key = JSON.stringify(await throttle.key.evaluate(input.event, { cloudevent: input.cloudevent, occurrence: input.occurrence }));
    } catch (err) {
      if (!dryRun) {
        metrics.templateErrors.inc({ rule: rule.name });
        log.error({ rule: rule.name, ceId: input.cloudevent.id, error: `throttle key: ${describeError(err)}` }, 'throttle key failed; not throttled');
      }
      return true;
    }
    const ok = await deps.throttle.admit(`${rule.name}|${key}`, input.occurrence, throttle.windowMs, throttle.max, dryRun);
    if (!ok && !dryRun) {
      metrics.suppressed.inc({ rule: rule.name });
      log.info({ rule: rule.name, key, occurrence: input.occurrence, ceId: input.cloudevent.id }, 'suppressed by the rule\'s throttle');
    }
    return ok;
  }

  async function resolve(normalized: Normalized, ce: CloudEvent<unknown>): Promise<EventInput | { unresolved: string } | { retry: string; retryAfterMs?: number }> {
    if (normalized.kind === 'input') return normalized.input;
    const lookup = await deps.cluster.get({ ...normalized.ref, kind: normalized.ref.kind ?? 'Event' });
    if (lookup.status === 'found') return fromObject(lookup.object, normalized.verb, ce.id, normalized.cloudevent, deps.tracker);
    const ref = `${normalized.ref.namespace ?? ''}/${normalized.ref.name}`;
    if (lookup.status === 'retry') return { retry: `Event ${ref} could not be read: ${lookup.reason}`, retryAfterMs: lookup.retryAfterMs };
    return { unresolved: lookup.status === 'not_found' ? `Event ${ref} no longer exists` : `Event ${ref} not resolved: ${lookup.reason}` };
  }

  /** unreadable: the rules that could not be decided because a lookup they need failed (not a 404). */
  function unreadable(failed: { rule: CompiledRule; cause: unknown }[]): { detail: string; retryAfterMs?: number } | undefined {
    const lookups = failed.filter((f): f is { rule: CompiledRule; cause: LookupFailedError } => f.cause instanceof LookupFailedError);
    if (lookups.length === 0) return undefined;
    const waits = lookups.map((f) => f.cause.retryAfterMs);
    return {
      detail: lookups.map((f) => `rule ${f.rule.name} not decided: ${f.cause.message}`).join('; '),
      retryAfterMs: waits.every((w) => w !== undefined) ? Math.max(...waits) : undefined,
    };
  }

  async function prepare(normalized: Normalized, ce: CloudEvent<unknown>, { dryRun = false, trace = NO_TRACE }: ProcessOptions = {}): Promise<PreparedEvent> {
    const base = { id: ce.id, type: ce.type, matched: [] as string[], actions: [] as ActionReport[] };
    const input = await resolve(normalized, ce);
    if ('retry' in input) {
      if (!dryRun) log.warn({ ceId: ce.id, type: ce.type, detail: input.retry }, 'reference not resolved now; the Broker will redeliver');
      const report: EventReport = { ...base, outcome: 'retry', detail: input.retry, retryAfterMs: input.retryAfterMs };
      return { actions: 0, run: async () => report };
    }
    if ('unresolved' in input) {
      if (!dryRun) log.info({ ceId: ce.id, type: ce.type, detail: input.unresolved }, 'reference not resolved');
      const report: EventReport = { ...base, outcome: 'unresolved', detail: input.unresolved };
      return { actions: 0, run: async () => report };
    }
    const facts = factsByScope(deps.cluster, input, tenancy.teamClusterKinds);
    const ruleSet = deps.rules();
    const candidates = inScope(ruleSet.index.candidates(input), input);
    const matching = trace.match();
    const { matched: matchedAll, failed, evaluated } = await matchByScope(candidates, input, facts, { explain: dryRun });
    const matched = matchedAll.filter((rule) => !rule.shadow); // shadow rules never send
    matching.end(matched);
    for (const { rule, error, cause } of failed) {
      if (cause instanceof LookupFailedError) log.warn({ rule: rule.name, ceId: ce.id, error }, 'rule not decided: a lookup it needs failed; the Broker will redeliver');
      else log.error({ rule: rule.name, ceId: ce.id, error }, 'rule evaluation failed');
    }
    const run = async (deadline: number): Promise<EventReport> => {
      if (!dryRun) for (const rule of matched) metrics.ruleMatches.inc({ rule: rule.name });
      const actions = (
        await Promise.all(
          matched.map(async (rule) => {
            if (rule.region)
              return regions.occurrence(rule, input, facts(rule.scope), deadline, dryRun, (region) =>
                Promise.all(rule.actions.map((action) => deliver(rule, action, input, facts(rule.scope), deadline, dryRun, trace, { region }))),
              );
            if (rule.digest) return digests.record(rule, rule.digest, input, facts(rule.scope), dryRun);
            if (rule.throttle && !(await admitted(rule, rule.throttle, input, dryRun))) {
              return rule.actions.map((action): ActionReport => ({ rule: rule.name, destination: action.destination.name, outcome: 'suppressed' }));
            }
            return Promise.all(rule.actions.map((action) => deliver(rule, action, input, facts(rule.scope), deadline, dryRun, trace)));
          }),
        )
      ).flat();
      const retry = unreadable(failed);
      const outcome: EventOutcome = retry ? 'retry' : matched.length > 0 ? 'matched' : 'no_match';
      const report: EventReport = { ...base, outcome, change: input.change, occurrence: input.occurrence, matched: matched.map((r) => r.name), actions, ...retry };
      if (dryRun) report.evaluated = evaluated.map((e) => ({ rule: e.rule.name, ...(e.rule.shadow ? { shadow: true } : {}), matched: e.matched, conditions: explainConditions(e.conditions) }));
      if (candidates.some((rule) => rule.shadow)) report.shadow = await runShadows(candidates, ruleSet.rules, new Set(matchedAll), input, facts, dryRun, ce.id);
      return report;
    };
    const teamActions = new Map<string, number>();
    for (const rule of matched) if (rule.scope !== undefined) teamActions.set(rule.scope, (teamActions.get(rule.scope) ?? 0) + rule.actions.length);
    return { actions: matched.reduce((sum, rule) => sum + rule.actions.length, 0), teamActions, run };
  }

  return Object.assign(
    async function process(normalized: Normalized, ce: CloudEvent<unknown>, deadline: number, options?: ProcessOptions) {
      return (await prepare(normalized, ce, options)).run(deadline);
    },
    { prepare },
  );
}
