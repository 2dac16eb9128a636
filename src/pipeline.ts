/**
 * The hot path, top to bottom, for every caller (POST /, the standalone watch, POST /dry-run, the CLI's
 * `test` and the playground): CloudEvents of one request → normalize → resolve a reference → match →
 * throttle → per action: claim → render → send → remember → report.
 *
 * A dry run is this same pipeline over dependencies that send and remember nothing (dryRunDeps): no flag.
 * Every stage returns a value or a reason; a failing action is counted and reported and never stops the
 * others. The reports tell the receiver how to answer the Broker.
 */
import type { CloudEvent } from 'cloudevents';
import type { Config } from './config.js';
import type { DeliveredStore } from './deliver/delivered-store.js';
import type { DeliveryOutcome, Metrics } from './metrics.js';
import type { Senders } from './deliver/kinds/registry.js';
import { logDelivery, sendRequest } from './deliver/send-action.js';
import type { Cluster } from './enrich/cluster.js';
import type { LazyFacts } from './enrich/lazy-facts.js';
import { LookupFailedError } from './enrich/lookup-failed.js';
import { InvalidEventError, describeError } from './errors.js';
import type { Logger } from './log.js';
import { explainConditions, type ConditionOutcome } from './match/explain.js';
import { inScope } from './match/in-scope.js';
import { factsByScope, matchByScope } from './match/match-by-scope.js';
import { compareShadow, twinOf, type ShadowLedger, type ShadowOutcome, type ShadowRequest } from './match/shadow.js';
import type { ThrottleStore } from './match/throttle.js';
import type { EventInput } from './normalize/kube-event.js';
import { fromObject, normalize, type Normalized } from './normalize/normalize.js';
import type { Occurrences } from './normalize/occurrence.js';
import { renderAction, renderFailure, type RenderFailure } from './render/render-action.js';
import { ENRICHMENT_FACTS } from './enrich/lazy-facts.js';
import { ownNamespaceOf } from './match/in-scope.js';
import { redacted } from './render/render-request.js';
import type { RenderedRequest } from './render/rendered-request.js';
import { TemplateQuarantine } from './render/template-quarantine.js';
import type { CompiledAction, CompiledRule } from './rules/compiled-rule.js';
import type { RuleSet } from './rules/rule-store.js';
import { NO_TRACE, type EventTrace } from './trace/event-trace.js';
import { createRegionPairing, type RegionOutcome } from './match/region-pairing.js';
import { createMemoryRegionStore, type RegionStore } from './store/region-store.js';
import { createDigestRecorder, type DigestReport } from './match/digest-recorder.js';
import { createMemoryDigestStore, type DigestStore } from './match/digest-store.js';
import { compileTenancyPolicy, type TenancyPolicy } from './rules/tenancy-policy.js';

