/**
 * renderRequest builds the HTTP request of one action: URL, method, headers (literal, JSONata, env or
 * Secret values; a preset's first) and the JSON body from the action's JSONata template or preset
 * (default: the normalized Event), with `fields` set on top.
 */
import type { CompiledAction } from '../rules/compiled-rule.js';
import { ConfigurationError } from '../errors.js';
import { resolveField, resolveValue, type ResolveContext } from './value-source.js';
import { REDACTED, knownSecrets } from '../redact.js';
import { NO_CLUSTER_CONFIGMAPS, resolveTransport } from './transport.js';
import type { RenderedRequest } from './rendered-request.js';

export type { RenderedRequest };

export async function renderRequest(action: CompiledAction, context: ResolveContext): Promise<RenderedRequest> {
  const { destination } = action;
  const { body, secretFields } = await renderBody(action, context);
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  const secretHeaders: string[] = [];
  for (const [name, source] of [...action.presetHeaders, ...destination.headers]) {
    const resolved = await resolveValue(source, `destination ${destination.name} header ${name}`, context);
    if (!resolved) continue; // an expression with no value for this event leaves the header out
    checkHeaderValue(destination.name, name, resolved);
    headers[name.toLowerCase()] = resolved.value;
    if (resolved.secret) secretHeaders.push(name.toLowerCase());
  }
  const url = destination.url
    ? await resolveValue(destination.url, `destination ${destination.name} url`, context)
    : { value: '', secret: false };
  if (!url)
    throw new ConfigurationError(`destination ${destination.name} url: the expression gave no value for this event`);
  if (url.secret) knownSecrets.rememberUrl(url.value);
  const rendered: RenderedRequest = {
    method: destination.method,
    url: url.value,
    headers,
    body,
    secretHeaders,
    secretUrl: url.secret,
    secretFields,
  };
  if (destination.transport) {
    if (destination.transport.tls && !/^https:/i.test(url.value))
      throw new ConfigurationError(`destination ${destination.name}: tls is set but the URL is not https`);
    const readers = {
      secrets: context.secrets,
      configMaps: context.configMaps ?? NO_CLUSTER_CONFIGMAPS,
      files: context.files === true,
    };
    rendered.transport = await resolveTransport(destination.transport, destination.name, readers);
  }
  return rendered;
}

/** What an HTTP header value may hold (the HTTP client's own check): tab, visible ASCII, and bytes 0x80–0xFF. */
const INVALID_HEADER_CHAR = /[^\t\x20-\x7e\x80-\xff]/;

/**
 * checkHeaderValue refuses a value the HTTP client would refuse, before sending: a CR/LF taken from event
 * data is a permanent error of this event with a message that says so, not a failed delivery.
 */
function checkHeaderValue(destination: string, header: string, resolved: { value: string; secret: boolean }): void {
  const bad = INVALID_HEADER_CHAR.exec(resolved.value);
  if (!bad) return;
  const code = bad[0].charCodeAt(0);
  const what =
    code === 0x0d
      ? 'a carriage return (CR)'
      : code === 0x0a
        ? 'a line feed (LF)'
        : `the character U+${code.toString(16).toUpperCase().padStart(4, '0')}`;
  const shown = resolved.secret
    ? ''
    : ` ${JSON.stringify(resolved.value.length > 60 ? `${resolved.value.slice(0, 60)}…` : resolved.value)}`;
  throw new ConfigurationError(
    `destination ${destination} header ${header}: the value${shown} holds ${what} at position ${bad.index}, which an HTTP header cannot carry`,
  );
}

/** renderBody: the body template's JSON (one serialization when there are no fields to set). */
async function renderBody(
  action: CompiledAction,
  context: ResolveContext,
): Promise<{ body: string; secretFields: string[] }> {
  if (action.fields.length === 0) {
    return {
      body: action.body
        ? await action.body.render(context.input, context.bindings, context.deadline)
        : JSON.stringify(context.input),
      secretFields: [],
    };
  }
  const body = action.body
    ? await action.body.evaluate(context.input, context.bindings, context.deadline)
    : structuredClone(context.input);
  const secretFields: string[] = [];
  for (const [path, source] of action.fields) {
    const resolved = await resolveField(source, `field ${path}`, context);
    if (!resolved) continue;
    // A body that is a list (Alertmanager alerts) gets the field on every element.
    for (const target of Array.isArray(body) && !/^\d/.test(path) ? body : [body])
      setPath(target, path, resolved.value);
    if (resolved.secret) secretFields.push(path);
  }
  return { body: JSON.stringify(body), secretFields };
}

/** setPath sets a dotted path ("payload.severity", "0.labels.team"), creating objects on the way. */
function setPath(target: unknown, path: string, value: unknown): void {
  const keys = path.split('.');
  let node = target as Record<string, unknown>;
  for (const key of keys.slice(0, -1)) {
    if (key === '__proto__' || key === 'constructor' || key === 'prototype') return;
    if (typeof node[key] !== 'object' || node[key] === null) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  const last = keys[keys.length - 1];
  if (last !== '__proto__' && last !== 'constructor' && last !== 'prototype') node[last] = value;
}

/** redacted gives a copy safe to print: secret header values, secret URLs and secret bodies replaced. */
export function redacted(request: RenderedRequest): {
  method: string;
  url?: string;
  headers: Record<string, string>;
  body: unknown;
} {
  const headers = { ...request.headers };
  for (const name of request.secretHeaders) headers[name] = REDACTED;
  if (request.secretBody)
    return { method: request.method, ...(request.url ? { url: REDACTED } : {}), headers, body: REDACTED };
  const body = JSON.parse(request.body) as unknown;
  for (const path of request.secretFields ?? []) {
    for (const target of Array.isArray(body) && !/^\d/.test(path) ? body : [body]) setPath(target, path, REDACTED);
  }
  return {
    method: request.method,
    ...(request.url ? { url: request.secretUrl ? REDACTED : request.url } : {}),
    headers,
    body,
  };
}
