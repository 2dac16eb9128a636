/**
 * Everything that needs @kubernetes/client-node, in one module that the service imports only when a
 * cluster is configured: the library alone costs ~75 MB of memory and ~0.3 s of start-up
 * (docs/performance.md), which the embedded default and the CLI do not need to pay.
 */
export { createKubeCluster } from '../enrich/kube-cluster.js';
export { watchRuleConfigMaps } from '../rules/watch-configmaps.js';
export { createRuleErrorReporter } from './warning-events.js';
export { watchEvents } from '../receive/watch-events.js';
export { TokenBucket } from './token-bucket.js';
