/**
 * The enrichment facts of one event, each fetched at most once and only when a condition or template
 * reads it:
 * - object: the involved object, any kind;
 * - owner: the top controller of the ownerReferences chain (Pod → ReplicaSet → Deployment, Job → CronJob);
 * - namespace: the name, labels and annotations of the event's namespace.
 * Without a cluster, or when an object is missing or unreadable, the fact is null. A lookup that failed
 * (API error, timeout, rate limit) rejects with LookupFailedError: the rule cannot be decided, and the
 * event is redelivered rather than answered as if the object did not exist.
 */
import type { KubernetesObject } from '@kubernetes/client-node';
import type { EventInput, ObjectReference } from '../normalize/kube-event.js';
import type { Cluster } from './cluster.js';
import { ENRICHMENT_FACTS, type EnrichmentFact } from './enrichment-facts.js';
import { LookupFailedError } from './lookup-failed.js';

export { ENRICHMENT_FACTS, type EnrichmentFact };
export type LazyFacts = Record<EnrichmentFact, () => Promise<unknown>>;

/** Deep enough for Pod → ReplicaSet → Deployment → (an operator's CR); bounded against cycles. */
const MAX_OWNER_DEPTH = 5;

/** An object as the API serves it: the metadata the facts read, and the rest as it comes. */
type Obj = KubernetesObject & Record<string, unknown>;

export function lazyFacts(cluster: Cluster, input: EventInput): LazyFacts {
  const once = <T>(load: () => Promise<T>) => {
    let pending: Promise<T> | undefined;
    return () => (pending ??= load());
  };
  const lookup = async (ref: ObjectReference): Promise<Obj | null> => {
    const result = await cluster.get(ref);
    if (result.status === 'retry') throw new LookupFailedError(result.reason, result.retryAfterMs);
    return result.status === 'found' ? result.object : null;
  };
  const involved = (input.event.involvedObject ?? {}) as ObjectReference;

  const object = once(() => (involved.name ? lookup(involved) : Promise.resolve(null)));
  const owner = once(async () => {
    let current = await object();
    let top: Obj | null = null;
    for (let depth = 0; current && depth < MAX_OWNER_DEPTH; depth++) {
      const owners = current.metadata?.ownerReferences ?? [];
      const controller = owners.find((o) => o.controller) ?? owners[0];
      if (!controller) break;
      const next = await lookup({
        apiVersion: controller.apiVersion,
        kind: controller.kind,
        name: controller.name,
        namespace: current.metadata?.namespace,
      });
      if (!next) break;
      top = current = next;
    }
    return top;
  });
  const namespace = once(async () => {
    const name = involved.namespace || (input.event.metadata as Obj['metadata'])?.namespace;
    if (!name) return null;
    const ns = await lookup({ apiVersion: 'v1', kind: 'Namespace', name });
    return ns ? { name, labels: ns.metadata?.labels ?? {}, annotations: ns.metadata?.annotations ?? {} } : null;
  });
  return { object, owner, namespace };
}

/** NO_FACTS: every enrichment fact null (offline evaluation). */
export const NO_FACTS: LazyFacts = { object: async () => null, owner: async () => null, namespace: async () => null };
