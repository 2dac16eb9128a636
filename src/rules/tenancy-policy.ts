/**
 * The tenancy policy: what a rule document of each scope may be, read and send, compiled once from the
 * settings. Every rule document passes through it at load (RuleStore), and the pipeline asks it what
 * only an event can tell (the host a URL resolved to).
 *
 * Scopes: RULES_DIR files and ConfigMaps of the cluster namespaces are the cluster scope; a ConfigMap
 * in any other namespace belongs to that namespace's team. A rule's identity is (scope, name):
 * - the cluster scope owns its names: a team's rule named like a cluster rule is rejected, never the other way;
 * - two sources of one scope defining the same name: the later one in SOURCE ORDER is rejected whole;
 * - two teams may use the same name (their rules never see each other's events); metric labels and
 *   reports name a team's rule `namespace/name`.
 */
import { ConfigurationError } from '../errors.js';
import { destinationKind } from '../deliver/kinds/registry.js';
import { literalPrefix } from '../render/url-template.js';
import { forbiddenHeader } from '../render/forbidden-headers.js';
import {
  TEAM_LABEL,
  definitionOf,
  describeDefinition,
  sameDefinition,
  type MetricDefinition,
} from '../deliver/user-metrics.js';
import type { CompiledDocument, CompiledRule } from './compiled-rule.js';
import type { RuleDocument, ValueSource } from './document.js';

export interface TenancySettings {
  /** Most rules in force per team namespace (all its documents together). */
  rulesPerNamespace: number;
  /** Largest team rule document (one ConfigMap key), in bytes; checked before it is parsed. */
  documentBytes: number;
  /** Most rule documents (ConfigMap keys) per team namespace; keys beyond are not loaded. */
  documentsPerNamespace?: number;
  /** Most actions per rule of a team. */
  actionsPerRule: number;
  /** Largest JSONata expression of a team (body, field, URL, header, throttle or region key), in bytes. */
  templateBytes: number;
  /** Environment variables a team's `{ env }` values may read (none by default). */
  envAllowlist: string[];
  /** Cluster-scoped kinds a team's enrichment facts may read (namespaced objects: its own namespace only). */
  clusterKinds: string[];
  /** Hosts each scope may send to (`host`, `host:port`, `*.domain`); empty: any host. */
  destinationHosts: { cluster: string[]; team: string[] };
}

export const DEFAULT_TENANCY: TenancySettings = {
  rulesPerNamespace: 100,
  documentBytes: 64 * 1024,
  documentsPerNamespace: 20,
  actionsPerRule: 5,
  templateBytes: 4096,
  envAllowlist: [],
  clusterKinds: ['Namespace', 'Node'],
  destinationHosts: { cluster: [], team: [] },
};

/** A Secret name as Kubernetes allows it (DNS subdomain): nothing that could reach another path. */
const SECRET_NAME = /^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$/;

/** One source's rules as the store holds them, in no particular order. */
export interface SourceRules {
  source: string;
  /** The team namespace; undefined for the cluster scope. */
  scope?: string;
  rules: readonly CompiledRule[];
  /** Shadow rules of the source: outside name arbitration (they share their twin's name), inside the quota. */
  shadowRules?: number;
}

export interface TenancyPolicy {
  readonly settings: TenancySettings;
  /**
   * arbitrate decides which sources are in force together: it walks them in source order and returns the
   * problems of every source it rejects (a name clash, a namespace over its rule quota). The problems
   * belong to the rejected source — always the later one, never the one already in force.
   */
  arbitrate(sources: readonly SourceRules[]): Map<string, string[]>;
  /** checkText gives the problems of a document's text before it is parsed (its size). */
  checkText(text: string, scope: string | undefined): string[];
  /** checkDocument gives the problems of one document for its scope (each with its location). */
  checkDocument(document: RuleDocument, compiled: CompiledDocument, scope: string | undefined): string[];
  /** checkDestination throws a ConfigurationError when a rendered URL goes to a host its scope may not send to. */
  checkDestination(scope: string | undefined, destination: string, url: string): void;
  /** envFor: the environment a rule of this scope reads (a team's: the allowlisted variables only). */
  envFor(
    scope: string | undefined,
    env: Readonly<Record<string, string | undefined>>,
  ): Record<string, string | undefined>;
  /** Cluster-scoped kinds a team's enrichment may read. */
  readonly teamClusterKinds: ReadonlySet<string>;
}

