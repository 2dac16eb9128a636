/**
 * The few error classes the pipeline decides on. Each carries what its caller needs:
 * an HTTP status for input errors, a position for template errors, retryability for deliveries.
 */

/** InvalidEventError: the request is not an acceptable CloudEvent; answered with `status` and a JSON body. */
export class InvalidEventError extends Error {
  constructor(
    readonly status: number,
    readonly error: string,
    readonly detail: string,
    options?: { cause?: unknown },
  ) {
    super(`${error}: ${detail}`, options);
    this.name = 'InvalidEventError';
  }
}

/** TemplateError: a JSONata template failed to compile or evaluate (JSONata throws plain objects; we wrap them). */
export class TemplateError extends Error {
  constructor(
    message: string,
    readonly code?: string,
    readonly position?: number,
  ) {
    super(message);
    this.name = 'TemplateError';
  }
}

/**
 * ConfigurationError: a destination cannot be used as configured (unset env, secret without a cluster). Not retryable.
 */
export class ConfigurationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigurationError';
  }
}

/**
 * MissingObjectError: a Secret or ConfigMap a destination names (or its key) does not exist, or may not be
 * read. A configuration problem, but one the next rollout may fix (a GitOps tool creating the Secret after
 * the rule): the event is redelivered by the Broker, and dead-lettered in the end, instead of acknowledged.
 */
export class MissingObjectError extends ConfigurationError {
  constructor(message: string) {
    super(message);
    this.name = 'MissingObjectError';
  }
}

/** describeError gives a one-line message for anything thrown, including JSONata's plain-object errors. */
export function describeError(err: unknown): string {
  if (err instanceof Error) return err.message;
  if (err && typeof err === 'object' && 'message' in err) return String(err.message);
  return String(err);
}

/**
 * TemplateQueueError: an evaluation was not started — the template workers' queue was full, or its request's
 * deadline passed while it waited. Not the template's fault (no quarantine): the action is failed with
 * Retry-After, so the Broker redelivers later (429 when every failure is such a wait).
 */
export class TemplateQueueError extends Error {
  constructor(
    message: string,
    readonly retryAfterMs: number,
  ) {
    super(message);
    this.name = 'TemplateQueueError';
  }
}
