/**
 * Who may call the service. When configured, POST / needs a sender credential — a Knative OIDC token
 * (oidc-verifier.ts) or the static token of AUTH_TOKEN_FILE — and /dry-run and /status need the admin
 * token of ADMIN_TOKEN_FILE (they render with the service's Secrets and list every rule). Probes and
 * /metrics never need one. A refusal is 401 with WWW-Authenticate (RFC 6750), counted and logged with
 * the reason, never with the token.
 */
import type { Context, Next } from 'koa';
import type { Logger } from '../log.js';
import type { Metrics } from '../metrics.js';
import { createOidcVerifier, VerifierUnavailableError, type OidcSettings } from './oidc-verifier.js';
import { tokenFile } from './token-file.js';

export interface AuthSettings {
  /** A static bearer token for senders other than the Broker; empty = none. */
  tokenFile: string;
  /** Knative sender identity; undefined = off. */
  oidc?: OidcSettings;
  /** The bearer token of /dry-run and /status; empty = none. */
  adminTokenFile: string;
}

/** Koa middleware that lets a request through (its downstream's result) or answers it 401/503. */
export type Guard = (ctx: Context, next: Next) => Promise<unknown>;

export interface Authenticators {
  sender: Guard;
  admin: Guard;
  /** For the startup log line: what is required where. */
  description: string;
  /** False when anyone who reaches the port may do anything. */
  configured: boolean;
}

type Endpoint = 'events' | 'admin';
type Reason = 'missing_credential' | 'invalid_credential' | 'verifier_unavailable';

const REALM = 'kube-event-rules';
/** How long the Broker should wait when the issuer's keys could not be fetched. */
const VERIFIER_RETRY_AFTER_SECONDS = 5;

function bearerToken(ctx: Context): string | undefined {
  return /^Bearer +(\S+) *$/i.exec(ctx.get('authorization'))?.[1];
}

/** passThrough: the next middleware, unchanged. */
const passThrough: Guard = (_ctx, next) => next();

export function createAuthenticators(settings: AuthSettings, metrics: Metrics, log: Logger): Authenticators {
  const staticToken = settings.tokenFile ? tokenFile(settings.tokenFile) : undefined;
  const adminToken = settings.adminTokenFile ? tokenFile(settings.adminTokenFile) : undefined;
  const oidc = settings.oidc ? createOidcVerifier(settings.oidc) : undefined;
  for (const [name, file] of [
    ['AUTH_TOKEN_FILE', staticToken],
    ['ADMIN_TOKEN_FILE', adminToken],
  ] as const) {
    if (file && !file.present())
      log.warn(
        { setting: name },
        'the token file is missing or empty: no request is accepted with it until it has a token',
      );
  }
  if (settings.oidc && settings.oidc.subjects.length === 0 && !settings.oidc.anySubject) {
    log.error(
      { setting: 'AUTH_OIDC_SUBJECTS' },
      'AUTH_OIDC_SUBJECTS is empty: POST / accepts a token of ANY ServiceAccount that can request the audience, not only the Trigger; set AUTH_OIDC_SUBJECTS to the Trigger identity (or AUTH_OIDC_ANY_SUBJECT=true to accept this on purpose)',
    );
  }
  const sendersAuthenticated = staticToken !== undefined || oidc !== undefined;
  // Once senders must authenticate, the admin endpoints never stay open: without an admin token they refuse everyone.
  const adminGuarded = adminToken !== undefined || sendersAuthenticated;

  function refuse(ctx: Context, endpoint: Endpoint, reason: Reason, why: string): void {
    metrics.requestsRefused.inc({ endpoint, reason });
    log.warn({ endpoint, path: ctx.path, reason, why, remote: ctx.ip }, 'request refused: not authenticated');
    ctx.status = 401;
    ctx.set(
      'WWW-Authenticate',
      `Bearer realm="${REALM}"${reason === 'missing_credential' ? '' : ', error="invalid_token"'}`,
    );
    ctx.body = {
      error: 'unauthorized',
      detail: reason === 'missing_credential' ? 'a Bearer token is required' : 'the Bearer token was refused',
    };
  }

  async function sender(ctx: Context, next: Next): Promise<unknown> {
    const token = bearerToken(ctx);
    if (!token) return refuse(ctx, 'events', 'missing_credential', 'no Bearer token');
    if (staticToken?.matches(token)) return next();
    if (!oidc) return refuse(ctx, 'events', 'invalid_credential', 'not the AUTH_TOKEN_FILE token');
    try {
      await oidc.verify(token);
    } catch (err) {
      if (!(err instanceof VerifierUnavailableError))
        return refuse(ctx, 'events', 'invalid_credential', (err as Error).message);
      // Our side cannot check the token now: the Broker must redeliver, not dead-letter.
      metrics.requestsRefused.inc({ endpoint: 'events', reason: 'verifier_unavailable' });
      log.error({ why: err.message }, "cannot verify sender tokens: the OIDC issuer's keys are unavailable");
      ctx.status = 503;
      ctx.set('Retry-After', String(VERIFIER_RETRY_AFTER_SECONDS));
      ctx.body = { error: 'not ready', detail: "the sender's token cannot be verified now; retry" };
      return;
    }
    return next();
  }

  async function admin(ctx: Context, next: Next): Promise<unknown> {
    if (!adminGuarded) return next();
    const token = bearerToken(ctx);
    if (!token) return refuse(ctx, 'admin', 'missing_credential', 'no Bearer token');
    if (!adminToken)
      return refuse(
        ctx,
        'admin',
        'invalid_credential',
        'ADMIN_TOKEN_FILE is not set, so the admin endpoints are closed',
      );
    if (!adminToken.matches(token)) return refuse(ctx, 'admin', 'invalid_credential', 'not the ADMIN_TOKEN_FILE token');
    return next();
  }

  const required = [
    oidc && `OIDC token of ${settings.oidc!.issuer} for audience ${settings.oidc!.audience}`,
    staticToken && 'AUTH_TOKEN_FILE token',
  ].filter(Boolean);
  const description = sendersAuthenticated
    ? `POST / needs ${required.join(' or ')}; /dry-run and /status ${adminToken ? 'need the ADMIN_TOKEN_FILE token' : 'are closed (no ADMIN_TOKEN_FILE)'}`
    : adminToken
      ? 'POST / is open (no AUTH_OIDC_ISSUER, no AUTH_TOKEN_FILE); /dry-run and /status need the ADMIN_TOKEN_FILE token'
      : 'no authentication configured: anyone who reaches the port may send events, dry-run rules and read /status';
  // Without sender credentials the hot path skips the check entirely (no async frame per event).
  return { sender: sendersAuthenticated ? sender : passThrough, admin, description, configured: adminGuarded };
}
