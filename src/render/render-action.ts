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
  const secrets = scopedSecrets(deps.cluster.secrets, rule.scope);
  // A team's rules: only allowlisted variables, and hpa-sender Secrets of the HPA's (= the team's) namespace.
  const env = deps.tenancy.envFor(rule.scope, deps.env);
  const hpaSenderNamespaces = rule.scope === undefined ? deps.config.hpaSenderSecretNamespaces : [];
  // TLS material: a team's from ConfigMaps of its namespace too, never from the service's files.
  const configMaps = deps.cluster.configMaps && scopedSecrets(deps.cluster.configMaps, rule.scope);
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
