/**
 * Knative's ApiServerSource receive adapter (test/cluster/adapter, built by test/cluster/build.sh), started
 * with the environment Knative's ApiServerSource controller gives its Deployment for deploy/knative's
 * source: Events in all namespaces, the given mode, the sink, and the source's own ServiceAccount.
 */
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { binary } from './cluster.js';

export interface Adapter {
  name: string;
  log: string;
  /** SIGSTOP / SIGCONT: the adapter frozen, as a process starved or a node paused would be. */
  pause(): void;
  resume(): void;
  stop(): Promise<void>;
}

export function startAdapter(options: {
  mode: 'Resource' | 'Reference';
  sink: string;
  kubeconfig: string;
  namespace: string;
  name: string;
  logDir: string;
}): Adapter {
  const sourceConfig = {
    namespaces: [],
    allNamespaces: true, // namespaceSelector: {}
    resources: [{ gvr: { Group: '', Version: 'v1', Resource: 'events' } }],
    mode: options.mode,
  };
  const log = join(options.logDir, `adapter-${options.name}.log`);
  const out = createWriteStream(log);
  const child = spawn(binary('apiserver-receive-adapter'), [], {
    env: {
      PATH: process.env.PATH ?? '',
      KUBECONFIG: options.kubeconfig,
      K_SINK: options.sink,
      K_SOURCE_CONFIG: JSON.stringify(sourceConfig),
      SYSTEM_NAMESPACE: 'knative-eventing',
      NAMESPACE: options.namespace,
      NAME: options.name,
      METRICS_DOMAIN: 'knative.dev/eventing',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.pipe(out);
  child.stderr.pipe(out);
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    name: options.name,
    log,
    pause: () => child.kill('SIGSTOP'),
    resume: () => child.kill('SIGCONT'),
    async stop() {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(killer);
    },
  };
}
