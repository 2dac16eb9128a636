/**
 * Rule errors as Kubernetes Events of type Warning on the ConfigMap that holds the rules, so
 * `kubectl describe configmap` shows the exact problem. One Event per ConfigMap version, not per key or reload.
 */
import { hostname } from 'node:os';
import { CoreV1Api, type KubeConfig, type V1ConfigMap } from '@kubernetes/client-node';
import type { Logger } from '../log.js';
import { knownSecrets } from '../redact.js';
import type { TokenBucket } from './token-bucket.js';

export interface RuleErrorReporter {
  report(configMap: V1ConfigMap, key: string, problems: string[]): void;
}

/** Kubernetes keeps Event messages short; the full text is in the log and /status. */
const MAX_MESSAGE = 1024;
const MAX_REMEMBERED = 10_000;
/** ConfigMaps whose Event waits for the rate limit; past this many the oldest waits no more (the log has it). */
const MAX_WAITING = 1_000;
/**
 * A ConfigMap's keys are judged one by one, in the background: their problems are gathered this long into one Event.
 */
const GATHER_MS = 500;
/** Room for one key's problems in a message that names several. */
const MAX_KEY_TEXT = 400;

interface Waiting {
  configMap: V1ConfigMap;
  problems: Map<string, string[]>;
  readyAt: number;
}

/**
 * createRuleErrorReporter: one Warning Event per ConfigMap for the keys rejected together (gathered for a
 * moment: a ConfigMap of 400 broken keys is one Event, not 400), each key once per ConfigMap version, and
 * created within the service's API rate limit (`bucket`, KUBE_QPS): an Event that finds no token waits.
 */
export function createRuleErrorReporter(kc: KubeConfig, log: Logger, bucket?: TokenBucket): RuleErrorReporter {
  const core = kc.makeApiClient(CoreV1Api);
  const reported = new Set<string>();
  const waiting = new Map<string, Waiting>();
  let timer: NodeJS.Timeout | undefined;
  const instance = hostname();

  const later = (ms: number) => {
    timer ??= setTimeout(() => {
      timer = undefined;
      drain();
    }, ms).unref();
  };

  function drain(): void {
    for (const [id, next] of waiting) {
      const wait = next.readyAt - Date.now();
      if (wait > 0) return later(wait);
      if (bucket && !bucket.take()) return later(bucket.waitMs());
      waiting.delete(id);
      create(next);
    }
  }

  function create({ configMap, problems }: Waiting): void {
    const { name = '', namespace = 'default', uid, resourceVersion } = configMap.metadata ?? {};
    const parts = [...problems].map(([key, list]) => {
      const part = `rules in data key "${key}" rejected: ${list.join('; ')}`;
      return problems.size > 1 && part.length > MAX_KEY_TEXT ? `${part.slice(0, MAX_KEY_TEXT - 1)}…` : part;
    });
    const text = knownSecrets.redact(parts.join(' | '));
    const message = text.length > MAX_MESSAGE ? `${text.slice(0, MAX_MESSAGE - 1)}…` : text;
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
        for (const key of problems.keys()) reported.delete(`${namespace}/${name}@${resourceVersion ?? ''}/${key}`); // again on the next reload
        log.warn(
          { configMap: `${namespace}/${name}`, err: (err as Error).message },
          'could not record the rule error as a Kubernetes Event',
        );
      });
  }

  return {
    report(configMap, key, problems) {
      const { name = '', namespace = 'default', resourceVersion } = configMap.metadata ?? {};
      const fingerprint = `${namespace}/${name}@${resourceVersion ?? ''}/${key}`;
      if (reported.has(fingerprint)) return;
      if (reported.size >= MAX_REMEMBERED) reported.clear();
      reported.add(fingerprint);
      const id = `${namespace}/${name}`;
      const entry = waiting.get(id) ?? {
        configMap,
        problems: new Map<string, string[]>(),
        readyAt: Date.now() + GATHER_MS,
      };
      entry.configMap = configMap; // the newest version
      entry.problems.set(key, problems);
      waiting.set(id, entry);
      if (waiting.size > MAX_WAITING) waiting.delete(waiting.keys().next().value as string);
      later(GATHER_MS);
    },
  };
}
