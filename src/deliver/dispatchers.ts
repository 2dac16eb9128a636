/**
 * Which connection pool carries a request. Plain destinations share one pooled keep-alive agent (through
 * HTTP_PROXY / HTTPS_PROXY unless NO_PROXY says otherwise); a destination with TLS material or its own proxy
 * gets an agent per hash of that material, so its connections are reused across requests and a rotated
 * Secret (a new hash) opens a new pool while the old one is closed once its requests are done.
 */
import { Agent, EnvHttpProxyAgent, ProxyAgent, buildConnector, type Dispatcher } from 'undici';
import type { ConnectionOptions } from 'node:tls';
import type { Transport } from '../render/transport.js';
import { knownSecrets } from '../redact.js';

/** The proxy settings of the environment, with their usual meaning (lower case wins, as in curl). */
export interface EnvProxies {
  httpProxy: string;
  httpsProxy: string;
  noProxy: string;
}

export function envProxies(env: Record<string, string | undefined>): EnvProxies | undefined {
  const httpProxy = env.http_proxy ?? env.HTTP_PROXY ?? '';
  const httpsProxy = env.https_proxy ?? env.HTTPS_PROXY ?? '';
  if (!httpProxy && !httpsProxy) return undefined;
  // A proxy URL may carry credentials: they must never reach output.
  for (const uri of [httpProxy, httpsProxy]) if (uri) rememberCredentials(uri);
  return { httpProxy, httpsProxy, noProxy: env.no_proxy ?? env.NO_PROXY ?? '' };
}

function rememberCredentials(uri: string): void {
  try {
    const { username, password } = new URL(uri);
    if (password) knownSecrets.remember(decodeURIComponent(password));
    if (username && password)
      knownSecrets.remember(
        Buffer.from(`${decodeURIComponent(username)}:${decodeURIComponent(password)}`).toString('base64'),
      );
  } catch {
    knownSecrets.remember(uri); // not a URL: undici refuses it; never print it
  }
}

/**
 * A TLS alert the server sent after the handshake (TLS 1.3 refuses a missing or untrusted client certificate
 * only then) reaches the HTTP client as "other side closed"; the socket saw the alert first. Kept by local
 * port for the moment between the two, so the failure can say what happened.
 */
const tlsAlerts = new Map<number, string>();
const TLS_ALERTS_KEPT = 256;

function alertRecordingConnector(tls: ConnectionOptions | undefined): buildConnector.connector {
  const connect = buildConnector({ ...tls });
  return (options, callback) =>
    connect(options, (...args) => {
      const socket = args[1];
      socket?.on('error', (err: NodeJS.ErrnoException) => {
        if (!err.code?.startsWith('ERR_SSL_') || socket.localPort === undefined) return;
        tlsAlerts.set(socket.localPort, err.code);
        if (tlsAlerts.size > TLS_ALERTS_KEPT) tlsAlerts.delete(tlsAlerts.keys().next().value!);
      });
      callback(...args);
    });
}

/** tlsAlertOf: the TLS alert behind a closed-socket error, as an error with its code; undefined when there was none. */
export function tlsAlertOf(err: unknown): NodeJS.ErrnoException | undefined {
  const { code, socket } = err as { code?: string; socket?: { localPort?: number } };
  if (code !== 'UND_ERR_SOCKET' || socket?.localPort === undefined) return undefined;
  const alert = tlsAlerts.get(socket.localPort);
  if (!alert) return undefined;
  tlsAlerts.delete(socket.localPort);
  return Object.assign(new Error(alert), { code: alert });
}

/** http URLs go to a proxy in forward-proxy form (what every proxy accepts); https ones by a CONNECT tunnel. */
const FORWARD_HTTP = { proxyTunnel: false } as object;

/** A pool no request used for this long is closed (a destination removed by a rule reload). */
const IDLE_MS = 10 * 60_000;

export interface Dispatchers {
  /** The dispatcher for a request with this transport (none: the shared one). */
  for(transport: Transport | undefined): Dispatcher;
  /** How many per-transport pools are open (for tests and /status). */
  readonly pools: number;
  close(): Promise<void>;
}

export function createDispatchers(agentOptions: Agent.Options, env: Record<string, string | undefined>): Dispatchers {
  const proxies = envProxies(env);
  const shared: Dispatcher = proxies
    ? new EnvHttpProxyAgent({
        ...agentOptions,
        ...proxies,
        ...FORWARD_HTTP,
        connect: alertRecordingConnector(undefined),
      })
    : new Agent({ ...agentOptions, connect: alertRecordingConnector(undefined) });
  const pools = new Map<string, { dispatcher: Dispatcher; owners: number; usedAt: number }>();
  /** Each destination's current pool: a different hash for the same destination is a rotation. */
  const current = new WeakMap<object, string>();

  function build(transport: Transport): Dispatcher {
    const tls: ConnectionOptions | undefined =
      transport.tls && Object.fromEntries(Object.entries(transport.tls).filter(([, v]) => v !== undefined));
    if (transport.proxy) {
      // The destination's own proxy: https by a CONNECT tunnel (TLS end to end), http in forward-proxy form.
      return new ProxyAgent({
        ...agentOptions,
        ...FORWARD_HTTP,
        uri: transport.proxy.uri,
        token: transport.proxy.token,
        requestTls: tls,
      });
    }
    if (proxies)
      return new EnvHttpProxyAgent({
        ...agentOptions,
        ...proxies,
        ...FORWARD_HTTP,
        connect: alertRecordingConnector(tls),
        requestTls: tls,
      });
    return new Agent({ ...agentOptions, connect: alertRecordingConnector(tls) });
  }

  function release(hash: string): void {
    const pool = pools.get(hash);
    if (!pool || --pool.owners > 0) return;
    pools.delete(hash);
    void pool.dispatcher.close().catch(() => undefined); // waits for the requests it carries
  }

  function closeIdle(now: number): void {
    for (const [hash, pool] of pools) {
      if (now - pool.usedAt < IDLE_MS) continue;
      pools.delete(hash);
      void pool.dispatcher.close().catch(() => undefined);
    }
  }

  return {
    for(transport) {
      if (!transport) return shared;
      const now = Date.now();
      let pool = pools.get(transport.hash);
      if (!pool) {
        closeIdle(now);
        pool = { dispatcher: build(transport), owners: 0, usedAt: now };
        pools.set(transport.hash, pool);
      }
      const previous = current.get(transport.owner);
      if (previous !== transport.hash) {
        current.set(transport.owner, transport.hash);
        pool.owners++;
        if (previous !== undefined) release(previous);
      }
      pool.usedAt = now;
      return pool.dispatcher;
    },
    get pools() {
      return pools.size;
    },
    async close() {
      await Promise.all([shared.close(), ...[...pools.values()].map((pool) => pool.dispatcher.close())]);
      pools.clear();
    },
  };
}
