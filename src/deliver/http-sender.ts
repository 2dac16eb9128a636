/**
 * httpSender delivers with the built-in fetch (keep-alive by default): a timeout per attempt, a few
 * attempts with backoff on retryable failures, Retry-After honoured up to a cap, every response body
 * consumed so sockets go back to the pool.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { Metrics } from '../metrics.js';
import type { RenderedRequest } from '../render/render-request.js';
import type { DeliveryResult, SendOptions, Sender } from './destination.js';
import { backoffMs, isRetryableStatus, parseRetryAfter } from './retry-policy.js';

export interface HttpSenderOptions {
  attempts: number;
  retryAfterMaxMs: number;
  metrics: Metrics;
}

const ERROR_BODY_CHARS = 200;

type Attempt = { status?: number; error: string; retryable: boolean; retryAfterMs?: number } | { status: number; ok: true };

export function createHttpSender(options: HttpSenderOptions): Sender {
  async function attemptOnce(request: RenderedRequest, timeoutMs: number, destination: string): Promise<Attempt> {
    let response: Response;
    try {
      response = await fetch(request.url, {
        method: request.method,
        headers: request.headers,
        body: request.body,
        signal: AbortSignal.timeout(timeoutMs),
      });
    } catch (err) {
      const timedOut = (err as Error).name === 'TimeoutError';
      options.metrics.deliveryAttempts.inc({ destination, result: timedOut ? 'timeout' : 'network' });
      const cause = (err as { cause?: { code?: string; message?: string } }).cause;
      const detail = timedOut ? `no response within ${timeoutMs} ms` : `${cause?.code ?? (err as Error).message}${cause?.message ? `: ${cause.message}` : ''}`;
      return { error: detail, retryable: true };
    }
    const text = await response.text().catch(() => '');
    const status = response.status;
    options.metrics.deliveryAttempts.inc({ destination, result: status === 429 ? '429' : `${Math.floor(status / 100)}xx` });
    if (status >= 200 && status < 300) return { status, ok: true };
    return {
      status,
      error: `HTTP ${status}${text ? `: ${text.slice(0, ERROR_BODY_CHARS)}` : ''}`,
      retryable: isRetryableStatus(status),
      retryAfterMs: parseRetryAfter(response.headers.get('retry-after')),
    };
  }

  return {
    async send(request, { timeoutMs, deadline, destination }): Promise<DeliveryResult> {
      for (let attempt = 1; ; attempt++) {
        const remaining = deadline - Date.now();
        const result = await attemptOnce(request, Math.max(1, Math.min(timeoutMs, remaining)), destination);
        if ('ok' in result) return { outcome: 'delivered', attempts: attempt, status: result.status };
        const failed = { attempts: attempt, status: result.status, error: result.error };
        if (!result.retryable) return { outcome: 'rejected', ...failed };
        const wait = result.retryAfterMs ?? backoffMs(attempt);
        const tooLong = result.retryAfterMs !== undefined && result.retryAfterMs > options.retryAfterMaxMs;
        if (attempt >= options.attempts || tooLong || Date.now() + wait >= deadline) {
          return { outcome: 'failed', ...failed, retryAfterMs: result.retryAfterMs };
        }
        await sleep(wait);
      }
    },
  };
}
