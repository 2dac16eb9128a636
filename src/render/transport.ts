/**
 * A destination's transport: the TLS material it trusts and presents, and the proxy it goes through
 * (README: Networks). Compiled at load; resolved per request from Secrets, ConfigMaps or files, each
 * cached for SECRET_CACHE_SECONDS, so a rotation is picked up without a restart. The resolved material
 * is identified by its hash: the sender pools one agent per hash, so a rotation opens a new pool.
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { createSecureContext } from 'node:tls';
import { ConfigurationError } from '../errors.js';
import { knownSecrets } from '../redact.js';
import type { DestinationSpec, MaterialSource } from '../rules/document.js';
import type { SecretReader } from './value-source.js';

export interface CompiledTransport {
  tls?: { ca?: MaterialSource; cert?: MaterialSource; key?: MaterialSource; servername?: string; insecure: boolean };
  proxy?: { url: string; host: string; username?: MaterialSource; password?: MaterialSource };
  /** The last resolution, reused while every value read is unchanged (the hash and the check run once per rotation). */
  last?: { values: (string | undefined)[]; transport: Transport };
}

/** The transport of one request, as the sender needs it. */
export interface Transport {
  /** Hash of everything below: equal hashes share a connection pool. */
  hash: string;
  /** The destination it belongs to (its compiled transport): a new hash for the same owner is a rotation. */
  owner: object;
  tls?: { ca?: string; cert?: string; key?: string; servername?: string; rejectUnauthorized: boolean };
  /** `host`: the proxy's host and port, the only part of it output may name. */
  proxy?: { uri: string; host: string; token?: string };
}

/** Where material is read: a team's rules get readers of their own namespace, and no files. */
export interface MaterialReaders {
  secrets: SecretReader;
  configMaps: SecretReader;
  files: boolean;
}

export const NO_CLUSTER_CONFIGMAPS: SecretReader = {
  async read(name, key) {
    throw new ConfigurationError(
      `configMapKeyRef ${name}/${key}: no Kubernetes cluster is configured, so ConfigMaps cannot be read (use {file: PATH} for local runs)`,
    );
  },
};

/** compileTransport checks what can be checked at load; undefined when the destination has neither tls nor proxy. */
export function compileTransport(spec: DestinationSpec): CompiledTransport | undefined {
  if (!spec.tls && !spec.proxy) return undefined;
  const compiled: CompiledTransport = {};
  if (spec.tls) {
    const { ca, clientCert, clientKey, serverName, insecureSkipVerify } = spec.tls;
    compiled.tls = {
      ca,
      cert: clientCert,
      key: clientKey,
      servername: serverName,
      insecure: insecureSkipVerify === true,
    };
  }
  if (spec.proxy) {
    let url: URL;
    try {
      url = new URL(spec.proxy.url);
    } catch {
      throw new Error(`proxy.url: ${JSON.stringify(spec.proxy.url)} is not a URL`);
    }
    if (url.username || url.password)
      throw new Error(
        'proxy.url: must not carry credentials (give them with proxy.username and proxy.password, from a Secret)',
      );
    if (url.protocol !== 'http:' && url.protocol !== 'https:')
      throw new Error(`proxy.url: ${url.protocol} proxies are not supported (http: or https:)`);
    compiled.proxy = { url: url.origin, host: url.host, username: spec.proxy.username, password: spec.proxy.password };
  }
  return compiled;
}

/** resolveTransport reads the material for one request (cached by the readers) and gives the transport. */
export async function resolveTransport(
  compiled: CompiledTransport,
  destination: string,
  readers: MaterialReaders,
): Promise<Transport> {
  const { tls, proxy } = compiled;
  const read = (what: string, source: MaterialSource | undefined) =>
    source ? readMaterial(source, `destination ${destination} ${what}`, readers) : undefined;
  const values = await Promise.all([
    read('tls.ca', tls?.ca),
    read('tls.clientCert', tls?.cert),
    read('tls.clientKey', tls?.key),
    read('proxy.username', proxy?.username),
    read('proxy.password', proxy?.password),
  ]);
  const last = compiled.last;
  if (last && last.values.every((value, i) => value === values[i])) return last.transport;
  const [ca, cert, key, username, password] = values;
  if (key !== undefined) knownSecrets.remember(key);
  const transport: Transport = { hash: '', owner: compiled };
  if (tls) {
    transport.tls = { ca, cert, key, servername: tls.servername, rejectUnauthorized: !tls.insecure };
    checkTlsMaterial(destination, transport.tls);
  }
  if (proxy) {
    const token =
      username !== undefined && password !== undefined
        ? `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`
        : undefined;
    if (token)
      for (const credential of [username!, password!, token, token.slice('Basic '.length)])
        knownSecrets.remember(credential);
    transport.proxy = { uri: proxy.url, host: proxy.host, token };
  }
  transport.hash = createHash('sha256')
    .update(JSON.stringify([transport.tls, transport.proxy]))
    .digest('hex');
  compiled.last = { values, transport };
  return transport;
}

/**
 * checkTlsMaterial builds the TLS context once per new material, so a malformed PEM or a key that does not
 * match its certificate is a precise, permanent error of the action instead of a failed connection.
 */
function checkTlsMaterial(destination: string, tls: NonNullable<Transport['tls']>): void {
  try {
    createSecureContext({ ca: tls.ca, cert: tls.cert, key: tls.key });
  } catch (err) {
    const detail = (err as Error).message.replace(/^error:[0-9A-F]+:/i, '');
    const which = /key values mismatch/i.test(detail)
      ? 'tls.clientCert and tls.clientKey do not belong together'
      : `tls material is not valid PEM (${detail})`;
    throw new ConfigurationError(`destination ${destination}: ${which}`);
  }
}

async function readMaterial(source: MaterialSource, what: string, readers: MaterialReaders): Promise<string> {
  try {
    if ('secretKeyRef' in source)
      return (await readers.secrets.read(source.secretKeyRef.name, source.secretKeyRef.key)).trim();
    if ('configMapKeyRef' in source)
      return (await readers.configMaps.read(source.configMapKeyRef.name, source.configMapKeyRef.key)).trim();
    if (!readers.files)
      throw new ConfigurationError(
        `{ file } is not allowed in a team's rules; use a secretKeyRef or configMapKeyRef of the team's namespace`,
      );
    return await readMaterialFile(source.file);
  } catch (err) {
    if (err instanceof Error) err.message = `${what}: ${err.message}`;
    throw err;
  }
}

/** Files (a mounted Secret for local runs) are re-read after this long, like a Secret. */
const FILE_TTL_MS = 30_000;
const files = new Map<string, { value: Promise<string>; readAt: number }>();

function readMaterialFile(path: string): Promise<string> {
  const cached = files.get(path);
  if (cached && Date.now() - cached.readAt < FILE_TTL_MS) return cached.value;
  const value = readFile(path, 'utf8').then(
    (text) => text.trim(),
    (err: NodeJS.ErrnoException) => {
      files.delete(path);
      throw new ConfigurationError(`cannot read file ${path} (${err.code ?? err.message})`);
    },
  );
  files.set(path, { value, readAt: Date.now() });
  return value;
}
