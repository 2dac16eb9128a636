/**
 * A Cluster made of manifests, as `kubectl get -o yaml` prints them (single objects, multi-document
 * YAML or a `kind: List`): the `object`, `owner` and `namespace` facts of `kube-event-rules test
 * --objects` and of the playground, so rules that read the cluster can be tested without one.
 * Secrets are never served as objects (they come from --secrets); every other lookup is by kind,
 * namespace and name, answered "not found" when no manifest matches, as a real API server would.
 */
import { parseAllDocuments } from 'yaml';
import type { ObjectReference } from '../normalize/kube-event.js';
import { NO_CLUSTER_SECRETS, type SecretReader } from '../render/value-source.js';
import { ConfigurationError } from '../errors.js';
import type { Cluster, Lookup } from './cluster.js';

export interface ManifestText {
  /** Where the text came from (a file name, "objects"), for error messages. */
  label: string;
  text: string;
}

type Obj = Record<string, unknown> & {
  kind?: unknown;
  apiVersion?: unknown;
  metadata?: { name?: unknown; namespace?: unknown };
};

/** Kinds whose objects have no namespace: a lookup ignores the namespace the reference carries. */
const CLUSTER_SCOPED = new Set([
  'Namespace',
  'Node',
  'PersistentVolume',
  'StorageClass',
  'ClusterRole',
  'ClusterRoleBinding',
  'CustomResourceDefinition',
  'PriorityClass',
]);

/** The group of an apiVersion ("apps/v1" → "apps", "v1" → ""): versions may differ, groups may not. */
const group = (apiVersion: unknown) =>
  typeof apiVersion === 'string' && apiVersion.includes('/') ? apiVersion.split('/')[0] : '';

const key = (kind: string, namespace: string, name: string) =>
  `${kind}\u0000${CLUSTER_SCOPED.has(kind) ? '' : namespace}\u0000${name}`;

/**
 * parseManifests reads every object of the texts; problems name the text and the document. Objects
 * without kind or metadata.name are problems too: they could never be found.
 */
export function parseManifests(texts: ManifestText[]): { objects: Obj[]; problems: string[] } {
  const objects: Obj[] = [];
  const problems: string[] = [];
  const add = (value: unknown, where: string) => {
    if (value === null || value === undefined) return;
    const obj = value as Obj;
    if (typeof obj !== 'object' || Array.isArray(obj)) return void problems.push(`${where}: not a Kubernetes object`);
    if (
      obj.kind === 'List' ||
      (typeof obj.kind === 'string' && obj.kind.endsWith('List') && Array.isArray(obj.items))
    ) {
      ((obj.items as unknown[] | undefined) ?? []).forEach((item, i) => add(item, `${where} items[${i}]`));
      return;
    }
    if (typeof obj.kind !== 'string' || typeof obj.metadata?.name !== 'string') {
      return void problems.push(`${where}: an object needs kind and metadata.name`);
    }
    objects.push(obj);
  };
  for (const { label, text } of texts) {
    parseAllDocuments(text).forEach((doc, i) => {
      const where = `${label} (document ${i + 1})`;
      const error = doc.errors[0];
      if (error) return void problems.push(`${where}: YAML ${error.message.split('\n')[0]}`);
      add(doc.toJS({ maxAliasCount: 100 }), where);
    });
  }
  return { objects, problems };
}

/** manifestCluster answers lookups from the objects; `fallback` (a real cluster) answers what they lack. */
export function manifestCluster(objects: Obj[], options: { secrets?: SecretReader; fallback?: Cluster } = {}): Cluster {
  const byKey = new Map<string, Obj>();
  for (const obj of objects) {
    if (obj.kind === 'Secret') continue;
    const namespace = typeof obj.metadata?.namespace === 'string' ? obj.metadata.namespace : 'default';
    byKey.set(key(obj.kind as string, namespace, obj.metadata!.name as string), JSON.parse(JSON.stringify(obj)) as Obj);
  }
  const { fallback } = options;
  // ConfigMaps of the manifests answer configMapKeyRef (a destination's tls material); without a namespace, any.
  const configMaps: SecretReader = {
    async read(name, key, namespace) {
      const found = objects.find(
        (o) =>
          o.kind === 'ConfigMap' &&
          o.metadata?.name === name &&
          (!namespace || (o.metadata?.namespace ?? 'default') === namespace),
      );
      if (!found) {
        if (fallback?.configMaps) return fallback.configMaps.read(name, key, namespace);
        throw new ConfigurationError(`configMapKeyRef ${name}/${key}: no ConfigMap "${name}" in the manifests`);
      }
      const value = (found.data as Record<string, string> | undefined)?.[key];
      if (value === undefined)
        throw new ConfigurationError(`configMapKeyRef ${name}/${key}: ConfigMap "${name}" has no key "${key}"`);
      return value;
    },
  };
  return {
    configMaps,
    description: `${byKey.size} object${byKey.size === 1 ? '' : 's'} from manifests${fallback ? `, then ${fallback.description}` : ''}`,
    namespace: fallback?.namespace,
    secrets: options.secrets ?? fallback?.secrets ?? NO_CLUSTER_SECRETS,
    async get(ref: ObjectReference): Promise<Lookup> {
      const found = ref.kind && ref.name ? byKey.get(key(ref.kind, ref.namespace || 'default', ref.name)) : undefined;
      if (found && (!ref.apiVersion || group(ref.apiVersion) === group(found.apiVersion)))
        return { status: 'found', object: structuredClone(found) };
      return fallback ? fallback.get(ref) : { status: 'not_found' };
    },
  };
}
