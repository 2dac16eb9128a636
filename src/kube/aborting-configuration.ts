import { ServerConfiguration, createConfiguration, type Configuration, type KubeConfig } from '@kubernetes/client-node';

/**
 * abortingConfiguration: client-node has no request timeout, and a timed-out promise alone leaves the
 * request (and its socket) open for as long as the server keeps it — so every request carries an
 * AbortSignal that fires at the deadline.
 */
export function abortingConfiguration(kc: KubeConfig, timeoutMs: number): Configuration {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new Error('kubeconfig has no current cluster');
  return createConfiguration({
    baseServer: new ServerConfiguration(cluster.server, {}),
    authMethods: { default: kc },
    promiseMiddleware: [
      {
        pre: async (context) => {
          context.setSignal(AbortSignal.timeout(timeoutMs));
          return context;
        },
        post: async (response) => response,
      },
    ],
  });
}
