/**
 * renderRequest builds the HTTP request of one action: URL, method, headers (literal, JSONata, env or
 * Secret values) and the JSON body from the action's JSONata template (default: the normalized Event).
 */
import type { CompiledAction } from '../rules/compile-document.js';
import { ConfigurationError } from '../errors.js';
import { resolveValue, type ResolveContext } from './value-source.js';
import { renderHpaSender } from './hpa-sender.js';

export interface RenderedRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  body: string;
  /** Header names whose values came from env or Secrets; printed forms redact them. */
  secretHeaders: string[];
  /** Whether the URL itself came from env or a Secret (a Slack webhook URL is a credential). */
  secretUrl: boolean;
}

export const REDACTED = '[redacted]';

export async function renderRequest(action: CompiledAction, context: ResolveContext): Promise<RenderedRequest> {
  const { destination } = action;
  if (destination.kind === 'hpa-sender') {
    return renderHpaSender(context.bindings.object as Record<string, unknown> | null, context.input as Record<string, unknown>, context.secrets, context.hpaSenderNamespaces ?? []);
  }
  const body = action.body ? await action.body.render(context.input, context.bindings) : JSON.stringify(context.input);
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  const secretHeaders: string[] = [];
  for (const [name, source] of destination.headers) {
    const resolved = await resolveValue(source, `destination ${destination.name} header ${name}`, context);
    if (!resolved) continue; // an expression with no value for this event leaves the header out
    headers[name.toLowerCase()] = resolved.value;
    if (resolved.secret) secretHeaders.push(name.toLowerCase());
  }
  const url = destination.url ? await resolveValue(destination.url, `destination ${destination.name} url`, context) : { value: '', secret: false };
  if (!url) throw new ConfigurationError(`destination ${destination.name} url: the expression gave no value for this event`);
  return { method: destination.method, url: url.value, headers, body, secretHeaders, secretUrl: url.secret };
}

/** redacted gives a copy safe to print: secret header values and secret URLs replaced. */
export function redacted(request: RenderedRequest): { method: string; url?: string; headers: Record<string, string>; body: unknown } {
  const headers = { ...request.headers };
  for (const name of request.secretHeaders) headers[name] = REDACTED;
  return {
    method: request.method,
    ...(request.url ? { url: request.secretUrl ? REDACTED : request.url } : {}),
    headers,
    body: JSON.parse(request.body) as unknown,
  };
}
