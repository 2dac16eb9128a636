/**
 * teamCluster: the Cluster as a team's rules see it. Their enrichment facts (`object`, `owner`,
 * `namespace`, `$object`…) read objects of their own namespace, their Namespace, and the cluster-scoped
 * kinds the operator allows (TEAM_CLUSTER_KINDS); their Secrets are those of their namespace. Anything else is
 * absent (a null fact), exactly as if it did not exist.
 */
import type { SecretReader } from '../render/value-source.js';
import { groupKindOf, type Cluster } from './cluster.js';

export function teamCluster(cluster: Cluster, namespace: string, clusterKinds: ReadonlySet<string>): Cluster {
  const secrets: SecretReader = { read: (name, key) => cluster.secrets.read(name, key, namespace) };
  const configMaps = cluster.configMaps && {
    read: (name: string, key: string) => cluster.configMaps!.read(name, key, namespace),
  };
  return {
    description: cluster.description,
    namespace,
    secrets,
    configMaps,
    async get(ref) {
      // A reference without a namespace is a cluster-scoped object (the cluster refuses a namespaced kind without one).
      // A first cut by the reference; the cluster decides precisely with the kind's real scope (an owner
      // reference in the team's namespace may name a cluster-scoped kind).
      const groupKind = groupKindOf(ref.apiVersion, ref.kind);
      const own = groupKind === 'Namespace' && ref.name === namespace; // the `namespace` fact: always its own
      const allowed = ref.namespace ? ref.namespace === namespace : own || clusterKinds.has(groupKind);
      return allowed ? cluster.get(ref, { namespace, clusterKinds }) : { status: 'not_found' };
    },
  };
}
