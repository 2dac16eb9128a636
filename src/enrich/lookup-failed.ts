/**
 * LookupFailedError: a lookup a rule needs could not be answered now. The pipeline answers the event 503,
 * or 429 with Retry-After when `retryAfterMs` is set (rate limited), so the Broker redelivers it.
 */
export class LookupFailedError extends Error {
  constructor(
    message: string,
    readonly retryAfterMs?: number,
  ) {
    super(message);
    this.name = 'LookupFailedError';
  }
}
