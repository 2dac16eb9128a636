/**
 * Knative sender identity (Eventing's `authentication-oidc` feature): the Broker sends
 * `Authorization: Bearer <JWT>`, a service account token the cluster's OIDC issuer signed for the
 * subscriber's audience. jose verifies it against the issuer's keys: the signing key from the JWKS
 * (found through the issuer's discovery document unless a JWKS URL is given), the issuer, the audience,
 * an expiry, and — when a list is configured — the subject (`system:serviceaccount:<ns>:<name>`).
 */
import { readFileSync } from 'node:fs';
import {
  createRemoteJWKSet,
  customFetch,
  errors,
  jwtVerify,
  type FetchImplementation,
  type JWTVerifyGetKey,
} from 'jose';
import { Agent, fetch as undiciFetch } from 'undici';

export interface OidcSettings {
  issuer: string;
  audience: string;
  /** Where the signing keys are; empty = the `jwks_uri` of the issuer's discovery document. */
  jwksUrl: string;
  /** Accepted `sub` claims; empty = any subject the issuer signed a token for this audience. */
  subjects: string[];
  /** CA bundle for the discovery and JWKS requests (the cluster CA when they go to the API server). */
  caFile: string;
  /** A token sent with the discovery and JWKS requests (the API server serves them to service accounts only). */
  fetchTokenFile: string;
  /** AUTH_OIDC_ANY_SUBJECT: the operator accepts any subject on purpose (else an empty `subjects` is warned about). */
  anySubject?: boolean;
}

/** The token is wrong: answered 401. */
export class TokenRefusedError extends Error {}

/** The keys could not be fetched: not the sender's fault, answered 503 so the Broker redelivers. */
export class VerifierUnavailableError extends Error {}

/** jose's errors that mean the token itself is bad (anything else is a failure to fetch the keys). */
const TOKEN_ERRORS = [
  errors.JWTClaimValidationFailed,
  errors.JWTExpired,
  errors.JWTInvalid,
  errors.JWSInvalid,
  errors.JWSSignatureVerificationFailed,
  errors.JWKSNoMatchingKey,
  errors.JWKSMultipleMatchingKeys,
  errors.JOSEAlgNotAllowed,
  errors.JOSENotSupported,
];

/** Clock skew tolerated between the issuer and this pod. */
const CLOCK_TOLERANCE_SECONDS = 5;
const FETCH_TIMEOUT_MS = 5000;
/** After a failed discovery, requests fail fast this long instead of each asking a struggling issuer again. */
const DISCOVERY_COOLDOWN_MS = 5000;

export interface OidcVerifier {
  /** Resolves with the token's subject, or throws TokenRefusedError / VerifierUnavailableError. */
  verify(token: string): Promise<string>;
}

export function createOidcVerifier(settings: OidcSettings): OidcVerifier {
  const fetchKeys = keyFetch(settings);
  let keys: JWTVerifyGetKey | undefined;
  let discovering: Promise<JWTVerifyGetKey> | undefined;
  let failed: { at: number; error: Error } | undefined;

  async function discover(): Promise<JWTVerifyGetKey> {
    let jwksUrl = settings.jwksUrl;
    if (!jwksUrl) {
      const where = `${settings.issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
      let document: { issuer?: unknown; jwks_uri?: unknown };
      try {
        const response = await fetchKeys(where, {
          headers: new Headers(),
          method: 'GET',
          redirect: 'manual',
          signal: AbortSignal.timeout(FETCH_TIMEOUT_MS),
        });
        if (response.status !== 200) throw new Error(`HTTP ${response.status}`);
        document = (await response.json()) as typeof document;
      } catch (err) {
        throw new VerifierUnavailableError(`OIDC discovery ${where}: ${(err as Error).message}`);
      }
      if (document.issuer !== settings.issuer || typeof document.jwks_uri !== 'string') {
        throw new VerifierUnavailableError(
          `OIDC discovery ${where}: issuer ${JSON.stringify(document.issuer)} is not ${JSON.stringify(settings.issuer)}, or no jwks_uri`,
        );
      }
      jwksUrl = document.jwks_uri;
    }
    return createRemoteJWKSet(new URL(jwksUrl), { timeoutDuration: FETCH_TIMEOUT_MS, [customFetch]: fetchKeys });
  }

  async function signingKeys(): Promise<JWTVerifyGetKey> {
    if (keys) return keys;
    if (failed && Date.now() - failed.at < DISCOVERY_COOLDOWN_MS) throw failed.error;
    // One discovery at a time; after a failure, the first request past the cooldown tries again.
    discovering ??= discover()
      .catch((error: Error) => {
        failed = { at: Date.now(), error };
        throw error;
      })
      .finally(() => (discovering = undefined));
    keys = await discovering;
    return keys;
  }

  return {
    async verify(token) {
      let subject: string | undefined;
      try {
        const { payload } = await jwtVerify(token, await signingKeys(), {
          issuer: settings.issuer,
          audience: settings.audience,
          requiredClaims: ['exp', 'sub'],
          clockTolerance: CLOCK_TOLERANCE_SECONDS,
        });
        subject = payload.sub;
      } catch (err) {
        if (err instanceof VerifierUnavailableError) throw err;
        if (TOKEN_ERRORS.some((type) => err instanceof type)) throw new TokenRefusedError((err as Error).message);
        throw new VerifierUnavailableError(`OIDC keys: ${(err as Error).message}`);
      }
      if (settings.subjects.length > 0 && !settings.subjects.includes(subject ?? '')) {
        throw new TokenRefusedError(`subject ${JSON.stringify(subject)} is not one of AUTH_OIDC_SUBJECTS`);
      }
      return subject ?? '';
    },
  };
}

/** keyFetch: undici's fetch with the configured CA and token (read per request: projected tokens rotate). */
function keyFetch(settings: OidcSettings): FetchImplementation {
  const dispatcher = settings.caFile
    ? new Agent({ connect: { ca: readFileSync(settings.caFile, 'utf8') } })
    : undefined;
  // The service's own token goes only where the operator pointed: the issuer, or AUTH_OIDC_JWKS_URL — never
  // to a jwks_uri on another host that a discovery document names.
  const trusted = new Set([settings.issuer, settings.jwksUrl].filter(Boolean).map((url) => originOf(url)));
  return async (url, options) => {
    const headers = Object.fromEntries(new Headers(options.headers));
    if (settings.fetchTokenFile && trusted.has(originOf(String(url))))
      headers.authorization = `Bearer ${readFileSync(settings.fetchTokenFile, 'utf8').trim()}`;
    return undiciFetch(url, { ...options, headers, dispatcher });
  };
}

function originOf(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return url;
  }
}
