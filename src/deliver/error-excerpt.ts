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
  for (const [name, value] of Object.entries(request.headers)) {
    if (PLAIN_HEADERS.has(name.toLowerCase())) continue;
    for (const form of headerForms(value)) text = text.split(form).join(REDACTED);
  }
  text = text.replace(CREDENTIAL_SHAPES[0], (_m, scheme: string) => `${scheme} ${REDACTED}`).replace(CREDENTIAL_SHAPES[1], (_m, key: string) => `${key}${REDACTED}`);
  return text.slice(0, EXCERPT_CHARS);
}

/** headerForms: the value as sent, JSON-escaped, and the credential after its scheme ("Bearer abc" → "abc"). */
function headerForms(value: string): string[] {
  const forms = [value, JSON.stringify(value).slice(1, -1)];
  const space = value.indexOf(' ');
  if (space > 0) forms.push(value.slice(space + 1).trim());
  return forms.filter((f) => f.length >= MIN_SECRET_LENGTH).sort((a, b) => b.length - a.length);
}
