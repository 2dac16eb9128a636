/** Kubernetes objects for tests against the fake API server. */
import type { KubeConnection } from '../../src/kube/connect.js';
import type { FakeKubeApi, KubeObject } from './fake-kube-api.js';

export const OWN_NAMESPACE = 'observability';

export function connectionTo(fake: FakeKubeApi): KubeConnection {
  return { kc: fake.kubeConfig(), namespace: OWN_NAMESPACE, description: `fake API ${fake.url}` };
}

export function ruleConfigMap(
  namespace: string,
  name: string,
  data: Record<string, string>,
  labels = { 'kube-event-rules/rules': 'true' },
): KubeObject {
  return { apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace, labels }, data };
}

export function secret(namespace: string, name: string, values: Record<string, string>): KubeObject {
  const data = Object.fromEntries(Object.entries(values).map(([k, v]) => [k, Buffer.from(v).toString('base64')]));
  return { apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace }, type: 'Opaque', data };
}

/** waitUntil polls a condition (bounded) — for effects that arrive through a watch. */
export async function waitUntil(
  what: string,
  condition: () => boolean | Promise<boolean>,
  timeoutMs = 2000,
): Promise<number> {
  const started = Date.now();
  while (!(await condition())) {
    if (Date.now() - started > timeoutMs) throw new Error(`not within ${timeoutMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
  return Date.now() - started;
}
