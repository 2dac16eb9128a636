/**
 * Headers a rule may not set, in any scope: `Host` would pick another virtual host behind an allowed address
 * (the host allowlist checks the URL), and the framing and hop-by-hop headers would let a rule split or
 * smuggle a request past the destination's proxy. The HTTP client sets all of them itself.
 */
const FORBIDDEN = new Set([
  'host',
  'connection',
  'transfer-encoding',
  'content-length',
  'upgrade',
  'te',
  'trailer',
  'keep-alive',
]);

/** forbiddenHeader: why a rule may not set this header, or undefined when it may. */
export function forbiddenHeader(name: string): string | undefined {
  const lower = name.trim().toLowerCase();
  if (!FORBIDDEN.has(lower) && !lower.startsWith('proxy-')) return undefined;
  return `header ${JSON.stringify(name)} is set by the HTTP client, never by a rule (Host, Connection, Transfer-Encoding, Content-Length, Upgrade, TE, Trailer, Keep-Alive and Proxy-* are refused: they would choose another virtual host or reframe the request)`;
}
