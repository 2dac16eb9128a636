/** deploy/ rendered by the real kubectl (kustomize), as `kubectl apply -k` would send it. */
import { execFileSync } from 'node:child_process';
import { parseAllDocuments, stringify } from 'yaml';
import { root } from './cluster.js';

export type Obj = Record<string, any>;

export function render(variant: string): Obj[] {
  const yaml = execFileSync('kubectl', ['kustomize', variant], { cwd: root, encoding: 'utf8' });
  return parseAllDocuments(yaml)
    .map((d) => d.toJS() as Obj)
    .filter(Boolean);
}

const ACCESS_KINDS = new Set([
  'Namespace',
  'ServiceAccount',
  'ClusterRole',
  'ClusterRoleBinding',
  'Role',
  'RoleBinding',
]);

/** The namespace, ServiceAccounts and RBAC of a variant, exactly as rendered: what the tests run under. */
export function accessOf(variant: string): string {
  return toYaml(render(variant).filter((o) => ACCESS_KINDS.has(o.kind)));
}

export function toYaml(objects: Obj[]): string {
  return objects.map((o) => stringify(o)).join('---\n');
}
