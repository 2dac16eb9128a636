/**
 * watchRuleConfigMaps loads the rule documents of every ConfigMap that carries the rules label, in all
 * namespaces or a given list, and follows adds, edits and deletes. Each data key is one source of the
 * RuleStore (`configmap:<namespace>/<name>/<key>`). ConfigMaps outside the cluster namespaces belong to a
 * team: their rules only see events of their namespace (and their Secrets are read there). Every problem
 * of a key — its own, or the tenancy policy's verdict caused by another source — becomes a Warning Event
 * on its ConfigMap.
 */
import { CoreV1Api, type V1ConfigMap } from '@kubernetes/client-node';
import { abortingConfiguration } from '../kube/aborting-configuration.js';
import type { KubeConnection } from '../kube/connect.js';
import { startResilientInformer, type ResilientInformer } from '../kube/resilient-informer.js';
import type { RuleErrorReporter } from '../kube/warning-events.js';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import type { RuleStore } from './rule-store.js';
import { SHADOW_LABEL } from '../match/shadow.js';

export interface ConfigMapRulesOptions {
  selector: string;
  /** Namespaces to watch; empty = all. */
  namespaces: string[];
  /** Namespaces whose rules apply to all events. */
  clusterNamespaces: ReadonlySet<string>;
  relistAfterMs: number;
  /** The list request's deadline (KUBE_TIMEOUT_SECONDS). */
  requestTimeoutMs: number;
  /** Most rule documents (data keys, all its ConfigMaps together) of one team namespace (TEAM_MAX_DOCUMENTS). */
  teamMaxDocuments?: number;
}

export interface ConfigMapRules {
  synced: Promise<void>;
  stop(): Promise<void>;
}

export function watchRuleConfigMaps(
  connection: KubeConnection,
  store: RuleStore,
  reporter: RuleErrorReporter,
  options: ConfigMapRulesOptions,
  log: Logger,
  metrics: Metrics,
): ConfigMapRules {
  // A list the API server accepts and never answers is aborted, so the informer restarts instead of hanging.
  const core = new CoreV1Api(abortingConfiguration(connection.kc, options.requestTimeoutMs));
  const sourcePrefix = (cm: V1ConfigMap) => `configmap:${cm.metadata?.namespace}/${cm.metadata?.name}/`;
  /** The newest version of every rule ConfigMap, by source prefix: where a source's problems are reported. */
  const configMaps = new Map<string, V1ConfigMap>();
  store.onProblems((source, problems) => {
    const key = source.slice(source.lastIndexOf('/') + 1);
    const cm = configMaps.get(source.slice(0, source.length - key.length));
    if (cm) reporter.report(cm, key, problems);
  });

  function onChange(type: 'add' | 'update' | 'delete', cm: V1ConfigMap): void {
    const prefix = sourcePrefix(cm);
    if (type === 'delete') configMaps.delete(prefix);
    else configMaps.set(prefix, cm);
    const data = type === 'delete' ? {} : (cm.data ?? {});
    for (const source of store.sourceNames()) {
      if (source.startsWith(prefix) && !(source.slice(prefix.length) in data)) {
        store.remove(source);
        log.info({ source }, 'rule document removed');
      }
    }
    const namespace = cm.metadata?.namespace ?? 'default';
    const scope = options.clusterNamespaces.has(namespace) ? undefined : namespace;
    for (const [key, text] of withinDocumentQuota(cm, prefix, data, scope)) {
      store.setShadow(`${prefix}${key}`, cm.metadata?.labels?.[SHADOW_LABEL] === 'true');
      // In the background: a large ConfigMap is parsed off the event loop; its problems reach the store's listeners.
      void store.updateInBackground(`${prefix}${key}`, text, scope).then((problems) => {
        if (problems.length === 0)
          log.info({ source: `${prefix}${key}`, scope: scope ?? 'cluster' }, 'rule document loaded');
      });
    }
  }

  /**
   * withinDocumentQuota: a team namespace's data keys up to TEAM_MAX_DOCUMENTS (its other ConfigMaps'
   * documents first, then this one's in key order). The keys beyond are never loaded — no source, no
   * metric series — and the ConfigMap gets one Warning Event that says so, not one per key.
   */
  function withinDocumentQuota(
    cm: V1ConfigMap,
    prefix: string,
    data: Record<string, string>,
    scope: string | undefined,
  ): [string, string][] {
    const entries = Object.entries(data).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const limit = options.teamMaxDocuments;
    if (scope === undefined || limit === undefined) return entries;
    const namespacePrefix = `configmap:${scope}/`;
    const others = store.sourceNames().filter((s) => s.startsWith(namespacePrefix) && !s.startsWith(prefix)).length;
    const room = Math.max(0, limit - others);
    if (entries.length <= room) return entries;
    const dropped = entries.slice(room).map(([key]) => key);
    for (const key of dropped) if (store.sourceNames().includes(`${prefix}${key}`)) store.remove(`${prefix}${key}`);
    const problem = `namespace ${scope} would have ${others + entries.length} rule documents; at most ${limit} are allowed per team namespace (TEAM_MAX_DOCUMENTS): ${dropped.length} key(s) not loaded (${dropped.slice(0, 5).join(', ')}${dropped.length > 5 ? ', …' : ''})`;
    log.error({ configMap: prefix, problem }, 'rule documents over the namespace quota not loaded');
    reporter.report(cm, dropped[0], [problem]);
    return entries.slice(0, room);
  }

  const watches =
    options.namespaces.length === 0
      ? [
          {
            name: 'rule-configmaps',
            path: '/api/v1/configmaps',
            list: () => core.listConfigMapForAllNamespaces({ labelSelector: options.selector }),
          },
        ]
      : options.namespaces.map((namespace) => ({
          name: `rule-configmaps-${namespace}`,
          path: `/api/v1/namespaces/${namespace}/configmaps`,
          list: () => core.listNamespacedConfigMap({ namespace, labelSelector: options.selector }),
        }));
  const informers: ResilientInformer[] = watches.map((watch) =>
    startResilientInformer<V1ConfigMap>({
      ...watch,
      kc: connection.kc,
      labelSelector: options.selector,
      onChange,
      log,
      metrics,
      relistAfterMs: options.relistAfterMs,
    }),
  );
  return {
    synced: Promise.all(informers.map((i) => i.synced)).then(() => undefined),
    stop: async () => {
      await Promise.all(informers.map((i) => i.stop()));
    },
  };
}