/**
 * Source order — stable across restarts because it depends on names only: the cluster scope first
 * (RULES_DIR files by file name, then cluster ConfigMaps by namespace/name/key), then team documents
 * (by namespace/name/key).
 */
export function bySourceOrder(a: SourceRules, b: SourceRules): number {
  const rank = (s: SourceRules) => (s.scope === undefined ? 0 : 2) + (s.source.startsWith('file:') ? 0 : 1);
  return rank(a) - rank(b) || (a.source < b.source ? -1 : a.source > b.source ? 1 : 0);
}

/** qualifiedName: how a rule is named in metrics, logs, reports and /status (unique across scopes). */
export function qualifiedName(scope: string | undefined, name: string): string {
  return scope === undefined ? name : `${scope}/${name}`;
}

/**
 * valueSources lists every value source of a document with where it is (destination url and headers, action fields).
 */
function valueSources(document: RuleDocument): [string, ValueSource][] {
  const found: [string, ValueSource][] = [];
  for (const [name, destination] of Object.entries(document.destinations ?? {})) {
    if (destination.url !== undefined) found.push([`destinations.${name}.url`, destination.url]);
    for (const [header, value] of Object.entries(destination.headers ?? {}))
      found.push([`destinations.${name}.headers.${header}`, value]);
  }
  document.rules.forEach((rule, i) =>
    rule.actions.forEach((action, j) => {
      for (const [field, value] of Object.entries(action.fields ?? {}))
        found.push([`rules[${i}] (${rule.name}).actions[${j}].fields.${field}`, value]);
    }),
  );
  return found;
}

/**
 * transportProblems: a team's TLS verification is always on, and its TLS material and proxy credentials
 * come from Secrets and ConfigMaps of its namespace — never from the service's files.
 */
function transportProblems(document: RuleDocument, scope: string | undefined): string[] {
  const problems: string[] = [];
  for (const [name, destination] of Object.entries(document.destinations ?? {})) {
    const at = `destinations.${name}`;
    const serverName = destination.tls?.serverName;
    if (
      scope !== undefined &&
      serverName !== undefined &&
      serverName.toLowerCase() !== literalHostname(destination.url)
    ) {
      problems.push(
        `${at}.tls.serverName: ${JSON.stringify(serverName)} is not the URL's host; in a team's rules the name verified is the host the URL names (a different one would reach another service behind an allowed address)`,
      );
    }
    if (scope !== undefined && destination.tls?.insecureSkipVerify) {
      problems.push(
        `${at}.tls.insecureSkipVerify: not allowed in a team's rules (certificate verification stays on; trust a private CA with tls.ca)`,
      );
    }
    const sources = {
      ...Object.fromEntries(Object.entries(destination.tls ?? {}).map(([k, v]) => [`tls.${k}`, v])),
      'proxy.username': destination.proxy?.username,
      'proxy.password': destination.proxy?.password,
    };
    for (const [field, source] of Object.entries(sources)) {
      if (typeof source !== 'object' || source === null) continue;
      const ref =
        'secretKeyRef' in source
          ? source.secretKeyRef
          : 'configMapKeyRef' in source
            ? source.configMapKeyRef
            : undefined;
      if (ref && !SECRET_NAME.test(ref.name))
        problems.push(
          `${at}.${field}: ${JSON.stringify(ref.name)} is not a Secret or ConfigMap name (lower-case letters, digits, '-' and '.')`,
        );
      if ('file' in source && scope !== undefined)
        problems.push(
          `${at}.${field}: { file } is not allowed in a team's rules; use a secretKeyRef or configMapKeyRef of namespace ${scope}`,
        );
    }
  }
  return problems;
}

