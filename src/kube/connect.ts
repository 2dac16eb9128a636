/**
 * connectKube finds the cluster the service runs against: in-cluster service account, else KUBECONFIG
 * or ~/.kube/config. Without any of these there is no cluster (the embedded default), instead of
 * client-node's silent fallback to http://localhost:8080.
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { KubeConfig } from '@kubernetes/client-node';

const SERVICE_ACCOUNT = '/var/run/secrets/kubernetes.io/serviceaccount';

export interface KubeConnection {
  kc: KubeConfig;
  /** The service's own namespace: rules there apply to all events, Secrets default to it. */
  namespace: string;
  description: string;
}

export async function connectKube(
  env: Record<string, string | undefined>,
  serviceAccountDir = SERVICE_ACCOUNT,
): Promise<KubeConnection | undefined> {
  if (env.CLUSTER === 'off') return undefined;
  const inCluster = existsSync(join(serviceAccountDir, 'token')) && env.KUBERNETES_SERVICE_HOST;
  const kubeconfig =
    env.KUBECONFIG || (existsSync(join(homedir(), '.kube', 'config')) ? join(homedir(), '.kube', 'config') : undefined);
  if (!kubeconfig && !inCluster) return undefined;
  const { KubeConfig } = await import('@kubernetes/client-node'); // only with a cluster (memory, start-up)
  const kc = new KubeConfig();
  let how: string;
  if (inCluster) {
    kc.loadFromCluster();
    how = 'in-cluster service account';
  } else {
    kc.loadFromFile(kubeconfig!.split(':')[0]);
    how = `kubeconfig ${kubeconfig}, context ${kc.getCurrentContext()}`;
  }
  const server = kc.getCurrentCluster()?.server ?? '?';
  const fromFile = existsSync(join(serviceAccountDir, 'namespace'))
    ? readFileSync(join(serviceAccountDir, 'namespace'), 'utf8').trim()
    : undefined;
  const namespace =
    env.POD_NAMESPACE || fromFile || kc.getContextObject(kc.getCurrentContext())?.namespace || 'default';
  return { kc, namespace, description: `Kubernetes API ${server} (${how}), own namespace ${namespace}` };
}
