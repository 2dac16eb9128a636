/**
 * Cluster is everything the pipeline reads from the Kubernetes API: Events (Reference mode), involved
 * objects (the `object` fact and `$object`), Secrets (secretKeyRef). Without a cluster every lookup
 * answers "unavailable", and secretKeyRef fails with a clear ConfigurationError.
 */
import type { ObjectReference } from '../normalize/kube-event.js';
import { NO_CLUSTER_SECRETS, type SecretReader } from '../render/value-source.js';

/**
 * Lookup: `not_found` (404, or 403 reported as a configuration problem) and `unavailable` (no cluster) are
 * answers — the fact is null; `retry` (5xx, timeout, rate limit, network) is not: the event must be
 * redelivered, since deciding on a fact we could not read would silently drop what a rule wanted.
 */
export type Lookup =
  | { status: 'found'; object: Record<string, unknown> }
  | { status: 'not_found' }
  | { status: 'unavailable'; reason: string }
  | { status: 'retry'; reason: string; retryAfterMs?: number };

/** A team's reach: objects of its namespace, its Namespace, and these cluster-scoped kinds. */
export interface LookupLimits {
  namespace: string;
  /** Group-qualified kinds (groupKindOf): `Node` is core v1 Node only, never a custom resource named Node. */
  clusterKinds: ReadonlySet<string>;
}

/**
 * groupKindOf names a kind with its API group, as TEAM_CLUSTER_KINDS lists it: `Node` for the core group
 * (apiVersion `v1`), `Widget.example.io` for `example.io/v1`. A kind alone would let any group's custom
 * resource of that name through.
 */
export function groupKindOf(apiVersion: string | undefined, kind: string | undefined): string {
  const slash = (apiVersion ?? '').indexOf('/');
  const group = slash < 0 ? '' : apiVersion!.slice(0, slash);
  return group === '' ? (kind ?? '') : `${kind ?? ''}.${group}`;
}

export interface Cluster {
  /** A one-line description for the startup log and /status. */
  readonly description: string;
  /** The service's own namespace (Secrets of cluster-wide rules are read there). */
  readonly namespace?: string;
  /** get looks an object up; with `limits`, anything outside them is not found (decided with the API's own scopes). */
  get(ref: ObjectReference, limits?: LookupLimits): Promise<Lookup>;
  readonly secrets: SecretReader;
  /** ConfigMap keys (configMapKeyRef of TLS material); absent without a cluster. */
  readonly configMaps?: SecretReader;
}

export const NO_CLUSTER: Cluster = {
  description:
    'no Kubernetes cluster configured: Reference-mode events are not resolved, the object fact is null, secretKeyRef is unavailable',
  async get() {
    return { status: 'unavailable', reason: 'no Kubernetes cluster configured' };
  },
  secrets: NO_CLUSTER_SECRETS,
};