/** literalHostname: the host a destination URL names literally (a string, or a template's literal origin). */
function literalHostname(url: ValueSource | { jsonata: string } | undefined): string | undefined {
  const text = typeof url === 'string' ? url : undefined;
  try {
    return text === undefined ? undefined : new URL(text).hostname.toLowerCase();
  } catch {
    return undefined;
  }
}

/** A literal scheme and host, then the start of the path, query or fragment: the host cannot change after it. */
const FIXED_ORIGIN = /^https?:\/\/[^/?#\\]+[/?#]/i;

/** hostMatches: `host` (any port), `host:port`, or `*.domain` (its subdomains). */
function hostMatches(pattern: string, url: URL): boolean {
  const p = pattern.toLowerCase();
  if (p.startsWith('*.')) return url.hostname.endsWith(p.slice(1));
  return /:\d+$/.test(p) ? url.host === p : url.hostname === p;
}

/** templates lists every JSONata expression a document writes, with where it is. */
function templates(document: RuleDocument): [string, string][] {
  const found: [string, string][] = valueSources(document).flatMap(([where, value]) =>
    typeof value === 'object' && 'jsonata' in value ? [[where, value.jsonata] as [string, string]] : [],
  );
  for (const [name, destination] of Object.entries(document.destinations ?? {})) {
    for (const [label, expression] of Object.entries(destination.metric?.labels ?? {}))
      found.push([`destinations.${name}.metric.labels.${label}`, expression]);
    if (destination.metric?.value !== undefined)
      found.push([`destinations.${name}.metric.value`, destination.metric.value]);
  }
  document.rules.forEach((rule, i) => {
    const at = `rules[${i}] (${rule.name})`;
    rule.actions.forEach(
      (action, j) => action.body !== undefined && found.push([`${at}.actions[${j}].body`, action.body]),
    );
    if (rule.throttle?.key !== undefined) found.push([`${at}.throttle.key`, rule.throttle.key]);
    if (rule.region?.key !== undefined) found.push([`${at}.region.key`, rule.region.key]);
  });
  return found;
}

export function compileTenancyPolicy(settings: TenancySettings = DEFAULT_TENANCY): TenancyPolicy {
  const envAllowed = new Set(settings.envAllowlist);
  const allowedEnvText = settings.envAllowlist.length > 0 ? settings.envAllowlist.join(', ') : 'none';
  const hostsOf = (scope: string | undefined) =>
    scope === undefined ? settings.destinationHosts.cluster : settings.destinationHosts.team;
  /** hostProblem: why this URL's host is not allowed for the scope, or undefined. */
  const hostProblem = (scope: string | undefined, url: string): string | undefined => {
    const hosts = hostsOf(scope);
    if (hosts.length === 0) return undefined;
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      return 'is not a URL';
    }
    if (hosts.some((pattern) => hostMatches(pattern, parsed))) return undefined;
    const setting = scope === undefined ? 'DESTINATION_HOSTS_CLUSTER' : 'DESTINATION_HOSTS_TEAM';
    return `goes to host ${parsed.host}, which ${scope === undefined ? 'cluster rules' : `a team's rules (namespace ${scope})`} may not send to (${setting}: ${hosts.join(', ')})`;
  };
  return {
    settings,
    teamClusterKinds: new Set(settings.clusterKinds),
    checkDestination(scope, destination, url) {
      const problem = hostProblem(scope, url);
      if (problem) throw new ConfigurationError(`destination ${destination}: the URL ${problem}`);
    },
    checkText(text, scope) {
      const bytes = Buffer.byteLength(text);
      if (scope === undefined || bytes <= settings.documentBytes) return [];
      return [
        `the document has ${bytes} bytes; a team's rule document may have at most ${settings.documentBytes} (TEAM_MAX_DOCUMENT_BYTES): split it over several keys`,
      ];
    },
    checkDocument(document, compiled, scope) {
      const problems: string[] = [];
      if (scope !== undefined) {
        document.rules.forEach((rule, i) => {
          if (rule.actions.length > settings.actionsPerRule) {
            problems.push(
              `rules[${i}] (${rule.name}).actions: ${rule.actions.length} actions; a team's rule may have at most ${settings.actionsPerRule} (TEAM_MAX_ACTIONS_PER_RULE)`,
            );
          }
        });
        for (const [name, destination] of Object.entries(document.destinations ?? {})) {
          if (destination.metric?.labels && Object.hasOwn(destination.metric.labels, TEAM_LABEL)) {
            problems.push(
              `destinations.${name}.metric.labels.${TEAM_LABEL}: a team's metrics always carry ${TEAM_LABEL}="${scope}" (their own namespace); it cannot be declared: remove it`,
            );
          }
        }
        for (const [where, source] of templates(document)) {
          const bytes = Buffer.byteLength(source);
          if (bytes > settings.templateBytes)
            problems.push(
              `${where}: the expression has ${bytes} bytes; a team's may have at most ${settings.templateBytes} (TEAM_MAX_TEMPLATE_BYTES)`,
            );
        }
      }
      const destinations = new Map(
        compiled.rules.flatMap((rule) =>
          rule.actions.map((action) => [action.destination.name, action.destination] as const),
        ),
      );
      for (const [name, destination] of destinations) {
        const url = destination.url;
        if (!destinationKind(destination.kind).network || !url) continue;
        const where = `destinations.${name}.url`;
        if (url.kind === 'literal') {
          const problem = hostProblem(scope, String(url.value));
          if (problem) problems.push(`${where}: ${JSON.stringify(url.value)} ${problem}`);
        } else if (url.kind === 'url') {
          const prefix = literalPrefix(url);
          if (FIXED_ORIGIN.test(prefix)) {
            const problem = hostProblem(scope, prefix);
            if (problem) problems.push(`${where}: ${JSON.stringify(prefix)} ${problem}`);
          } else if (scope !== undefined) {
            problems.push(
              `${where}: a team's URL template must start with a literal scheme and host, e.g. "https://hooks.example.com/" & …; only cluster rules may choose the scheme or host with an expression`,
            );
          }
        }
      }
      problems.push(...transportProblems(document, scope));
      for (const [name, destination] of Object.entries(document.destinations ?? {})) {
        for (const header of Object.keys(destination.headers ?? {})) {
          const problem = forbiddenHeader(header);
          if (problem) problems.push(`destinations.${name}.headers.${header}: ${problem}`);
        }
      }
      // A destination's own proxy is a host it sends to as well (with the event inside a tunnel to the URL's host).
      for (const [name, destination] of Object.entries(document.destinations ?? {})) {
        const problem = destination.proxy && hostProblem(scope, destination.proxy.url);
        if (problem)
          problems.push(`destinations.${name}.proxy.url: ${JSON.stringify(destination.proxy!.url)} ${problem}`);
      }
      for (const [where, value] of valueSources(document)) {
        if (typeof value !== 'object') continue;
        if ('env' in value && scope !== undefined && !envAllowed.has(value.env)) {
          problems.push(
            `${where}: { env: ${value.env} } is not allowed in a team's rules: they cannot read the service's environment (allowed by TEAM_ENV_ALLOWLIST: ${allowedEnvText}); use a secretKeyRef to a Secret of namespace ${scope}`,
          );
        }
        if ('secretKeyRef' in value && !SECRET_NAME.test(value.secretKeyRef.name)) {
          problems.push(
            `${where}: secretKeyRef name ${JSON.stringify(value.secretKeyRef.name)} is not a Secret name (lower-case letters, digits, '-' and '.')`,
          );
        }
      }
      return problems;
    },
    envFor(scope, env) {
      if (scope === undefined) return env;
      return Object.fromEntries(settings.envAllowlist.map((name) => [name, env[name]]));
    },
    arbitrate(sources) {
      const rejected = new Map<string, string[]>();
      const clusterNames = new Map<string, string>();
      const teamNames = new Map<string, Map<string, string>>();
      const teamRules = new Map<string, number>();
      const metrics = new Map<string, MetricClaim>();
      for (const { source, scope, rules, shadowRules = 0 } of [...sources].sort(bySourceOrder)) {
        const problems: string[] = metricClashes(metrics, source, scope, rules);
        const own = scope === undefined ? clusterNames : (teamNames.get(scope) ?? new Map<string, string>());
        for (const rule of rules) {
          const cluster = clusterNames.get(rule.declaredName);
          if (scope !== undefined && cluster) {
            problems.push(
              `rule "${rule.declaredName}" has the name of a cluster rule (${cluster}); a team's rule cannot replace it: rename it`,
            );
          } else if (own.has(rule.declaredName)) {
            problems.push(
              `rule "${rule.declaredName}" is already defined in ${own.get(rule.declaredName)}, which comes first (${scope === undefined ? 'RULES_DIR files by name, then ConfigMaps by namespace/name/key' : 'ConfigMaps by name, then key'})`,
            );
          }
        }
        if (scope !== undefined) {
          // Shadow rules count: each is matched and rendered for every event of the namespace.
          const count = teamRules.get(scope) ?? 0;
          const total = count + rules.length + shadowRules;
          if (total > settings.rulesPerNamespace) {
            const shadows = shadowRules > 0 ? ` (${shadowRules} of this document's shadow rules included)` : '';
            problems.push(
              `namespace ${scope} would have ${total} rules${shadows}; at most ${settings.rulesPerNamespace} are allowed per team namespace (TEAM_MAX_RULES)`,
            );
          }
        }
        if (problems.length > 0) {
          rejected.set(
            source,
            problems.map((p) => `${source}: ${p}; this document is not in force`),
          );
          continue;
        }
        for (const rule of rules) own.set(rule.declaredName, source);
        claimMetrics(metrics, source, scope, rules);
        if (scope !== undefined) {
          teamNames.set(scope, own);
          teamRules.set(scope, (teamRules.get(scope) ?? 0) + rules.length + shadowRules);
        }
      }
      return rejected;
    },
  };
}

