/**
 * A real kube-apiserver on an embedded etcd (test/cluster/apiserver, built by test/cluster/build.sh),
 * driven through the real kubectl. Restartable on the same state directory and port: certificates,
 * ServiceAccount tokens and stored objects survive, as on a real control-plane restart.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { closedPort } from '../../support/ports.js';

export const root = new URL('../../../', import.meta.url).pathname;
export const binDir = join(root, '.cache', 'cluster');

export interface KubectlResult {
  status: number;
  stdout: string;
  stderr: string;
}

export interface TestCluster {
  dir: string;
  server: string;
  adminKubeconfig: string;
  /** kubectl as the admin (or with `kubeconfig`); throws with kubectl's stderr when it fails. */
  kubectl(args: string[], options?: { input?: string; kubeconfig?: string }): string;
  /** kubectl without throwing: for the answers that are meant to be refusals. */
  tryKubectl(args: string[], options?: { input?: string; kubeconfig?: string }): KubectlResult;
  /** A kubeconfig holding a fresh TokenRequest token of that ServiceAccount, and nothing else. */
  serviceAccountKubeconfig(namespace: string, name: string): Promise<string>;
  /** Stops the API server and etcd (SIGTERM), keeping the state directory. */
  stop(): Promise<void>;
  /** Starts them again on the same state directory and port. */
  start(): Promise<void>;
  /** Stops and removes the state directory. */
  destroy(): Promise<void>;
}

export function binary(name: string): string {
  const path = join(binDir, name);
  if (!existsSync(path)) throw new Error(`${path} is missing: run test/cluster/build.sh (npm run test:cluster does)`);
  return path;
}

export async function startCluster(): Promise<TestCluster> {
  const dir = await mkdtemp(join(tmpdir(), 'ker-cluster-'));
  const port = await closedPort();
  const server = `https://127.0.0.1:${port}`;
  const adminKubeconfig = join(dir, 'admin.kubeconfig');
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();

  const start = async () => {
    const log = createWriteStream(join(dir, 'apiserver.log'), { flags: 'a' });
    const proc = spawn(binary('test-apiserver'), ['--dir', dir, '--port', String(port)], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child = proc;
    proc.stderr.pipe(log);
    exited = new Promise((resolve) => proc.once('exit', () => resolve()));
    const lines = createInterface({ input: proc.stdout });
    await new Promise<void>((resolve, reject) => {
      // Start-up runs etcd, the API server's post-start hooks and RBAC bootstrap: seconds, more on a loaded machine.
      const timer = setTimeout(
        () => reject(new Error(`the API server was not ready within 180 s; see ${dir}/apiserver.log`)),
        180_000,
      );
      lines.on('line', (line) => {
        if (line.startsWith('ready')) {
          clearTimeout(timer);
          resolve();
        }
      });
      proc.once('exit', (code) => {
        clearTimeout(timer);
        reject(new Error(`the API server exited with ${code}: ${tail(join(dir, 'apiserver.log'))}`));
      });
    });
  };

  const stop = async () => {
    if (!child || child.exitCode !== null) return;
    child.kill('SIGTERM');
    const killer = setTimeout(() => child?.kill('SIGKILL'), 30_000);
    await exited;
    clearTimeout(killer);
  };

  const tryKubectl = (args: string[], options: { input?: string; kubeconfig?: string } = {}): KubectlResult => {
    const result = spawnSync('kubectl', ['--kubeconfig', options.kubeconfig ?? adminKubeconfig, ...args], {
      input: options.input,
      encoding: 'utf8',
      timeout: 60_000,
    });
    return {
      status: result.status ?? -1,
      stdout: result.stdout ?? '',
      stderr: result.stderr ?? String(result.error ?? ''),
    };
  };
  const kubectl = (args: string[], options: { input?: string; kubeconfig?: string } = {}): string => {
    const result = tryKubectl(args, options);
    if (result.status !== 0) throw new Error(`kubectl ${args.join(' ')} failed (${result.status}): ${result.stderr}`);
    return result.stdout;
  };

  await start();
  return {
    dir,
    server,
    adminKubeconfig,
    kubectl,
    tryKubectl,
    async serviceAccountKubeconfig(namespace, name) {
      const token = kubectl(['create', 'token', name, '-n', namespace, '--duration', '2h']).trim();
      const ca = readFileSync(join(dir, 'pki', 'ca.crt')).toString('base64');
      const file = join(dir, `${namespace}.${name}.kubeconfig`);
      await writeFile(
        file,
        [
          'apiVersion: v1',
          'kind: Config',
          `clusters: [{ name: test, cluster: { server: "${server}", certificate-authority-data: ${ca} } }]`,
          `users: [{ name: ${name}, user: { token: ${token} } }]`,
          `contexts: [{ name: ${name}, context: { cluster: test, user: ${name}, namespace: ${namespace} } }]`,
          `current-context: ${name}`,
          '',
        ].join('\n'),
        { mode: 0o600 },
      );
      return file;
    },
    stop,
    start,
    async destroy() {
      await stop();
      // KEEP_CLUSTER_STATE=1 keeps the logs (apiserver.log, adapter-*.log) and etcd data for a look after a failure.
      if (process.env.KEEP_CLUSTER_STATE !== '1') await rm(dir, { recursive: true, force: true });
    },
  };
}

function tail(file: string): string {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-20).join('\n');
  } catch {
    return '(no log)';
  }
}
