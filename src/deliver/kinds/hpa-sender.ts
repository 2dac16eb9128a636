/**
 * hpa-sender compatibility (destination kind `hpa-sender`): the request comes from the Secret named by
 * the involved HPA's annotation `hpa-event: <namespace>/<secret>`, whose keys are `url`, `headers` (a
 * JSON map) and `body` (a JSON template with `_message_` and `_time_`), exactly as hpa-sender read them
 * — without its bugs: the message is JSON-escaped, one pass
 * replaces both placeholders (a `_time_` inside the message stays), a trailing newline in the URL is
 * trimmed, and every malformed input is a clear error instead of a panic.
 */
import type { KubernetesObject } from '@kubernetes/client-node';
import { ConfigurationError } from '../../errors.js';
import type { KubeEvent } from '../../normalize/kube-event.js';
import type { RenderedRequest } from '../../render/rendered-request.js';
import type { SecretReader } from '../../render/value-source.js';
import { knownSecrets } from '../../redact.js';
import { forbiddenHeader } from '../../render/forbidden-headers.js';
import type { DestinationKind } from './destination-kind.js';

export const HPA_SENDER_ANNOTATION = 'hpa-event';
/** A body template has one or two placeholders in practice; more is refused (each part is remembered). */
const MAX_TEMPLATE_PARTS = 17;

export const hpaSenderKind: DestinationKind = {
  name: 'hpa-sender',
  description: "takes url, headers and body from the Secret named by the HPA's hpa-event annotation",
  check: (spec) =>
    spec.tls || spec.proxy ? 'tls and proxy apply to http destinations only (this one is hpa-sender)' : undefined,
  reads: ['object'], // the HPA carries the annotation
  network: true,
  render: (_action, context) =>
    renderHpaSender(
      context.bindings.object as KubernetesObject | null,
      context.input as KubeEvent,
      context.secrets,
      context.hpaSenderNamespaces ?? [],
      context.eventNamespace,
    ),
  sender: ({ network }) => network,
};

/** escapeJson escapes text for use inside a JSON string literal (the template has the quotes). */
const escapeJson = (text: string) => JSON.stringify(text).slice(1, -1);

export async function renderHpaSender(
  hpa: KubernetesObject | null,
  event: KubeEvent,
  secrets: SecretReader,
  allowedSecretNamespaces: readonly string[],
  eventNamespace: string | undefined = event.metadata?.namespace,
): Promise<RenderedRequest> {
  const involved = event.involvedObject ?? {};
  const where = `HPA ${involved.namespace ?? ''}/${involved.name ?? ''}`;
  if (!hpa)
    throw new ConfigurationError(
      `${where}: not found (or no cluster), so its ${HPA_SENDER_ANNOTATION} annotation cannot be read`,
    );
  const annotation = hpa.metadata?.annotations?.[HPA_SENDER_ANNOTATION];
  if (!annotation) throw new ConfigurationError(`${where}: no ${HPA_SENDER_ANNOTATION} annotation`);
  const [namespace, name, ...rest] = annotation.trim().split('/');
  if (!namespace || !name || rest.length > 0) {
    throw new ConfigurationError(
      `${where}: annotation ${HPA_SENDER_ANNOTATION}="${annotation}" must be <namespace>/<secret>`,
    );
  }
  const hpaNamespace = hpa.metadata?.namespace;
  // Whoever can create Events in one namespace can name any HPA as the involved object; only the HPA's
  // own namespace may speak through its webhook (the kubelet and the HPA controller record them there).
  if (eventNamespace !== hpaNamespace) {
    throw new ConfigurationError(
      `${where}: the Event is recorded in namespace ${eventNamespace ?? '(none)'}, not the HPA's; hpa-sender acts only on Events of the HPA's own namespace`,
    );
  }
  if (namespace !== hpaNamespace && !allowedSecretNamespaces.includes(namespace)) {
    throw new ConfigurationError(
      `${where}: annotation ${HPA_SENDER_ANNOTATION} points at Secret ${namespace}/${name} outside the HPA's namespace; allow it with HPA_SENDER_SECRET_NAMESPACES`,
    );
  }
  // Every key is a credential or may hold one (a token inside the body template): remembered for redaction.
  const read = async (key: string) => knownSecrets.remember(await secrets.read(name, key, namespace), namespace);
  const url = knownSecrets.rememberUrl((await read('url')).trim(), namespace);
  let headerMap: unknown = {};
  const headersText = await read('headers').catch((err: unknown) => {
    if (err instanceof ConfigurationError && /has no key/.test(err.message)) return '{}';
    throw err;
  });
  try {
    headerMap = JSON.parse(headersText);
  } catch (err) {
    throw new ConfigurationError(`Secret ${namespace}/${name} key headers: not JSON${positionOf(err)}`);
  }
  if (
    typeof headerMap !== 'object' ||
    headerMap === null ||
    Array.isArray(headerMap) ||
    Object.values(headerMap).some((v) => typeof v !== 'string')
  ) {
    throw new ConfigurationError(`Secret ${namespace}/${name} key headers: must be a JSON object of strings`);
  }
  const template = await read('body');
  // The template is remembered whole (read above); its parts only up to a few placeholders, so a template
  // cannot fill the registry one part at a time. A sent body is also hidden by position (error-excerpt.ts).
  const parts = template.split(/_message_|_time_/);
  if (parts.length > MAX_TEMPLATE_PARTS) {
    throw new ConfigurationError(
      `Secret ${namespace}/${name} key body: ${parts.length - 1} placeholders; at most ${MAX_TEMPLATE_PARTS - 1} are allowed`,
    );
  }
  for (const part of parts) knownSecrets.remember(part, namespace);
  const values: Record<string, string> = {
    _message_: escapeJson(String(event.message ?? '')),
    _time_: escapeJson(String(event.firstTimestamp ?? '')),
  };
  const body = template.replace(/_message_|_time_/g, (placeholder) => values[placeholder]);
  try {
    JSON.parse(body);
  } catch (err) {
    throw new ConfigurationError(
      `Secret ${namespace}/${name} key body: not valid JSON after substitution${positionOf(err)}`,
    );
  }
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  for (const [header, value] of Object.entries(headerMap as Record<string, string>)) {
    const forbidden = forbiddenHeader(header);
    if (forbidden) throw new ConfigurationError(`Secret ${namespace}/${name} key headers: ${forbidden}`);
    headers[header.toLowerCase()] = knownSecrets.remember(value, namespace);
  }
  return {
    method: 'POST',
    url,
    headers,
    body,
    secretHeaders: Object.keys(headers).filter((h) => h !== 'content-type'),
    secretUrl: true,
    secretBody: true,
  };
}

/**
 * positionOf says where JSON.parse stopped, and nothing else: its message quotes the text around the
 * error, which here is Secret content.
 */
function positionOf(err: unknown): string {
  const position = /position (\d+)/.exec(err instanceof Error ? err.message : '')?.[1];
  return position === undefined ? '' : ` (error at character ${position})`;
}
