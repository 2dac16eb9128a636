/**
 * An in-process fake Kubernetes API server over real HTTP (127.0.0.1), enough for the real
 * @kubernetes/client-node and the real kubectl: discovery, list and watch (label selectors, all
 * namespaces, resourceVersion history), get, create, update, delete — and fault knobs: a status for the
 * next matching requests (with headers, e.g. Retry-After), requests that are accepted and never answered,
 * an outage (every connection reset) and recovery, clean watch end, in-stream 410, socket reset, and the
 * number of open connections (to prove nothing is left waiting). A watch from a resourceVersion replays what came after
 * it, as the real server does.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';

export interface Resource {
  group: string;
  version: string;
  plural: string;
  kind: string;
  namespaced: boolean;
}

const RESOURCES: Resource[] = [
  { group: '', version: 'v1', plural: 'configmaps', kind: 'ConfigMap', namespaced: true },
  { group: '', version: 'v1', plural: 'secrets', kind: 'Secret', namespaced: true },
  { group: '', version: 'v1', plural: 'events', kind: 'Event', namespaced: true },
  { group: '', version: 'v1', plural: 'pods', kind: 'Pod', namespaced: true },
  { group: '', version: 'v1', plural: 'namespaces', kind: 'Namespace', namespaced: false },
  { group: '', version: 'v1', plural: 'nodes', kind: 'Node', namespaced: false },
  { group: 'events.k8s.io', version: 'v1', plural: 'events', kind: 'Event', namespaced: true },
  { group: 'apps', version: 'v1', plural: 'deployments', kind: 'Deployment', namespaced: true },
  { group: 'apps', version: 'v1', plural: 'replicasets', kind: 'ReplicaSet', namespaced: true },
  {
    group: 'autoscaling',
    version: 'v2',
    plural: 'horizontalpodautoscalers',
    kind: 'HorizontalPodAutoscaler',
    namespaced: true,
  },
  { group: 'batch', version: 'v1', plural: 'jobs', kind: 'Job', namespaced: true },
  { group: 'batch', version: 'v1', plural: 'cronjobs', kind: 'CronJob', namespaced: true },
];

export type KubeObject = {
  apiVersion?: string;
  kind?: string;
  metadata: {
    name: string;
    namespace?: string;
    labels?: Record<string, string>;
    resourceVersion?: string;
    uid?: string;
    [k: string]: unknown;
  };
  [k: string]: unknown;
};

interface Watcher {
  resource: Resource;
  namespace?: string;
  selector: string | null;
  res: ServerResponse;
}

interface Fault {
  method: string;
  path: RegExp;
  /** A status to answer, or `hang`: accept the request and never answer. */
  status: number | 'hang';
  remaining: number;
  headers: Record<string, string>;
}

export interface FakeKubeApi {
  url: string;
  /** A KubeConfig for @kubernetes/client-node pointing at the fake. */
  kubeConfig(): KubeConfig;
  /** Writes a kubeconfig file for kubectl and returns its path. */
  kubeconfigFile(): Promise<string>;
  /** Every request received: method, path, query. */
  requests: { method: string; path: string; query: URLSearchParams }[];
  count(method: string, path: RegExp): number;
  apply(object: KubeObject): KubeObject;
  remove(apiVersion: string, kind: string, namespace: string | undefined, name: string): void;
  get(apiVersion: string, kind: string, namespace: string | undefined, name: string): KubeObject | undefined;
  list(apiVersion: string, kind: string): KubeObject[];
  /** The next `times` requests matching method and path get `status` (with these response headers). */
  fail(method: string, path: RegExp, status: number, times?: number, headers?: Record<string, string>): void;
  /** The next `times` requests matching method and path are accepted and never answered. */
  hang(method: string, path: RegExp, times?: number): void;
  /** Drop every fault set with fail or hang. */
  clearFaults(): void;
  /** An outage: every open connection and every new request is reset, until `up()`. */
  down(): void;
  up(): void;
  /** TCP connections currently open to the server. */
  openConnections(): Promise<number>;
  watcherCount(): number;
  waitForWatchers(count: number, timeoutMs?: number): Promise<void>;
  /** End every watch cleanly (as the API server does after its timeout). */
  endWatches(): void;
  /** Send an in-stream 410 Gone to every watch, then end it. */
  expireWatches(): void;
  /** Destroy every watch socket (a network fault). */
  resetWatches(): void;
  close(): Promise<void>;
}

