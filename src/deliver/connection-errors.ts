/**
 * connectionFailure says what a failed connection means: a certificate that cannot be trusted (unknown CA,
 * expired, another name) or a proxy that refuses us (407) is permanent — retrying cannot fix it, someone has
 * to change a certificate or a Secret — while a name that does not resolve, a refused connection or a proxy
 * 5xx may pass and is retried. The message names the host (a proxy by host only, never its credentials).
 */

export interface ConnectionFailure {
  /** The `result` label of delivery_attempts_total. */
  result: 'tls' | 'proxy' | 'network';
  retryable: boolean;
  message: string;
}

/** Certificate verification codes (OpenSSL's, as Node reports them) → what they mean. */
const UNTRUSTED = new Set([
  'UNABLE_TO_VERIFY_LEAF_SIGNATURE',
  'UNABLE_TO_GET_ISSUER_CERT',
  'UNABLE_TO_GET_ISSUER_CERT_LOCALLY',
  'SELF_SIGNED_CERT_IN_CHAIN',
  'DEPTH_ZERO_SELF_SIGNED_CERT',
  'CERT_UNTRUSTED',
  'CERT_SIGNATURE_FAILURE',
  'CERT_REJECTED',
  'INVALID_CA',
]);

const RETRYABLE_NETWORK: Record<string, string> = {
  ENOTFOUND: 'the name does not resolve (DNS)',
  EAI_AGAIN: 'DNS did not answer',
  ECONNREFUSED: 'the connection was refused',
  ECONNRESET: 'the connection was reset',
  EHOSTUNREACH: 'the host is unreachable',
  ENETUNREACH: 'the network is unreachable',
  EPIPE: 'the connection was closed while sending',
};

/** The proxy's answer to CONNECT (or to a forwarded request) when it was not 200. */
const PROXY_STATUS = /Proxy response \((\d{3})\)|Proxy Authentication Required \((407)\)/;

/**
 * connectionFailure classifies an error thrown by the HTTP client; undefined when it is not one of these
 * (the caller keeps its generic handling). `proxy`: the host:port of the destination's own proxy (`certain`: every
 * connection goes to it), or of the environment's proxy for this scheme (used unless NO_PROXY matched).
 */
export function connectionFailure(
  err: unknown,
  url: string,
  proxy?: { host: string; certain: boolean },
): ConnectionFailure | undefined {
  const host = hostOf(url);
  for (
    let e = err as (NodeJS.ErrnoException & { reason?: string; cause?: unknown }) | undefined, depth = 0;
    e && depth < 4;
    e = e.cause as typeof e, depth++
  ) {
    const code = e.code ?? '';
    const proxyStatus = PROXY_STATUS.exec(e.message ?? '');
    if (proxyStatus) {
      const status = Number(proxyStatus[1] ?? proxyStatus[2]);
      const name = `proxy ${proxy?.host ?? '(HTTPS_PROXY/HTTP_PROXY)'}`;
      // 407: no or unknown credentials; some proxies (tinyproxy) answer wrong ones with 401.
      if (status === 407 || status === 401) {
        const what = status === 407 ? '407 Proxy Authentication Required' : '401 Unauthorized';
        return {
          result: 'proxy',
          retryable: false,
          message: `${name} refused the request to ${host}: ${what} (check the proxy credentials)`,
        };
      }
      const retryable = status >= 500 || status === 408 || status === 429;
      return {
        result: 'proxy',
        retryable,
        message: `${name} answered ${status} to CONNECT ${host}${retryable ? '' : ' (the proxy does not allow this destination)'}`,
      };
    }
    if (UNTRUSTED.has(code)) {
      return tls(
        `the certificate of ${host} is not signed by a trusted CA (${code}): trust its CA with tls.ca, or NODE_EXTRA_CA_CERTS for every destination`,
      );
    }
    if (code === 'CERT_HAS_EXPIRED') return tls(`the certificate of ${host} has expired (${code})`);
    if (code === 'CERT_NOT_YET_VALID') return tls(`the certificate of ${host} is not valid yet (${code})`);
    if (code === 'CERT_REVOKED') return tls(`the certificate of ${host} is revoked (${code})`);
    if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') {
      const names = (e as { cert?: { subjectaltname?: string } }).cert?.subjectaltname;
      return tls(
        `the certificate of ${host} is not for this name (${names ? `it is for ${names}` : (e.reason ?? e.message)}): fix the URL, or set tls.serverName to the name it carries`,
      );
    }
    if (
      /^ERR_SSL_.*ALERT_(CERTIFICATE_REQUIRED|BAD_CERTIFICATE|UNKNOWN_CA|CERTIFICATE_UNKNOWN|CERTIFICATE_EXPIRED|CERTIFICATE_REVOKED|ACCESS_DENIED|HANDSHAKE_FAILURE)$/.test(
        code,
      )
    ) {
      return tls(
        `${host} refused the TLS handshake (${code}): it wants a client certificate it trusts (tls.clientCert and tls.clientKey)`,
      );
    }
    if (code === 'ERR_SSL_WRONG_VERSION_NUMBER' || code === 'ERR_SSL_PACKET_LENGTH_TOO_LONG') {
      return tls(`${host} does not speak TLS on this port (${code}): is the URL http rather than https?`);
    }
    const network = RETRYABLE_NETWORK[code];
    if (network) {
      const at = (e as { address?: string }).address
        ? ` (${(e as { address?: string }).address}:${(e as { port?: number }).port ?? ''})`
        : '';
      const what = proxy?.certain ? `proxy ${proxy.host} for ${host}` : host;
      return { result: 'network', retryable: true, message: `${what}: ${network}${at} (${code})` };
    }
  }
  return undefined;
}

function tls(message: string): ConnectionFailure {
  return { result: 'tls', retryable: false, message: `TLS: ${message}` };
}

function hostOf(url: string): string {
  try {
    return new URL(url).host;
  } catch {
    return 'the destination';
  }
}