/** Who declared a metric first (in source order): later sources must declare it the same way, or not at all. */
interface MetricClaim {
  definition: MetricDefinition;
  source: string;
  scope?: string;
}

function* metricsOf(rules: readonly CompiledRule[]): Generator<MetricDefinition> {
  for (const rule of rules)
    for (const action of rule.actions) {
      const definition = definitionOf(action.destination);
      if (definition) yield definition;
    }
}

/**
 * metricClashes: the metrics of a source that another source in force (or the source itself) declares
 * differently. The cluster scope owns its metric names; teams share a name only with the same definition
 * (each team's series carry its namespace).
 */
function metricClashes(
  claims: ReadonlyMap<string, MetricClaim>,
  source: string,
  scope: string | undefined,
  rules: readonly CompiledRule[],
): string[] {
  const problems: string[] = [];
  const own = new Map<string, MetricDefinition>();
  for (const definition of metricsOf(rules)) {
    const mine = own.get(definition.name);
    if (mine && !sameDefinition(mine, definition)) {
      problems.push(
        `metric ${definition.name} is declared twice with different definitions (${describeDefinition(mine)}; ${describeDefinition(definition)})`,
      );
    }
    own.set(definition.name, definition);
    const claim = claims.get(definition.name);
    if (!claim || mine) continue;
    if (scope !== undefined && claim.scope === undefined) {
      problems.push(
        `metric ${definition.name} is declared by a cluster rule document (${claim.source}); a team's metric cannot share its name: rename it`,
      );
    } else if (!sameDefinition(claim.definition, definition)) {
      const where = claim.scope === scope ? claim.source : `another namespace's rules`;
      problems.push(
        `metric ${definition.name} is already declared by ${where} as ${describeDefinition(claim.definition)}, which comes first; this document declares ${describeDefinition(definition)}: declare it the same way, or use another name`,
      );
    }
  }
  return problems;
}

function claimMetrics(
  claims: Map<string, MetricClaim>,
  source: string,
  scope: string | undefined,
  rules: readonly CompiledRule[],
): void {
  for (const definition of metricsOf(rules))
    if (!claims.has(definition.name)) claims.set(definition.name, { definition, source, scope });
}
