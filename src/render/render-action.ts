/**
 * renderAction builds one action's request with everything its rule's scope may read, and nothing more:
 * a team's Secrets and ConfigMaps of its own namespace, its allowlisted environment, its destination hosts.
 * The pipeline renders through it for each event, and background deliveries (digests) outside any request.
 */
import type { Config } from '../config.js';
import type { Cluster } from '../enrich/cluster.js';
import { destinationKind } from '../deliver/kinds/registry.js';
import type { TenancyPolicy } from '../rules/tenancy-policy.js';
import type { CompiledAction, CompiledRule } from '../rules/compiled-rule.js';
import type { RenderedRequest } from './rendered-request.js';
import type { SecretReader } from './value-source.js';
import { LookupFailedError } from '../enrich/lookup-failed.js';
import { ConfigurationError, MissingObjectError, TemplateError, TemplateQueueError, describeError } from '../errors.js';
import { knownSecrets } from '../redact.js';
import { GUARD_CODES } from './template-quarantine.js';

export interface ActionRenderDeps {
  config: Config;
  cluster: Cluster;
  tenancy: TenancyPolicy;
  env: Record<string, string | undefined>;
}

/** scopedSecrets: a team's rules read Secrets of their own namespace only. */
function scopedSecrets(secrets: SecretReader, scope: string | undefined): SecretReader {
  return scope === undefined ? secrets : { read: (name, key) => secrets.read(name, key, scope) };
}

/** The readers a scope's rules get, built once per (deps, scope) rather than per action rendered. */
interface ScopeReaders {
  secrets: SecretReader;
  configMaps: SecretReader | undefined;
}
const readersByDeps = new WeakMap<ActionRenderDeps, Map<string | undefined, ScopeReaders>>();

function readersFor(deps: ActionRenderDeps, scope: string | undefined): ScopeReaders {
  let byScope = readersByDeps.get(deps);
  if (!byScope) readersByDeps.set(deps, (byScope = new Map<string | undefined, ScopeReaders>()));
  let readers = byScope.get(scope);
  if (!readers) {
    readers = {
      secrets: scopedSecrets(deps.cluster.secrets, scope),
      configMaps: deps.cluster.configMaps && scopedSecrets(deps.cluster.configMaps, scope),
    };
    byScope.set(scope, readers);
  }
  return readers;
}

/**
 * renderAction: `input` is what the templates see as `$`, `bindings` their `$` variables. Throws
 * TemplateError or ConfigurationError (a destination host the scope may not send to) like the kinds do.
 */
export async function renderAction(
  deps: ActionRenderDeps,
  rule: CompiledRule,
  action: CompiledAction,
  input: unknown,
  bindings: Record<string, unknown>,
  eventNamespace: string | undefined,
  deadline?: number,
): Promise<RenderedRequest> {
  const { secrets, configMaps } = readersFor(deps, rule.scope);
  // A team's rules: only allowlisted variables, and hpa-sender Secrets of the HPA's (= the team's) namespace.
  const env = deps.tenancy.envFor(rule.scope, deps.env);
  const hpaSenderNamespaces = rule.scope === undefined ? deps.config.hpaSenderSecretNamespaces : [];
  // TLS material: a team's from ConfigMaps of its namespace too, never from the service's files.
  const files = rule.scope === undefined;
  const kind = destinationKind(action.destination.kind);
  const request = await kind.render(action, {
    input,
    bindings,
    deadline,
    secrets,
    env,
    hpaSenderNamespaces,
    configMaps,
    files,
    eventNamespace,
  });
  if (kind.network) deps.tenancy.checkDestination(rule.scope, action.destination.name, request.url);
  return request;
}

/**
 * Why an action could not be rendered: `error` when retrying cannot change it (a type error, no value, a bad
 * configuration); `failed` when it may pass later — a lookup or Secret read that failed, or a guard trip
 * (time, heap, size: they depend on load and on the limits set), so the Broker redelivers and in the end
 * dead-letters the event instead of it being acknowledged unsent.
 */
export interface RenderFailure {
  outcome: 'error' | 'failed';
  error: string;
  retryAfterMs?: number;
  /** A template error (counted per rule). */
  template?: boolean;
  /** A guard trip (counts towards the rule's quarantine; answered 503). */
  guard?: boolean;
  /** Not a guard trip, but answered 503 as well (a Secret or ConfigMap a rollout may still create). */
  unavailable?: boolean;
}

/** How long the Broker is asked to wait before redelivering an event whose Secret or ConfigMap is missing. */
const MISSING_OBJECT_RETRY_MS = 30_000;

/**
 * mayPassLater: whether a template's failure (an action's, a digest's or a region's key) may pass on a
 * redelivery — a lookup that failed, a full template queue, a guard trip, a missing Secret — and how long to
 * wait; `unavailable` when it is this service's state (503), not a wait asked for (429). Undefined: permanent.
 */
export function mayPassLater(err: unknown): { retryAfterMs?: number; unavailable: boolean } | undefined {
  if (err instanceof LookupFailedError || err instanceof TemplateQueueError)
    return { retryAfterMs: err.retryAfterMs, unavailable: false };
  if (err instanceof MissingObjectError) return { retryAfterMs: MISSING_OBJECT_RETRY_MS, unavailable: true };
  if (err instanceof TemplateError && GUARD_CODES.has(err.code ?? '')) return { unavailable: true };
  return undefined;
}

/** renderFailure: what a renderAction error means, its message redacted. */
export function renderFailure(err: unknown, rule: CompiledRule, action: CompiledAction): RenderFailure {
  const template = err instanceof TemplateError;
  const error = knownSecrets.redact(
    `${template ? `rule ${rule.name} action ${action.index} body: ` : ''}${describeError(err)}`,
  );
  const guard = err instanceof TemplateError && GUARD_CODES.has(err.code ?? '');
  // A missing (or forbidden) Secret or ConfigMap may be created by the next rollout: redelivered, dead-lettered in the
  // end.
  if (err instanceof MissingObjectError)
    return { outcome: 'failed', error, retryAfterMs: MISSING_OBJECT_RETRY_MS, unavailable: true };
  // Template and configuration errors are permanent; a guard trip or anything else (an API outage reading a Secret) may
  // pass.
  if (!guard && (template || err instanceof ConfigurationError)) return { outcome: 'error', error, template };
  const retryAfterMs =
    err instanceof LookupFailedError || err instanceof TemplateQueueError ? err.retryAfterMs : undefined;
  return { outcome: 'failed', error, retryAfterMs, template, guard };
}