const apiVersionOf = (r: Resource) => (r.group ? `${r.group}/${r.version}` : r.version);
const keyOf = (r: Resource, namespace: string | undefined, name: string) =>
  `${apiVersionOf(r)}/${r.plural}/${namespace ?? ''}/${name}`;

function matchesSelector(labels: Record<string, string> | undefined, selector: string | null): boolean {
  if (!selector) return true;
  return selector.split(',').every((term) => {
    const t = term.trim();
    if (t.includes('!=')) {
      const [k, v] = t.split('!=');
      return labels?.[k] !== v;
    }
    if (t.includes('=')) {
      const [k, v] = t.split(/==?/);
      return labels?.[k] === v;
    }
    return t.startsWith('!') ? labels?.[t.slice(1)] === undefined : labels?.[t] !== undefined;
  });
}

/** extraResources: kinds served besides the built-in ones (a custom resource, say). */
export async function startFakeKubeApi({
  extraResources = [],
}: { extraResources?: Resource[] } = {}): Promise<FakeKubeApi> {
  const resources = [...RESOURCES, ...extraResources];
  const objects = new Map<string, KubeObject>();
  const history: { rv: number; type: string; resource: Resource; object: KubeObject }[] = [];
  const watchers = new Set<Watcher>();
  const faults: Fault[] = [];
  const requests: FakeKubeApi['requests'] = [];
  let rv = 100;
  let uid = 0;
  let isDown = false;

  const json = (res: ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  const statusBody = (code: number, reason: string, message: string) => ({
    kind: 'Status',
    apiVersion: 'v1',
    metadata: {},
    status: 'Failure',
    reason,
    message,
    code,
  });

  const resourceFor = (apiVersion: string, kindOrPlural: string) =>
    resources.find((r) => apiVersionOf(r) === apiVersion && (r.kind === kindOrPlural || r.plural === kindOrPlural));

  function notify(type: string, resource: Resource, object: KubeObject): void {
    history.push({ rv: Number(object.metadata.resourceVersion), type, resource, object });
    for (const w of watchers) {
      if (w.resource !== resource) continue;
      if (w.namespace && w.namespace !== object.metadata.namespace) continue;
      if (!matchesSelector(object.metadata.labels, w.selector)) continue;
      w.res.write(`${JSON.stringify({ type, object })}\n`);
    }
  }

  function apply(object: KubeObject): KubeObject {
    const resource = resourceFor(object.apiVersion ?? 'v1', object.kind ?? '');
    if (!resource) throw new Error(`fake API: unknown ${object.apiVersion} ${object.kind}`);
    const key = keyOf(
      resource,
      resource.namespaced ? (object.metadata.namespace ?? 'default') : undefined,
      object.metadata.name,
    );
    const previous = objects.get(key);
    const stored: KubeObject = structuredClone({
      ...object,
      apiVersion: apiVersionOf(resource),
      kind: resource.kind,
      metadata: {
        ...object.metadata,
        ...(resource.namespaced ? { namespace: object.metadata.namespace ?? 'default' } : {}),
        uid: previous?.metadata.uid ?? object.metadata.uid ?? `uid-${++uid}`,
        resourceVersion: String(++rv),
        creationTimestamp:
          (previous?.metadata.creationTimestamp as string | undefined) ??
          new Date().toISOString().replace(/\.\d+Z$/, 'Z'),
      },
    });
    objects.set(key, stored);
    notify(previous ? 'MODIFIED' : 'ADDED', resource, stored);
    return stored;
  }

  function remove(apiVersion: string, kind: string, namespace: string | undefined, name: string): void {
    const resource = resourceFor(apiVersion, kind)!;
    const key = keyOf(resource, namespace, name);
    const object = objects.get(key);
    if (!object) return;
    objects.delete(key);
    notify('DELETED', resource, { ...object, metadata: { ...object.metadata, resourceVersion: String(++rv) } });
  }

  function route(req: IncomingMessage, res: ServerResponse, body: string): void {
    const url = new URL(req.url ?? '/', 'http://fake');
    const method = req.method ?? 'GET';
    requests.push({ method, path: url.pathname, query: url.searchParams });
    const fault = faults.find((f) => f.method === method && f.path.test(url.pathname + url.search) && f.remaining > 0);
    if (fault) {
      fault.remaining--;
      if (fault.status === 'hang') return; // the socket stays open until the client gives up
      const reason = { 403: 'Forbidden', 410: 'Expired', 429: 'TooManyRequests' }[fault.status] ?? 'InternalError';
      res.writeHead(fault.status, { 'content-type': 'application/json', ...fault.headers });
      res.end(JSON.stringify(statusBody(fault.status, reason, `fake fault ${fault.status}`)));
      return;
    }
    const path = url.pathname.replace(/\/$/, '');
    if (path === '/version')
      return json(res, 200, { major: '1', minor: '34', gitVersion: 'v1.34.0-fake', platform: 'linux/amd64' });
    if (path === '/api')
      return json(res, 200, {
        kind: 'APIVersions',
        versions: ['v1'],
        serverAddressByClientCIDRs: [{ clientCIDR: '0.0.0.0/0', serverAddress: '127.0.0.1' }],
      });
    if (path === '/apis') {
      const groups = [...new Set(resources.filter((r) => r.group).map((r) => r.group))].map((name) => {
        const version = resources.find((r) => r.group === name)!.version;
        return {
          name,
          versions: [{ groupVersion: `${name}/${version}`, version }],
          preferredVersion: { groupVersion: `${name}/${version}`, version },
        };
      });
      return json(res, 200, { kind: 'APIGroupList', apiVersion: 'v1', groups });
    }
    if (path === '/version')
      return json(res, 200, { major: '1', minor: '32', gitVersion: 'v1.32.0-fake', platform: 'linux/amd64' });
    const m = /^\/(?:api\/(v1)|apis\/([^/]+)\/([^/]+))(?:\/namespaces\/([^/]+))?(?:\/([^/]+))?(?:\/([^/]+))?$/.exec(
      path,
    );
    if (!m)
      return json(res, 404, statusBody(404, 'NotFound', `the server could not find the requested resource (${path})`));
    const apiVersion = m[1] ?? `${m[2]}/${m[3]}`;
    let [namespace, plural, name]: (string | undefined)[] = [m[4], m[5], m[6]];
    if (!plural && namespace && !name) {
      // /api/v1/namespaces/<name> is a Namespace GET, not a namespaced collection.
      [plural, name, namespace] = ['namespaces', namespace, undefined];
    }
    if (!plural) {
      const listed = resources
        .filter((r) => apiVersionOf(r) === apiVersion)
        .map((r) => ({
          name: r.plural,
          singularName: '',
          namespaced: r.namespaced,
          kind: r.kind,
          verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'],
        }));
      return json(res, 200, { kind: 'APIResourceList', apiVersion: 'v1', groupVersion: apiVersion, resources: listed });
    }
    const resource = resourceFor(apiVersion, plural);
    if (!resource)
      return json(res, 404, statusBody(404, 'NotFound', `the server could not find the requested resource`));
    if (name) {
      const key = keyOf(resource, namespace, name);
      if (method === 'GET') {
        const object = objects.get(key);
        return object
          ? json(res, 200, object)
          : json(res, 404, statusBody(404, 'NotFound', `${resource.plural} "${name}" not found`));
      }
      if (method === 'PUT')
        return json(res, 200, apply({ ...(JSON.parse(body) as KubeObject), apiVersion, kind: resource.kind }));
      if (method === 'DELETE') {
        remove(apiVersion, resource.kind, namespace, name);
        return json(res, 200, { kind: 'Status', apiVersion: 'v1', status: 'Success' });
      }
    }
    if (method === 'POST') {
      const object = JSON.parse(body) as KubeObject;
      if (!object.metadata.name && typeof object.metadata.generateName === 'string')
        object.metadata.name = `${object.metadata.generateName}${Math.random().toString(36).slice(2, 7)}`;
      return json(
        res,
        201,
        apply({
          ...object,
          apiVersion,
          kind: resource.kind,
          metadata: { ...object.metadata, namespace: namespace ?? object.metadata.namespace },
        }),
      );
    }
    const selector = url.searchParams.get('labelSelector');
    const inScope = (o: KubeObject) =>
      (!namespace || o.metadata.namespace === namespace) && matchesSelector(o.metadata.labels, selector);
    if (url.searchParams.get('watch') === 'true' || url.searchParams.get('watch') === '1') {
      res.writeHead(200, { 'content-type': 'application/json', 'transfer-encoding': 'chunked' });
      res.flushHeaders();
      const from = Number(url.searchParams.get('resourceVersion') ?? 0);
      for (const h of history) {
        if (h.rv > from && h.resource === resource && inScope(h.object))
          res.write(`${JSON.stringify({ type: h.type, object: h.object })}\n`);
      }
      const watcher: Watcher = { resource, namespace, selector, res };
      watchers.add(watcher);
      res.on('close', () => watchers.delete(watcher));
      return;
    }
    const items = [...objects.entries()]
      .filter(([k]) => k.startsWith(`${apiVersion}/${resource.plural}/`))
      .map(([, o]) => o)
      .filter(inScope);
    return json(res, 200, {
      kind: `${resource.kind}List`,
      apiVersion,
      metadata: { resourceVersion: String(rv) },
      items,
    });
  }

  const server: Server = createServer((req, res) => {
    if (isDown) return void req.socket.destroy();
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => route(req, res, Buffer.concat(chunks).toString('utf8')));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;

  const fake: FakeKubeApi = {
    url,
    kubeConfig() {
      const kc = new KubeConfig();
      kc.loadFromOptions({
        clusters: [{ name: 'fake', server: url, skipTLSVerify: true }],
        users: [{ name: 'fake', token: 'fake-token' }],
        contexts: [{ name: 'fake', cluster: 'fake', user: 'fake', namespace: 'observability' }],
        currentContext: 'fake',
      });
      return kc;
    },
    async kubeconfigFile() {
      const dir = await mkdtemp(join(tmpdir(), 'fake-kube-'));
      const file = join(dir, 'kubeconfig');
      await writeFile(
        file,
        `apiVersion: v1\nkind: Config\nclusters: [{name: fake, cluster: {server: "${url}", insecure-skip-tls-verify: true}}]\nusers: [{name: fake, user: {token: fake-token}}]\ncontexts: [{name: fake, context: {cluster: fake, user: fake, namespace: observability}}]\ncurrent-context: fake\n`,
      );
      return file;
    },
    requests,
    count: (method, path) => requests.filter((r) => r.method === method && path.test(r.path)).length,
    apply,
    remove,
    get: (apiVersion, kind, namespace, name) => objects.get(keyOf(resourceFor(apiVersion, kind)!, namespace, name)),
    list: (apiVersion, kind) => [...objects.values()].filter((o) => o.apiVersion === apiVersion && o.kind === kind),
    fail: (method, path, status, times = 1, headers = {}) =>
      void faults.push({ method, path, status, remaining: times, headers }),
    hang: (method, path, times = Number.POSITIVE_INFINITY) =>
      void faults.push({ method, path, status: 'hang', remaining: times, headers: {} }),
    clearFaults: () => void faults.splice(0),
    down() {
      isDown = true;
      for (const w of watchers) w.res.destroy();
      server.closeAllConnections();
    },
    up() {
      isDown = false;
    },
    openConnections: () =>
      new Promise((resolve, reject) => server.getConnections((err, count) => (err ? reject(err) : resolve(count)))),
    watcherCount: () => watchers.size,
    async waitForWatchers(count, timeoutMs = 5000) {
      const end = Date.now() + timeoutMs;
      while (watchers.size < count) {
        if (Date.now() > end) throw new Error(`waited for ${count} watches, have ${watchers.size}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    },
    endWatches: () => [...watchers].forEach((w) => w.res.end()),
    expireWatches: () =>
      [...watchers].forEach((w) => {
        w.res.write(
          `${JSON.stringify({ type: 'ERROR', object: statusBody(410, 'Expired', 'too old resource version') })}\n`,
        );
        w.res.end();
      }),
    resetWatches: () => [...watchers].forEach((w) => w.res.destroy()),
    async close() {
      for (const w of watchers) w.res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  return fake;
}
