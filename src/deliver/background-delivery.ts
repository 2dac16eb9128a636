/**
 * Background delivery: one action delivered outside any incoming request (a digest's flush; anything
 * scheduled), through the same senders and policies as the pipeline's (retry, bulkhead, circuit breaker),
 * rendered with its rule's scope (renderAction), and delivered once per key: the key is checked and
 * recorded in the delivered store (shared by replicas with Redis), and claimed in this process while it runs.
 *
 * It makes one delivery (with the sender's in-request retries) and says how it went; it keeps no queue.
 * The caller keeps what it must deliver until the outcome is final, and asks `retryDelayMs` when to try a
 * `failed` one again — after `maxFailures` it gives up and counts the drop with its reason.
 */
import type { Config } from '../config.js';
import type { Cluster } from '../enrich/cluster.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { renderAction, renderFailure } from '../render/render-action.js';
import { ENRICHMENT_FACTS } from '../enrich/lazy-facts.js';
import type { CompiledAction, CompiledRule } from '../rules/compiled-rule.js';
import type { TenancyPolicy } from '../rules/tenancy-policy.js';
import type { DeliveredStore } from './delivered-store.js';
import { sendRequest } from './send-action.js';
import type { Senders } from './kinds/registry.js';

export interface BackgroundAction {
  rule: CompiledRule;
  action: CompiledAction;
  /** What the action's templates see as `$`. */
  input: unknown;
  /** Template variables besides `$rule` (set here); `$object`, `$owner`, `$namespace` are null. */
  bindings: Record<string, unknown>;
  /** Delivered at most once per key (with Redis: across replicas and restarts, for DEDUP_WINDOW_SECONDS). */
  key: string;
  /** What it is, for logs and the sender's context: e.g. `digest` and the group's id. */
  what: string;
  id: string;
  /** The namespace the work belongs to (hpa-sender reads it), if any. */
  namespace?: string;
}

/**
 * `failed`: may pass later (5xx, timeout, breaker open, a guard trip, a Secret read that failed): try again;
 * `rejected` (4xx) and `error` (a template or configuration error) are final, like `delivered`.
 */
export interface BackgroundResult {
  outcome: 'delivered' | 'skipped_duplicate' | 'rejected' | 'error' | 'failed';
  status?: number;
  error?: string;
  /** The destination asked to wait at least this long. */
  retryAfterMs?: number;
}

export interface BackgroundDeliveryDeps {
  config: Config;
  cluster: Cluster;
  tenancy: TenancyPolicy;
  env: Record<string, string | undefined>;
  senders: Senders;
  delivered: DeliveredStore;
  metrics: Metrics;
  log: Logger;
}

export interface BackgroundDelivery {
  deliver(job: BackgroundAction): Promise<BackgroundResult>;
}

/** When to try a failed background delivery again: 1 s, doubling to 60 s, or the destination's longer Retry-After. */
export function retryDelayMs(failures: number, retryAfterMs = 0): number {
  return Math.max(retryAfterMs, Math.min(60_000, 1000 * 2 ** Math.max(0, failures - 1)));
}

const NO_ENRICHMENT = Object.fromEntries(ENRICHMENT_FACTS.map((fact) => [fact, null]));

/** A background delivery's template variables: `$rule`, `$occurrence` = its id, the job's own; per-event ones null. */
export function backgroundBindings(
  rule: CompiledRule,
  id: string,
  bindings: Record<string, unknown>,
): Record<string, unknown> {
  return {
    ...NO_ENRICHMENT,
    cloudevent: null,
    change: null,
    occurrence: id,
    ...bindings,
    rule: { name: rule.declaredName, description: rule.description },
  };
}

export function createBackgroundDelivery(deps: BackgroundDeliveryDeps): BackgroundDelivery {
  const { metrics, log } = deps;
  /** Keys being delivered in this process: a second delivery of one waits for the first's outcome. */
  const inFlight = new Map<string, Promise<BackgroundResult>>();

  async function deliverOnce(job: BackgroundAction): Promise<BackgroundResult> {
    const { rule, action } = job;
    const destination = action.destination.name;
    const fields = { rule: rule.name, destination, [job.what]: job.id };
    const done = (result: BackgroundResult): BackgroundResult => {
      metrics.deliveries.inc({ rule: rule.name, destination, outcome: result.outcome });
      return result;
    };
    if (await deps.delivered.has(job.key)) return done({ outcome: 'skipped_duplicate' });
    const deadline = Date.now() + deps.config.deliveryDeadlineMs;
    let request;
    try {
      request = await renderAction(
        deps,
        rule,
        action,
        job.input,
        backgroundBindings(rule, job.id, job.bindings),
        job.namespace,
        deadline,
      );
    } catch (err) {
      const { outcome, error, template } = renderFailure(err, rule, action);
      if (template) metrics.templateErrors.inc({ rule: rule.name });
      log.error(
        { ...fields, error },
        outcome === 'error' ? `${job.what} not rendered; not retried` : `${job.what} not rendered; tried again later`,
      );
      return done({ outcome, error });
    }
    const context = { rule: rule.name, ceId: `${job.what}:${job.id}`, occurrence: job.key };
    const sent = await sendRequest(deps, rule, action, request, deadline, context);
    const error = sent.error;
    // Background work is never given a dry run's show-only sender; were it, nothing was delivered.
    const outcome = sent.outcome === 'rendered' ? 'failed' : sent.outcome;
    const result: BackgroundResult = { outcome, status: sent.status, error, retryAfterMs: sent.retryAfterMs };
    if (outcome !== 'failed') await deps.delivered.add(job.key);
    if (outcome === 'failed')
      log.warn(
        { ...fields, status: sent.status, attempts: sent.attempts, error },
        `${job.what} delivery failed; tried again later`,
      );
    else if (outcome === 'rejected')
      log.error({ ...fields, status: sent.status, error }, `${job.what} rejected by the destination; not retried`);
    else log.info({ ...fields, status: sent.status, attempts: sent.attempts }, `${job.what} delivered`);
    return done(result);
  }

  return {
    async deliver(job) {
      const running = inFlight.get(job.key);
      if (running) return running;
      const delivery = deliverOnce(job);
      inFlight.set(job.key, delivery);
      try {
        return await delivery;
      } finally {
        inFlight.delete(job.key);
      }
    },
  };
}
