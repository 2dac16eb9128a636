/**
 * httpSender delivers with undici's `request` over a pooled keep-alive Agent: a timeout per attempt, a
 * few attempts with backoff on retryable failures (withRetry), Retry-After honoured up to a cap, every response body
 * consumed so connections go back to the pool — a 2xx counts once its status is known, and an error body has
 * its own short timeout. (Measured per request here: the built-in fetch 6–9×
 * slower than node:http, undici's request 40 % cheaper than node:http — docs/performance.md.)
 */
import { request as undiciRequest } from 'undici';
import type { Metrics } from '../metrics.js';
import type { RenderedRequest } from '../render/rendered-request.js';
import type { DeliveryResult, SendOptions, Sender } from './destination.js';
import { isRetryableStatus, parseRetryAfter, withRetry } from './retry-policy.js';
import { EXCERPT_CHARS, errorExcerpt } from './error-excerpt.js';
import { createDispatchers, envProxies, tlsAlertOf } from './dispatchers.js';
import { connectionFailure, type ConnectionFailure } from './connection-errors.js';

export interface HttpSenderOptions {
  attempts: number;
  retryAfterMaxMs: number;
  metrics: Metrics;
  /** Most connections per destination host. */
  maxSockets?: number;
  /** Where HTTP_PROXY, HTTPS_PROXY and NO_PROXY are read (default: the process environment). */
  env?: Record<string, string | undefined>;
}

/** How much of an error body we read (the excerpt is cut after redaction, so no part of a secret survives). */
const ERROR_BODY_READ_CHARS = EXCERPT_CHARS * 4;
/**
 * An error body's excerpt is read for at most this long (its status decides anyway). A 2xx body is drained in
 * the background until the attempt's timeout. Not undici's `bodyTimeout`: a value other than its headers timeout
 * makes it replace its parser timer twice per request instead of refreshing it.
 */
const BODY_READ_MS = 1000;

/** `final`: retryable later (by the Broker), but not within this request. */
interface FailedAttempt {
  status?: number;
  error: string;
  retryable: boolean;
  final?: boolean;
  retryAfterMs?: number;
  timedOut?: boolean;
}
type Reply =
  | {
      status: number;
      body: string;
      bodyTimedOut: boolean;
      retryAfter: string | undefined;
      location: string | undefined;
    }
  | { error: NodeJS.ErrnoException; timedOut: boolean; failure?: ConnectionFailure };

export function createHttpSender(options: HttpSenderOptions): Sender {
  return withRetry(createHttpAttempts(options), options);
}

/** createHttpAttempts: a Sender that makes one attempt per call, its timeout aborting the request and its body. */
function createHttpAttempts(options: HttpSenderOptions): Sender {
  const env = options.env ?? process.env;
  const dispatchers = createDispatchers({ connections: options.maxSockets ?? 128 }, env);
  const proxies = envProxies(env);
  /** The proxy a request goes through, for messages: its own (always), or the environment's (unless NO_PROXY). */
  const proxyOf = (request: RenderedRequest) => {
    if (request.transport?.proxy) return { host: request.transport.proxy.host, certain: true };
    const uri = request.url.startsWith('https:') ? proxies?.httpsProxy || proxies?.httpProxy : proxies?.httpProxy;
    return uri ? { host: hostOnly(uri), certain: false } : undefined;
  };

  async function exchange(request: RenderedRequest, timeoutMs: number): Promise<Reply> {
    // Only these timers abort the request, so an aborted signal means the attempt (or its body) timed out.
    const controller = new AbortController();
    let timer = setTimeout(() => {
      controller.abort(Object.assign(new Error(`no response within ${timeoutMs} ms`), { code: 'ETIMEDOUT' }));
    }, timeoutMs);
    let draining = false;
    try {
      const res = await undiciRequest(request.url, {
        method: request.method,
        headers: request.headers,
        body: request.body,
        dispatcher: dispatchers.for(request.transport),
        signal: controller.signal,
      });
      const status = res.statusCode;
      const retryAfter = first(res.headers['retry-after']);
      if (isSuccess(status) || isRedirect(status)) {
        // The status decides: the slot is not held while the rest of the body arrives. It is drained in
        // the background (the connection goes back to the pool) and cut off by the attempt's timer.
        draining = true;
        const stop = () => clearTimeout(timer);
        res.body.dump().then(stop, stop);
        return {
          status,
          body: '',
          bodyTimedOut: false,
          retryAfter,
          location: isRedirect(status) ? first(res.headers.location) : undefined,
        };
      }
      // An error body: keep its start for the log line, read for at most BODY_READ_MS; a slow or broken
      // body keeps its status (a 404 stays permanent however slowly its body arrives).
      clearTimeout(timer);
      timer = setTimeout(() => controller.abort(), Math.min(BODY_READ_MS, timeoutMs));
      let body = '';
      let bodyTimedOut = false;
      try {
        for await (const chunk of res.body) {
          body += (chunk as Buffer).toString('utf8');
          if (body.length >= ERROR_BODY_READ_CHARS) break;
        }
      } catch {
        bodyTimedOut = controller.signal.aborted; // else the body broke off: keep what arrived
        res.body.destroy();
      }
      return { status, body, bodyTimedOut, retryAfter, location: undefined };
    } catch (err) {
      const timedOut = controller.signal.aborted;
      const error = (timedOut ? controller.signal.reason : err) as NodeJS.ErrnoException;
      const failure = timedOut ? undefined : connectionFailure(tlsAlertOf(err) ?? err, request.url, proxyOf(request));
      return { error: failure ? error : (refusedRequest(err) ?? error), timedOut, failure };
    } finally {
      if (!draining) clearTimeout(timer);
    }
  }

  /** attemptOnce: one attempt (with the same-origin redirects it follows), as the Sender's result. */
  async function attemptOnce(
    request: RenderedRequest,
    { timeoutMs, destination }: SendOptions,
  ): Promise<DeliveryResult> {
    const began = Date.now();
    let reply = await exchange(request, timeoutMs);
    let hops = 0;
    if ('status' in reply && (reply.status === 307 || reply.status === 308)) {
      // Followed within the attempt's time, same origin only, keeping method, headers and body.
      let url = request.url;
      for (
        let next = sameOrigin(reply.location, url);
        next && hops < MAX_SAME_ORIGIN_REDIRECTS;
        next = sameOrigin(reply.location, url)
      ) {
        options.metrics.deliveryAttempts.inc({ destination, result: '3xx' });
        const left = timeoutMs - (Date.now() - began);
        if (left <= 0) {
          reply = {
            error: Object.assign(new Error(`no response within ${timeoutMs} ms`), { code: 'ETIMEDOUT' }),
            timedOut: true,
          };
          break;
        }
        hops++;
        url = next;
        reply = await exchange({ ...request, url }, left);
        if (!('status' in reply) || (reply.status !== 307 && reply.status !== 308)) break;
      }
    }
    if ('error' in reply && reply.failure) {
      options.metrics.deliveryAttempts.inc({ destination, result: reply.failure.result });
      return failure({ error: reply.failure.message, retryable: reply.failure.retryable });
    }
    if ('error' in reply) {
      options.metrics.deliveryAttempts.inc({ destination, result: reply.timedOut ? 'timeout' : 'network' });
      const detail = reply.timedOut ? reply.error.message : `${reply.error.code ?? 'error'}: ${reply.error.message}`;
      return failure({ error: detail, retryable: reply.error.code !== REFUSED_REQUEST, timedOut: reply.timedOut });
    }
    const { status } = reply;
    options.metrics.deliveryAttempts.inc({
      destination,
      result: status === 429 ? '429' : `${Math.floor(status / 100)}xx`,
    });
    if (isSuccess(status)) return { outcome: 'delivered', attempts: 1, status };
    if (isRedirect(status))
      return failure({
        status,
        error: redirectError(status, reply.location, request, hops),
        retryable: true,
        final: true,
      });
    const excerpt = reply.body ? errorExcerpt(reply.body, request) : '';
    const unread = reply.bodyTimedOut ? ` (body not read within ${Math.min(BODY_READ_MS, timeoutMs)} ms)` : '';
    return failure({
      status,
      error: `HTTP ${status}${excerpt ? `: ${excerpt}` : ''}${unread}`,
      retryable: isRetryableStatus(status),
      retryAfterMs: parseRetryAfter(reply.retryAfter ?? null),
    });
  }

  // Not an async wrapper: a delivery waiting on the network holds one frame per layer.
  return { send: attemptOnce };
}

