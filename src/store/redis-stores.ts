/**
 * Redis-backed stores (REDIS_URL): delivered actions, throttle windows and open change regions shared by every replica
 * and kept across restarts. Redis is a helper, never a bottleneck:
 * - every command has a short timeout (`REDIS_TIMEOUT_MS`) and goes out at once, in parallel with the
 *   others (not auto-pipelined: ioredis holds an auto-pipeline back until the previous one is answered,
 *   so one stalled batch would hold every later command past its timeout);
 * - the first timeout or connection failure marks Redis unavailable: it is then skipped (no command
 *   waits, none queues) until a background PING answers or the connection is ready again, so a stall
 *   costs an event at most one timeout and the client's queue stays bounded;
 * - while it is skipped, the per-replica memory stores stand in: throttle limits hold per replica
 *   instead of across replicas (the memory windows hold this replica's admissions all along, so they do
 *   not start empty), and delivered actions are remembered by this replica only;
 * - one warning when it becomes unavailable and one line when it is back, never one per event.
 * A store outage never loses an event: at worst an action is sent twice (dedup not shared meanwhile).
 */
import { Redis } from 'ioredis';
import { createMemoryDeliveredStore, type DeliveredStore } from '../deliver/delivered-store.js';
import type { Logger } from '../log.js';
import { createMemoryThrottleStore, type ThrottleStore } from '../match/throttle.js';
import type { Metrics } from '../metrics.js';
import type { PositionStore } from '../receive/watch-position.js';
import type { RegionLimits, RegionStore } from './region-store.js';
import { createRedisRegionStore } from './redis-region-store.js';
import type { DigestStore } from '../match/digest-store.js';
import { createRedisDigestStore } from './redis-digest-store.js';

const PREFIX = 'kube-event-rules:';
/** How long start-up waits for the first Redis connection before serving anyway (on the memory stores). */
const CONNECT_WAIT_MS = 5000;
/** While Redis is unavailable, how often a PING checks whether it is back. */
const PROBE_EVERY_MS = 1000;
/** Most commands awaiting an answer; beyond, Redis is too slow to wait for and the memory stores answer. */
const MAX_PENDING = 1000;
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

type AdmitCommand = (
  key: string,
  now: number,
  windowMs: number,
  max: number,
  occurrence: string,
  peek: string,
) => Promise<number>;

export interface RedisStoreOptions {
  url: string;
  /** How long delivered actions are remembered. */
  windowMs: number;
  /** Per-command timeout. */
  timeoutMs: number;
  /** Size of the memory delivered store that stands in while Redis is unavailable. */
  fallbackCacheSize: number;
  /** Most change regions open at once, and per team namespace. */
  regionLimits: RegionLimits;
}

export interface RedisStores {
  delivered: DeliveredStore;
  throttle: ThrottleStore;
  /** Standalone mode's watch position, so a restart resumes instead of resending. */
  position: PositionStore;
  /** Open change regions (no memory stand-in: a region must be seen by every replica). */
  regions: RegionStore;
  /** Digest groups, shared by every replica (src/store/redis-digest-store.ts). */
  digests: DigestStore;
  /**
   * Resolves once connected, or after `CONNECT_WAIT_MS` with a warning: events taken before the first
   * connection would all use the per-replica memory stores.
   */
  connected: Promise<void>;
  /** Whether commands go to Redis now (false while it is skipped). */
  available(): boolean;
  /** Commands sent and not answered yet, the client's own queues included (bounded). */
  pendingCommands(): number;
  close(): Promise<void>;
}

