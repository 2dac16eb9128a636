/**
 * errorMiddleware sits at the top of the Koa chain: every error becomes a JSON answer
 * `{ error, detail }` with the right status; internals of unexpected errors are never exposed.
 */
import type { Middleware } from 'koa';
import { InvalidEventError } from '../errors.js';
import type { Logger } from '../log.js';

/** raw-body's error types, as the messages a client can act on. */
const BODY_ERRORS: Record<string, string> = {
  'entity.too.large': 'body too large',
  'request.aborted': 'request aborted',
  'request.size.invalid': 'body size does not match content-length',
  'encoding.unsupported': 'unsupported content encoding',
  'charset.unsupported': 'unsupported charset',
};

/**
 * `answered` runs on every answer, an error's too, once it is set (the app redacts JSON bodies there: one
 * outermost frame per request instead of two).
 */
export function errorMiddleware(
  log: Logger,
  onInvalid: (headers: Record<string, unknown>, error: InvalidEventError, path: string) => void,
  answered: (ctx: Parameters<Middleware>[0]) => void = () => undefined,
): Middleware {
  return async function handleErrors(ctx, next) {
    try {
      await next();
    } catch (err) {
      const invalid = toInvalidEvent(err);
      if (invalid) {
        onInvalid(ctx.headers, invalid, ctx.path);
        log.warn(
          { status: invalid.status, error: invalid.error, detail: invalid.detail, ceId: ctx.get('ce-id') || undefined },
          'request rejected',
        );
        ctx.status = invalid.status;
        ctx.body = { error: invalid.error, detail: invalid.detail };
      } else {
        log.error({ err }, 'unexpected error while handling a request');
        ctx.status = 500;
        ctx.body = { error: 'internal error', detail: 'see the service log' };
      }
    }
    answered(ctx);
  };
}

/** answerStatus: the status the error middleware answers an error with (4xx for bad input, else 500). */
export function answerStatus(err: unknown): number {
  return toInvalidEvent(err)?.status ?? 500;
}

function toInvalidEvent(err: unknown): InvalidEventError | undefined {
  if (err instanceof InvalidEventError) return err;
  const { status, type, message } = (err ?? {}) as { status?: number; type?: string; message?: string };
  if (typeof status === 'number' && status >= 400 && status < 500) {
    return new InvalidEventError(status, (type && BODY_ERRORS[type]) ?? 'bad request', message ?? 'request rejected');
  }
  return undefined;
}