/** failure: a failed attempt as the Sender's result — rejected when retrying cannot help, else failed. */
function failure(attempt: FailedAttempt): DeliveryResult {
  const failed = { attempts: 1, status: attempt.status, error: attempt.error };
  if (!attempt.retryable) return { outcome: 'rejected', ...failed };
  return {
    outcome: 'failed',
    ...failed,
    retryAfterMs: attempt.retryAfterMs,
    ...(attempt.final ? { final: true } : {}),
    ...(attempt.timedOut ? { timedOut: true } : {}),
  };
}

function isSuccess(status: number): boolean {
  return status >= 200 && status < 300;
}

function isRedirect(status: number): boolean {
  return status >= 300 && status < 400;
}

/** hostOnly: a proxy URL's host and port, never its credentials. */
function hostOnly(uri: string): string {
  try {
    return new URL(uri).host;
  } catch {
    return '(unparsable proxy URL)';
  }
}

function first(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/** 307 and 308 keep the method and body: followed to the same origin (scheme, host, port), at most this often. */
const MAX_SAME_ORIGIN_REDIRECTS = 2;

/** sameOrigin: the Location as an absolute URL when it stays on the origin of `from`, else undefined. */
function sameOrigin(location: string | undefined, from: string): string | undefined {
  if (!location) return undefined;
  try {
    const to = new URL(location, from);
    return to.origin === new URL(from).origin ? to.href : undefined;
  } catch {
    return undefined;
  }
}

/**
 * redirectError: any other 3xx is not a delivery (not followed — a rule's request must not be sent somewhere
 * its document did not name; 301/302/303 may turn a POST into a GET). It names the Location's host only: a
 * path or query may carry tokens.
 */
function redirectError(
  status: number,
  location: string | undefined,
  request: RenderedRequest,
  followed: number,
): string {
  let target = 'no Location';
  if (location) {
    try {
      const to = new URL(location, request.url);
      target = to.host === new URL(request.url).host ? 'the same host' : to.host;
    } catch {
      target = 'an invalid Location';
    }
  }
  const after = followed > 0 ? ` after ${followed} followed on the same origin` : '';
  return `HTTP ${status}: redirect to ${target}, not followed${after} (fix the destination URL)`;
}

/** Requests undici refuses before sending (a malformed URL or header): retrying cannot fix them. */
const REFUSED_REQUEST = 'EINVALIDREQUEST';

/** refusedRequest turns undici's refusal of a malformed request into an error that is not retried. */
function refusedRequest(err: unknown): NodeJS.ErrnoException | undefined {
  const code = (err as { code?: string }).code;
  if (code !== 'UND_ERR_INVALID_ARG' && code !== 'ERR_INVALID_URL') return undefined;
  return Object.assign(new Error(`invalid request: ${(err as Error).message}`), { code: REFUSED_REQUEST });
}