export interface ActionReport {
  rule: string;
  destination: string;
  /**
   * `rendered`: a dry run built the request and sent nothing; `suppressed`: the rule's throttle held it back; region_*:
   * src/match/region-pairing.ts; `grouped`: recorded in its digest group.
   */
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

/**
 * `retry`: a lookup a rule (or Reference mode) needs failed; the event must be redelivered (503, or 429 + Retry-After).
 */
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

/** What a template quarantine must answer; a dry run's view trips nothing. */
export type Quarantine = Pick<TemplateQuarantine, 'quarantinedUntil' | 'trip'>;

export interface PipelineDeps {
  config: Config;
  rules: () => RuleSet;
  /** Classifies each Event's change (and remembers it, unless this is a dry run's read-only view). */
  tracker: Occurrences;
  cluster: Cluster;
  /**
   * Each destination kind's sender, its policies (bulkhead, breaker, retry) inside (createSenders); a dry run's only
   * show.
   */
  senders: Senders;
  delivered: DeliveredStore;
  throttle: ThrottleStore;
  metrics: Metrics;
  log: Logger;
  env: Record<string, string | undefined>;
  /** What each scope's rules may read and send (default: compiled from config.tenancy). */
  tenancy?: TenancyPolicy;
  /** Where shadow rules' differences are kept for /status (none in dry runs). */
  shadow?: ShadowLedger;
  /** Rules whose templates keep hitting their guards (default: a new one). */
  quarantine?: Quarantine;
  /** Open change regions (default: in memory). */
  regions?: RegionStore;
  /** Where digest rules record their occurrences (default: in memory). */
  digests?: DigestStore;
  /** Report every rule evaluated and the conditions that decided (dry runs). */
  explain?: boolean;
}

/** One request's events resolved and matched, not yet throttled, rendered or delivered. */
export interface PreparedRequest {
  /** The matched rules' actions: what running it puts in flight. */
  actions: number;
  /** Of those, the actions of each team namespace's rules (each namespace has its own share). */
  teamActions: ReadonlyMap<string, number>;
  /** run applies throttles, renders and delivers, and reports each event. */
  run(deadline: number): Promise<EventReport[]>;
}

export interface Pipeline {
  /**
   * prepare normalizes the request's events — the whole batch is checked before anything is remembered, and an
   * InvalidEventError (4xx) names the bad entry — then resolves and matches each, so a receiver can count the
   * actions before any starts (src/receive/action-capacity.ts). `traces` (one per event, default none) get a span
   * per stage and the traceparent each delivery carries.
   */
  prepare(events: readonly CloudEvent<unknown>[], traces?: readonly EventTrace[]): Promise<PreparedRequest>;
  /** process: prepare and run. */
  process(
    events: readonly CloudEvent<unknown>[],
    deadline: number,
    traces?: readonly EventTrace[],
  ): Promise<EventReport[]>;
}

/** Template bindings beside the usual ones (a region's `$region`). */
type Bindings = Record<string, unknown>;

/**
 * After a guard trip, ask the Broker to wait this long before redelivering (quarantine asks for its remaining time).
 */
const GUARD_RETRY_AFTER_MS = 1000;

const inArray = <T>(item: T): T[] => [item];

/**
 * allDone: Promise.all that settles only once every promise has. When one delivery throws, the others of the request
 * keep running, and the request holds its share of MAX_ACTIONS_IN_FLIGHT until they are done (then the first error).
 */
function allDone<T>(promises: Promise<T>[]): Promise<T[]> {
  const all = Promise.all(promises);
  if (promises.length < 2) return all;
  return all.catch(async (err: unknown) => {
    await Promise.allSettled(promises);
    throw err;
  });
}

const NOTHING_PREPARED: Omit<PreparedRequest, 'run'> = { actions: 0, teamActions: new Map<string, number>() };

export function createPipeline(deps: PipelineDeps): Pipeline {
  const { metrics, log, tracker } = deps;
  const tenancy = deps.tenancy ?? compileTenancyPolicy(deps.config.tenancy);
  const quarantine = deps.quarantine ?? new TemplateQuarantine();
  const regions = createRegionPairing(deps.regions ?? createMemoryRegionStore(deps.config.regions), metrics, log);
  const renderDeps = { config: deps.config, cluster: deps.cluster, env: deps.env, tenancy };
  const digests = createDigestRecorder({
    store: deps.digests ?? createMemoryDigestStore(deps.config.dedupWindowMs),
    render: renderDeps,
    metrics,
    log,
    maxGroups: deps.config.digest.maxGroups,
  });
  /**
   * Deliveries running in this process by key: a second claim of the same key (a batch holding one event twice) waits
   * for the first.
   */
  const inFlight = new Map<string, Promise<ActionReport>>();

  /** normalizeAll: a batch is checked whole (remembering nothing) before its events are remembered one by one. */
  function normalizeAll(events: readonly CloudEvent<unknown>[]): Normalized[] {
    const entry = (run: (ce: CloudEvent<unknown>) => Normalized) => (ce: CloudEvent<unknown>, i: number) => {
      try {
        return run(ce);
      } catch (err) {
        if (err instanceof InvalidEventError && events.length > 1)
          throw new InvalidEventError(err.status, err.error, `batch entry ${i}: ${err.detail}`);
        throw err;
      }
    };
    // One event needs no dry pass: normalize throws before it remembers.
    if (events.length > 1) {
      const view = tracker.readOnly();
      events.forEach(entry((ce) => normalize(ce, view)));
    }
    return events.map(entry((ce) => normalize(ce, tracker)));
  }

  async function prepare(
    events: readonly CloudEvent<unknown>[],
    traces?: readonly EventTrace[],
  ): Promise<PreparedRequest> {
    const normalized = normalizeAll(events);
    if (events.length === 1) {
      // Nearly every request: one event, no arrays of promises.
      const event = await prepareEvent(normalized[0], events[0], traces?.[0] ?? NO_TRACE);
      return {
        actions: event.actions,
        teamActions: event.teamActions,
        run: (deadline) => event.run(deadline).then(inArray),
      };
    }
    const prepared = await Promise.all(events.map((ce, i) => prepareEvent(normalized[i], ce, traces?.[i] ?? NO_TRACE)));
    const teamActions = new Map<string, number>();
    for (const event of prepared)
      for (const [namespace, count] of event.teamActions)
        teamActions.set(namespace, (teamActions.get(namespace) ?? 0) + count);
    return {
      actions: prepared.reduce((sum, event) => sum + event.actions, 0),
      teamActions,
      run: (deadline) => allDone(prepared.map((event) => event.run(deadline))),
    };
  }

  /** prepareEvent resolves (Reference mode) and matches one event; its run does the rest. */
  async function prepareEvent(
    normalized: Normalized,
    ce: CloudEvent<unknown>,
    trace: EventTrace,
  ): Promise<Omit<PreparedRequest, 'run'> & { run(deadline: number): Promise<EventReport> }> {
    const base = { id: ce.id, type: ce.type, matched: [] as string[], actions: [] as ActionReport[] };
    const input = normalized.kind === 'input' ? normalized.input : await resolve(normalized, ce);
    if ('retry' in input) {
      log.warn(
        { ceId: ce.id, type: ce.type, detail: input.retry },
        'reference not resolved now; the Broker will redeliver',
      );
      const report: EventReport = { ...base, outcome: 'retry', detail: input.retry, retryAfterMs: input.retryAfterMs };
      return { ...NOTHING_PREPARED, run: async () => report };
    }
    if ('unresolved' in input) {
      log.info({ ceId: ce.id, type: ce.type, detail: input.unresolved }, 'reference not resolved');
      const report: EventReport = { ...base, outcome: 'unresolved', detail: input.unresolved };
      return { ...NOTHING_PREPARED, run: async () => report };
    }
    const facts = factsByScope(deps.cluster, input, tenancy.teamClusterKinds);
    const ruleSet = deps.rules();
    const candidates = inScope(ruleSet.index.candidates(input), input);
    const matching = trace.match();
    const {
      matched: matchedAll,
      failed,
      evaluated,
    } = await matchByScope(candidates, input, facts, { explain: deps.explain === true });
    const matched = matchedAll.filter((rule) => !rule.shadow); // shadow rules never send
    matching.end(matched);
    for (const { rule, error, cause } of failed) {
      if (cause instanceof LookupFailedError)
        log.warn(
          { rule: rule.name, ceId: ce.id, error },
          'rule not decided: a lookup it needs failed; the Broker will redeliver',
        );
      else log.error({ rule: rule.name, ceId: ce.id, error }, 'rule evaluation failed');
    }
    const run = async (deadline: number): Promise<EventReport> => {
      for (const rule of matched) metrics.ruleMatches.inc({ rule: rule.name });
      const perRule = await allDone(matched.map((rule) => runRule(rule, input, facts(rule.scope), deadline, trace)));
      const retry = unreadable(failed);
      const outcome: EventOutcome = retry ? 'retry' : matched.length > 0 ? 'matched' : 'no_match';
      const report: EventReport = {
        ...base,
        outcome,
        change: input.change,
        occurrence: input.occurrence,
        matched: matched.map((r) => r.name),
        actions: perRule.flat(),
        ...retry,
      };
      if (deps.explain)
        report.evaluated = evaluated.map((e) => ({
          rule: e.rule.name,
          ...(e.rule.shadow ? { shadow: true } : {}),
          matched: e.matched,
          conditions: explainConditions(e.conditions),
        }));
      if (candidates.some((rule) => rule.shadow))
        report.shadow = await runShadows(candidates, ruleSet.rules, new Set(matchedAll), input, facts, ce.id);
      return report;
    };
    let actions = 0;
    let teamActions: Map<string, number> | undefined;
    for (const rule of matched) {
      actions += rule.actions.length;
      if (rule.scope !== undefined)
        (teamActions ??= new Map()).set(rule.scope, (teamActions.get(rule.scope) ?? 0) + rule.actions.length);
    }
    return { actions, teamActions: teamActions ?? NOTHING_PREPARED.teamActions, run };
  }

  /** resolve reads the Event a Reference-mode CloudEvent names (an event that carries its object needs none). */
  async function resolve(
    normalized: Extract<Normalized, { kind: 'reference' }>,
    ce: CloudEvent<unknown>,
  ): Promise<EventInput | { unresolved: string } | { retry: string; retryAfterMs?: number }> {
    const lookup = await deps.cluster.get({ ...normalized.ref, kind: normalized.ref.kind ?? 'Event' });
    if (lookup.status === 'found')
      return fromObject(lookup.object, normalized.verb, ce.id, normalized.cloudevent, tracker);
    const ref = `${normalized.ref.namespace ?? ''}/${normalized.ref.name}`;
    if (lookup.status === 'retry')
      return { retry: `Event ${ref} could not be read: ${lookup.reason}`, retryAfterMs: lookup.retryAfterMs };
    return {
      unresolved:
        lookup.status === 'not_found' ? `Event ${ref} no longer exists` : `Event ${ref} not resolved: ${lookup.reason}`,
    };
  }

  /**
   * runRule pairs a region rule's start with its end, records a digest rule's occurrence in its group, or applies the
   * rule's throttle and delivers each of its actions. Not async, like deliver: a delivery waiting on the network holds
   * one frame per layer, and the frames that outlive a young-generation collection are what the collector copies.
   * Neither may throw synchronously (a throw would orphan the promises of the rules before it): all they call is async.
   */
  function runRule(
    rule: CompiledRule,
    input: EventInput,
    facts: LazyFacts,
    deadline: number,
    trace: EventTrace,
  ): Promise<ActionReport | ActionReport[]> {
    if (rule.region) {
      return regions.occurrence(rule, input, facts, deadline, (region) =>
        allDone(rule.actions.map((action) => deliver(rule, action, input, facts, deadline, trace, { region }))),
      );
    }
    if (rule.digest) return digests.record(rule, rule.digest, input, facts);
    if (rule.throttle) return runThrottled(rule, rule.throttle, input, facts, deadline, trace);
    return deliverAll(rule, input, facts, deadline, trace);
  }

  function deliverAll(
    rule: CompiledRule,
    input: EventInput,
    facts: LazyFacts,
    deadline: number,
    trace: EventTrace,
  ): Promise<ActionReport | ActionReport[]> {
    if (rule.actions.length === 1) return deliver(rule, rule.actions[0], input, facts, deadline, trace);
    return allDone(rule.actions.map((action) => deliver(rule, action, input, facts, deadline, trace)));
  }

  async function runThrottled(
    rule: CompiledRule,
    throttle: NonNullable<CompiledRule['throttle']>,
    input: EventInput,
    facts: LazyFacts,
    deadline: number,
    trace: EventTrace,
  ): Promise<ActionReport | ActionReport[]> {
    if (await admitted(rule, throttle, input)) return deliverAll(rule, input, facts, deadline, trace);
    return rule.actions.map((action): ActionReport => ({
      rule: rule.name,
      destination: action.destination.name,
      outcome: 'suppressed',
    }));
  }

  /** admitted applies the rule's throttle to this occurrence; a failing key admits (never lose silently). */
  async function admitted(
    rule: CompiledRule,
    throttle: NonNullable<CompiledRule['throttle']>,
    input: EventInput,
  ): Promise<boolean> {
    let key: string;
    try {
      key = JSON.stringify(
        await throttle.key.evaluate(input.event, { cloudevent: input.cloudevent, occurrence: input.occurrence }),
      );
    } catch (err) {
      metrics.templateErrors.inc({ rule: rule.name });
      log.error(
        { rule: rule.name, ceId: input.cloudevent.id, error: `throttle key: ${describeError(err)}` },
        'throttle key failed; not throttled',
      );
      return true;
    }
    const ok = await deps.throttle.admit(`${rule.name}|${key}`, input.occurrence, throttle.windowMs, throttle.max);
    if (!ok) {
      metrics.suppressed.inc({ rule: rule.name });
      log.info(
        { rule: rule.name, key, occurrence: input.occurrence, ceId: input.cloudevent.id },
        "suppressed by the rule's throttle",
      );
    }
    return ok;
  }

  /**
   * deliver: one action of a matched rule — claim it (a second claim of the same key in this process waits for
   * the first), skip it if already delivered, render, send, remember, report.
   */
  function deliver(
    rule: CompiledRule,
    action: CompiledAction,
    input: EventInput,
    facts: LazyFacts,
    deadline: number,
    trace: EventTrace,
    extra?: Bindings,
  ): Promise<ActionReport> {
    // A delete is a notification of its own although it carries the occurrence (uid/count) the add or update had.
    const key = `${input.occurrence}|${input.change === 'delete' ? 'delete|' : ''}${rule.name}|${action.identity}`;
    const running = inFlight.get(key);
    if (running) return running.then((first) => sameClaim(rule, action, first));
    const delivery = deliverOnce(rule, action, input, facts, deadline, key, trace, extra);
    inFlight.set(key, delivery);
    const unclaim = () => inFlight.delete(key);
    delivery.then(unclaim, unclaim);
    return delivery;
  }

  /** sameClaim reports an action whose key was being delivered by this request already. */
  function sameClaim(rule: CompiledRule, action: CompiledAction, first: ActionReport): ActionReport {
    const destination = action.destination.name;
    if (first.outcome === 'failed') {
      metrics.deliveries.inc({ rule: rule.name, destination, outcome: 'failed' });
      return {
        ...first,
        error: `the same action of the same occurrence in this request failed: ${first.error ?? ''}`,
        attempts: 0,
      };
    }
    if (first.outcome === 'rendered') return first;
    metrics.deliveries.inc({ rule: rule.name, destination, outcome: 'skipped_duplicate' });
    return { rule: rule.name, destination, outcome: 'skipped_duplicate' };
  }

  /**
   * deliverOnce: skip the action if it was delivered, else render it and hand it to send — without waiting for the
   * send here: a frame alive while the destination answers is copied by every young-generation collection.
   */
  async function deliverOnce(
    rule: CompiledRule,
    action: CompiledAction,
    input: EventInput,
    facts: LazyFacts,
    deadline: number,
    key: string,
    trace: EventTrace,
    extra?: Bindings,
  ): Promise<ActionReport> {
    const destination = action.destination.name;
    if (await deps.delivered.has(key)) {
      log.info(
        { rule: rule.name, destination, occurrence: input.occurrence, ceId: input.cloudevent.id },
        'already delivered for this occurrence; skipped',
      );
      return counted(rule, action, { rule: rule.name, destination, outcome: 'skipped_duplicate' });
    }
    const rendering = trace.render(rule.name, destination);
    const rendered = await render(rule, action, input, facts, deadline, extra);
    rendering.end('outcome' in rendered ? rendered.outcome : undefined);
    if ('outcome' in rendered) return notRendered(rule, action, rendered);
    return send(rule, action, input, rendered, deadline, key, trace);
  }

  /** send: one rendered action to its destination, remembered once delivered or rejected, and reported. */
  async function send(
    rule: CompiledRule,
    action: CompiledAction,
    input: EventInput,
    rendered: RenderedRequest,
    deadline: number,
    key: string,
    trace: EventTrace,
  ): Promise<ActionReport> {
    const destination = action.destination.name;
    const delivering = trace.deliver(rule.name, destination);
    const context = { rule: rule.name, ceId: input.cloudevent.id, occurrence: input.occurrence };
    const result = await sendRequest(deps, rule, action, rendered, deadline, context, delivering.headers);
    logDelivery(log, rule, action, input, result);
    delivering.end(result);
    // A dry run's sender only shows what would be sent.
    if (result.outcome === 'rendered')
      return { rule: rule.name, destination, outcome: 'rendered', request: redacted(rendered) };
    if (result.outcome !== 'failed') await deps.delivered.add(key);
    return counted(rule, action, {
      rule: rule.name,
      destination,
      outcome: result.outcome,
      status: result.status,
      attempts: result.attempts,
      error: result.error,
      retryAfterMs: result.retryAfterMs,
    });
  }

  function notRendered(rule: CompiledRule, action: CompiledAction, rendered: RenderFailure): ActionReport {
    const { outcome, error, retryAfterMs, guard, unavailable } = rendered;
    return counted(rule, action, {
      rule: rule.name,
      destination: action.destination.name,
      outcome,
      error,
      ...(retryAfterMs !== undefined ? { retryAfterMs } : {}),
      ...(guard || unavailable ? { unavailable: true } : {}),
    });
  }

  function counted(
    rule: CompiledRule,
    action: CompiledAction,
    report: ActionReport & { outcome: DeliveryOutcome },
  ): ActionReport {
    metrics.deliveries.inc({ rule: rule.name, destination: action.destination.name, outcome: report.outcome });
    return report;
  }

  /**
   * render builds the request unless the rule is quarantined; a failure is counted and logged, and a guard trip
   * counts towards quarantine — so the Broker redelivers, and in the end dead-letters, instead of the event
   * being acknowledged unsent.
   */
  async function render(
    rule: CompiledRule,
    action: CompiledAction,
    input: EventInput,
    facts: LazyFacts,
    deadline: number,
    extra?: Bindings,
  ): Promise<RenderedRequest | RenderFailure> {
    const held = quarantine.quarantinedUntil(rule.name);
    if (held !== undefined) {
      const error = `rule ${rule.name}: templates quarantined until ${new Date(held).toISOString()} after repeated guard trips (time, depth, size or memory)`;
      return { outcome: 'failed', error, retryAfterMs: held - Date.now(), guard: true };
    }
    const rendered = await renderQuietly(rule, action, input, facts, deadline, extra);
    if (!('outcome' in rendered)) return rendered;
    if (rendered.template) metrics.templateErrors.inc({ rule: rule.name });
    if (rendered.guard && quarantine.trip(rule.name)) {
      metrics.templateQuarantines.inc({ rule: rule.name });
      log.error(
        { rule: rule.name },
        'template keeps hitting its guards; rule quarantined for 60 s so other events keep their latency',
      );
    }
    const fields = {
      rule: rule.name,
      destination: action.destination.name,
      occurrence: input.occurrence,
      ceId: input.cloudevent.id,
      error: rendered.error,
    };
    log.error(
      fields,
      rendered.outcome === 'error' ? 'action not rendered' : 'action not rendered; the Broker will redeliver',
    );
    if (!rendered.guard) return rendered;
    const until = quarantine.quarantinedUntil(rule.name);
    return { ...rendered, retryAfterMs: until === undefined ? GUARD_RETRY_AFTER_MS : until - Date.now() };
  }

  /** renderQuietly: the request with the event's bindings (enriched as the action's templates need), or why not. */
  async function renderQuietly(
    rule: CompiledRule,
    action: CompiledAction,
    input: EventInput,
    facts: LazyFacts,
    deadline?: number,
    extra?: Bindings,
  ): Promise<RenderedRequest | RenderFailure> {
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
      return renderFailure(err, rule, action);
    }
  }

