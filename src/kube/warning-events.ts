/**
 * Rule errors as Kubernetes Events of type Warning on the ConfigMap that holds the rules, so
 * `kubectl describe configmap` shows the exact problem. One Event per distinct error, not per reload.
 */
import { hostname } from 'node:os';
import { CoreV1Api, type KubeConfig, type V1ConfigMap } from '@kubernetes/client-node';
import type { Logger } from '../log.js';
import { knownSecrets } from '../redact.js';

export interface RuleErrorReporter {
  report(configMap: V1ConfigMap, key: string, problems: string[]): void;
}

/** Kubernetes keeps Event messages short; the full text is in the log and /status. */
const MAX_MESSAGE = 1024;
const MAX_REMEMBERED = 10_000;

export function createRuleErrorReporter(kc: KubeConfig, log: Logger): RuleErrorReporter {
  const core = kc.makeApiClient(CoreV1Api);
  const reported = new Set<string>();
  const instance = hostname();
  return {
    report(configMap, key, problems) {
      const { name = '', namespace = 'default', uid, resourceVersion } = configMap.metadata ?? {};
      const text = knownSecrets.redact(`rules in data key "${key}" rejected: ${problems.join('; ')}`);
      const message = text.length > MAX_MESSAGE ? `${text.slice(0, MAX_MESSAGE - 1)}…` : text;
      const fingerprint = `${namespace}/${name}/${key}\u0000${problems.join('\n')}`;
      if (reported.has(fingerprint)) return;
      if (reported.size >= MAX_REMEMBERED) reported.clear();
      reported.add(fingerprint);
      const now = new Date();
      core
        .createNamespacedEvent({
          namespace,
          body: {
            metadata: { generateName: `${name}.`, namespace },
            involvedObject: { apiVersion: 'v1', kind: 'ConfigMap', name, namespace, uid, resourceVersion },
            reason: 'InvalidRules',
            message,
            type: 'Warning',
            source: { component: 'kube-event-rules' },
            reportingComponent: 'kube-event-rules',
            reportingInstance: instance,
            firstTimestamp: now,
            lastTimestamp: now,
            count: 1,
          },
        })
        .catch((err: unknown) => {
          reported.delete(fingerprint); // try again on the next reload
          log.warn({ configMap: `${namespace}/${name}`, err: (err as Error).message }, 'could not record the rule error as a Kubernetes Event');
        });
    },
  };
}
