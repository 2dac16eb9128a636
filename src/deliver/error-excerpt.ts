/**
 * errorExcerpt: what we keep of a destination's error body for logs and reports — its start, with anything
 * that may be a credential replaced. Destinations and proxies echo requests back (headers included), so
 * every header value we sent is hidden (and the credential after an auth scheme), as are the process's
 * known secret values and text shaped like a credential (`Bearer …`, `"token": "…"`, `password=…`).
 */
import type { RenderedRequest } from '../render/rendered-request.js';
import { REDACTED, knownSecrets } from '../redact.js';

/** How much of an error body we keep. */
export const EXCERPT_CHARS = 200;
/** Header values shorter than this are not credentials (and hiding them would shred the text). */
const MIN_SECRET_LENGTH = 4;
/** Headers whose values say nothing secret; echoing them is harmless and keeps excerpts readable. */
const PLAIN_HEADERS = new Set(['content-type', 'accept', 'content-length', 'user-agent', 'accept-encoding']);
/** Credential-shaped text, whatever we sent: auth schemes, and key/value pairs named like secrets. */
const CREDENTIAL_SHAPES = [
  /\b(Bearer|Basic|Token|Digest|ApiKey)\s+[A-Za-z0-9._~+/=:-]{4,}/gi,
  /(["']?[\w-]*(?:token|secret|password|passwd|api[_-]?key|authorization|credential|signature|session)[\w-]*["']?\s*[:=]\s*["']?)[^"'\s,;&}]{4,}/gi,
];

export function errorExcerpt(body: string, request: RenderedRequest): string {
  let text = knownSecrets.redact(body); // on the whole read, before the cut, so no part of a secret survives
  for (const form of ownSecretForms(request)) text = text.split(form).join(REDACTED);
  text = text
    .replace(CREDENTIAL_SHAPES[0], (_m, scheme: string) => `${scheme} ${REDACTED}`)
    .replace(CREDENTIAL_SHAPES[1], (_m, key: string) => `${key}${REDACTED}`);
  return text.slice(0, EXCERPT_CHARS);
}

/** hideOwnSecrets: the text with every possibly-secret part of this request replaced (for error messages). */
export function hideOwnSecrets(text: string, request: RenderedRequest): string {
  for (const form of ownSecretForms(request)) text = text.split(form).join(REDACTED);
  return text;
}

/**
 * ownSecretForms: what this request carried that may be secret, by position rather than by the registry —
 * every non-plain header value, a secret URL (whole and its path), every string of a secret body or secret
 * field — longest first. So an echo is hidden even if the registry refused or never saw the value.
 */
export function ownSecretForms(request: RenderedRequest): string[] {
  const values: string[] = [];
  for (const [name, value] of Object.entries(request.headers))
    if (!PLAIN_HEADERS.has(name.toLowerCase())) values.push(...headerForms(value));
  if (request.secretUrl && request.url) {
    values.push(request.url);
    try {
      const url = new URL(request.url);
      values.push(url.pathname + url.search, url.search.slice(1));
      if (url.password) values.push(decodeURIComponent(url.password));
    } catch {
      // not a URL: the whole value is hidden
    }
  }
  if (request.secretBody) values.push(request.body, ...stringsOf(parseOrText(request.body)));
  for (const path of request.secretFields ?? []) values.push(...stringsOf(valueAt(parseOrText(request.body), path)));
  const forms = values.flatMap((v) => [v, JSON.stringify(v).slice(1, -1), encodeURIComponent(v)]);
  return [...new Set(forms)].filter((f) => f.length >= MIN_SECRET_LENGTH).sort((a, b) => b.length - a.length);
}

function parseOrText(body: string): unknown {
  try {
    return JSON.parse(body);
  } catch {
    return body;
  }
}

/** stringsOf: every string (and number) in a JSON value, keys excluded. */
function stringsOf(node: unknown): string[] {
  if (typeof node === 'string') return [node];
  if (typeof node === 'number') return [String(node)];
  if (Array.isArray(node)) return node.flatMap(stringsOf);
  if (node && typeof node === 'object') return Object.values(node).flatMap(stringsOf);
  return [];
}

/** valueAt: the value at a dotted body path (on every element of a list body, as renderRequest sets it). */
function valueAt(body: unknown, path: string): unknown {
  if (Array.isArray(body) && !/^\d/.test(path)) return body.map((element) => valueAt(element, path));
  let node = body;
  for (const key of path.split('.'))
    node = node && typeof node === 'object' ? (node as Record<string, unknown>)[key] : undefined;
  return node;
}

/** headerForms: the value as sent, JSON-escaped, and the credential after its scheme ("Bearer abc" → "abc"). */
function headerForms(value: string): string[] {
  const forms = [value, JSON.stringify(value).slice(1, -1)];
  const space = value.indexOf(' ');
  if (space > 0) forms.push(value.slice(space + 1).trim());
  return forms.filter((f) => f.length >= MIN_SECRET_LENGTH).sort((a, b) => b.length - a.length);
}