  /**
   * runShadows compares each shadow rule that could match this event with its live twin (src/match/shadow.ts):
   * rendered quietly (no counts, no quarantine: the twin is a live rule), never sent.
   */
  async function runShadows(
    candidates: CompiledRule[],
    rules: readonly CompiledRule[],
    matched: ReadonlySet<CompiledRule>,
    input: EventInput,
    facts: (scope: string | undefined) => LazyFacts,
    ceId: string,
  ): Promise<ShadowOutcome[]> {
    const renderAll = (rule: CompiledRule) =>
      Promise.all(
        rule.actions.map(async (action): Promise<ShadowRequest> => {
          const rendered = await renderQuietly(rule, action, input, facts(rule.scope));
          return 'outcome' in rendered ? { error: rendered.error } : redacted(rendered);
        }),
      );
    return Promise.all(
      candidates
        .filter((rule) => rule.shadow)
        .map(async (rule) => {
          const { kinds, ...outcome } = await compareShadow(rule, twinOf(rule, rules), matched, renderAll);
          if (outcome.matched) metrics.shadowMatches.inc({ rule: rule.name });
          for (const kind of kinds) metrics.shadowDifferences.inc({ rule: rule.name, kind });
          deps.shadow?.record(outcome, ceId);
          if (outcome.differences.length > 0)
            log.info(
              { rule: rule.name, ceId, live: outcome.live, differences: outcome.differences },
              'shadow rule differs from its live rule',
            );
          return outcome;
        }),
    );
  }

  return {
    prepare,
    process: async (events, deadline, traces) => (await prepare(events, traces)).run(deadline),
  };
}

/** unreadable: the rules that could not be decided because a lookup they need failed (not a 404). */
function unreadable(
  failed: { rule: CompiledRule; cause: unknown }[],
): { detail: string; retryAfterMs?: number } | undefined {
  const lookups = failed.filter(
    (f): f is { rule: CompiledRule; cause: LookupFailedError } => f.cause instanceof LookupFailedError,
  );
  if (lookups.length === 0) return undefined;
  const waits = lookups.map((f) => f.cause.retryAfterMs);
  return {
    detail: lookups.map((f) => `rule ${f.rule.name} not decided: ${f.cause.message}`).join('; '),
    retryAfterMs: waits.every((w) => w !== undefined) ? Math.max(...waits) : undefined,
  };
}
