/**
 * Redis-backed stores (REDIS_URL): delivered actions and throttle windows shared by every replica and
 * kept across restarts. When Redis is unreachable the stores fail open — a delivery is sent (at least
 * once) and a throttle admits — and each failure is counted and logged: a store outage must never lose
 * an event.
 */
import { Redis } from 'ioredis';
import type { DeliveredStore } from '../deliver/delivered-store.js';
import type { Logger } from '../log.js';
import type { ThrottleStore } from '../match/throttle.js';
import type { Metrics } from '../metrics.js';
import type { PositionStore } from '../receive/watch-position.js';

const PREFIX = 'kube-event-rules:';
/** How long start-up waits for the first Redis connection before serving anyway (failing open). */
const CONNECT_WAIT_MS = 5000;
/** A watch position older than this is useless (Events live an hour); it expires rather than linger. */
const POSITION_TTL_MS = 7 * 24 * 3600_000;

/** Atomic sliding window: drop expired entries, re-admit a known occurrence, admit while under max. */
const ADMIT = `
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[1]) - tonumber(ARGV[2]))
if redis.call('ZSCORE', KEYS[1], ARGV[4]) then return 1 end
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[3]) then return 0 end
if ARGV[5] == '0' then
  redis.call('ZADD', KEYS[1], ARGV[1], ARGV[4])
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 1`;

export interface RedisStores {
  delivered: DeliveredStore;
  throttle: ThrottleStore;
  /** Standalone mode's watch position, so a restart resumes instead of resending. */
  position: PositionStore;
  /**
   * Resolves once connected, or after `CONNECT_WAIT_MS` with a warning: commands are not queued while
   * disconnected, so events taken before the first connection would all fail open (no dedup, no throttle).
   */
  connected: Promise<void>;
  close(): Promise<void>;
}

export function createRedisStores(url: string, windowMs: number, metrics: Metrics, log: Logger): RedisStores {
  // Fail fast instead of queueing commands while disconnected: the hot path must not wait on Redis.
  const redis = new Redis(url, { maxRetriesPerRequest: 1, enableOfflineQueue: false, connectTimeout: 2000, commandTimeout: 1000 });
  redis.on('error', (err: Error) => log.warn({ err: err.message }, 'redis: connection problem'));
  const failed = (op: string, err: unknown) => {
    metrics.storeErrors.inc({ op });
    log.warn({ op, err: (err as Error).message }, 'redis store unavailable; failing open (the action is sent / admitted)');
  };

  const connected = new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      log.warn({ waitedMs: CONNECT_WAIT_MS }, 'redis: not connected yet; starting anyway and failing open until it is');
      resolve();
    }, CONNECT_WAIT_MS).unref();
    redis.once('ready', () => {
      clearTimeout(timer);
      resolve();
    });
  });

  return {
    connected,
    delivered: {
      async has(key) {
        try {
          return (await redis.exists(`${PREFIX}delivered:${key}`)) === 1;
        } catch (err) {
          failed('delivered_get', err);
          return false;
        }
      },
      async add(key) {
        try {
          await redis.set(`${PREFIX}delivered:${key}`, '1', 'PX', Math.max(1, windowMs));
        } catch (err) {
          failed('delivered_set', err);
        }
      },
    },
    throttle: {
      async admit(key, occurrence, windowMs, max, peek = false) {
        try {
          const result = await redis.eval(ADMIT, 1, `${PREFIX}throttle:${key}`, Date.now(), Math.max(1, Math.round(windowMs)), max, occurrence, peek ? '1' : '0');
          return result === 1;
        } catch (err) {
          failed('throttle', err);
          return true;
        }
      },
    },
    position: {
      async get(key) {
        await connected; // read once at start: worth waiting for the connection, unlike the hot path
        try {
          return (await redis.get(`${PREFIX}position:${key}`)) ?? undefined;
        } catch (err) {
          failed('position_get', err);
          return undefined;
        }
      },
      async set(key, value) {
        try {
          await redis.set(`${PREFIX}position:${key}`, value, 'PX', POSITION_TTL_MS);
        } catch (err) {
          failed('position_set', err);
        }
      },
    },
    async close() {
      redis.disconnect();
    },
  };
}