export function createRedisStores(options: RedisStoreOptions, metrics: Metrics, log: Logger): RedisStores {
  // No offline queue and no resend after a reconnect: a command either goes out now or fails at once.
  const redis = new Redis(options.url, {
    maxRetriesPerRequest: 0,
    enableOfflineQueue: false,
    connectTimeout: 2000,
    commandTimeout: options.timeoutMs,
  });
  redis.defineCommand('admitThrottle', { numberOfKeys: 1, lua: ADMIT });
  const admitThrottle = (redis as unknown as { admitThrottle: AdmitCommand }).admitThrottle.bind(redis);
  const memoryDelivered = createMemoryDeliveredStore(options.windowMs, options.fallbackCacheSize);
  const memoryThrottle = createMemoryThrottleStore();

  let up = false;
  let everReady = false;
  let pending = 0;
  let probe: NodeJS.Timeout | undefined;
  let closing = false;
  /** Set once a delivered action was recorded in memory (Redis unavailable): Redis misses look there too. */
  let recordedInMemory = false;

  const markDown = (reason: string) => {
    if (closing) return;
    if (up) {
      up = false;
      log.warn(
        { reason },
        'redis unavailable: skipping it; throttles hold per replica and delivered actions are remembered by this replica until it is back',
      );
    }
    probe ??= setInterval(checkBack, PROBE_EVERY_MS).unref();
  };
  const markUp = () => {
    if (up || closing) return;
    up = true;
    clearInterval(probe);
    probe = undefined;
    if (everReady) log.info('redis is back: throttles and delivered actions are shared again');
    everReady = true;
  };
  /** checkBack: a PING in the background; no event waits for it. */
  let pinging = false;
  const queued = () => {
    const internals = redis as unknown as { commandQueue: { length: number }; offlineQueue: { length: number } };
    return internals.commandQueue.length + internals.offlineQueue.length;
  };
  function checkBack(): void {
    // One PING at a time, and none while the client already holds MAX_PENDING unanswered commands (a timed-out
    // command stays queued until its answer comes): a Redis stalled for hours must not fill the client up.
    if (redis.status !== 'ready' || pinging || queued() >= MAX_PENDING) return;
    pinging = true;
    redis
      .ping()
      .then(markUp, () => undefined)
      .finally(() => (pinging = false));
  }
  redis.on('ready', markUp);
  redis.on('close', () => markDown('connection closed'));
  redis.on('error', (err: Error) => {
    log.debug({ err: err.message }, 'redis: connection problem');
    markDown(err.message);
  });

  const usable = () => up && pending < MAX_PENDING;
  /** run sends one command, or answers from memory when Redis is skipped or the command fails. */
  async function run<T>(op: string, command: () => Promise<T>, fallback: () => Promise<T>): Promise<T> {
    if (!usable()) {
      metrics.storeErrors.inc({ op });
      return fallback();
    }
    pending++;
    try {
      return await command();
    } catch (err) {
      metrics.storeErrors.inc({ op });
      markDown(`${op}: ${(err as Error).message}`);
      return fallback();
    } finally {
      pending--;
    }
  }

  const connected = new Promise<void>((resolve) => {
    const timer = setTimeout(() => {
      log.warn(
        { waitedMs: CONNECT_WAIT_MS },
        'redis: not connected yet; starting anyway on the per-replica memory stores until it is',
      );
      resolve();
    }, CONNECT_WAIT_MS).unref();
    redis.once('ready', () => {
      clearTimeout(timer);
      resolve();
    });
  });

  return {
    connected,
    available: () => up,
    pendingCommands: queued,
    delivered: {
      has: (key) =>
        run(
          'delivered_get',
          // What was recorded in memory during an outage still counts once Redis is back.
          async () =>
            (await redis.exists(`${PREFIX}delivered:${key}`)) === 1 ||
            (recordedInMemory && (await memoryDelivered.has(key))),
          () => memoryDelivered.has(key),
        ),
      add: (key) =>
        run(
          'delivered_set',
          async () => void (await redis.set(`${PREFIX}delivered:${key}`, '1', 'PX', Math.max(1, options.windowMs))),
          () => {
            recordedInMemory = true;
            return memoryDelivered.add(key);
          },
        ),
    },
    throttle: {
      admit: (key, occurrence, windowMs, max, peek = false) =>
        run(
          'throttle',
          async () => {
            const admitted =
              (await admitThrottle(
                `${PREFIX}throttle:${key}`,
                Date.now(),
                Math.max(1, Math.round(windowMs)),
                max,
                occurrence,
                peek ? '1' : '0',
              )) === 1;
            // This replica's own admissions are kept in memory too, so the stand-in window is not empty
            // when Redis goes away (a single replica keeps its exact limit through an outage).
            if (admitted && !peek) await memoryThrottle.admit(key, occurrence, windowMs, max);
            return admitted;
          },
          () => memoryThrottle.admit(key, occurrence, windowMs, max, peek),
        ),
    },
    position: {
      async get(key) {
        await connected; // read once at start: worth waiting for the connection, unlike the hot path
        return run(
          'position_get',
          async () => (await redis.get(`${PREFIX}position:${key}`)) ?? undefined,
          async () => undefined,
        );
      },
      set: (key, value) =>
        run(
          'position_set',
          async () => void (await redis.set(`${PREFIX}position:${key}`, value, 'PX', POSITION_TTL_MS)),
          async () => undefined,
        ),
    },
    regions: createRedisRegionStore(
      redis,
      (command) => run('region', command, () => Promise.reject(new Error('Redis is unavailable'))),
      options.regionLimits,
    ),
    digests: createRedisDigestStore(redis, run, PREFIX, options.windowMs),
    async close() {
      closing = true;
      clearInterval(probe);
      // QUIT lets the commands already sent finish; a Redis that does not answer is cut off.
      await Promise.race([
        redis.quit().catch(() => undefined),
        new Promise((resolve) => setTimeout(resolve, options.timeoutMs).unref()),
      ]);
      redis.disconnect();
    },
  };
}
