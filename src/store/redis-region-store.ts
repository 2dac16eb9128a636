/**
 * Open change regions in Redis (REDIS_URL): shared by every replica and kept across restarts. One hash per
 * region (`start`, and while a closing holds it `claim` and `claimedUntil`) and one sorted set of region ids
 * by when the timeout sweep should look at them (its timeout, a retry time, or the end of a claim). Each step is one
 * Lua script, so opening (first start wins, REGION_MAX_OPEN), claiming and clearing are atomic across replicas.
 *
 * No memory fallback, unlike the delivered and throttle stores: a start kept by one replica only would be
 * closed by nobody when the end reaches another. A start that cannot be recorded, or an end that cannot
 * claim, is answered 503 and the Broker redelivers it.
 */
import type { Redis } from 'ioredis';
import type { RegionLimits, RegionStart, RegionStore } from './region-store.js';

const PREFIX = 'kube-event-rules:region:';
const DUE = 'kube-event-rules:regions-due';
/**
 * Per team namespace: its open regions, scored by when their hash expires (so one that expired unswept stops counting).
 */
const TEAM = 'kube-event-rules:regions-team:';
/**
 * A region's hash outlives its timeout by this much, so one whose sweep never ran (every replica down) is not kept
 * forever.
 */
const KEEP_PAST_TIMEOUT_MS = 24 * 3_600_000;

const OPEN = `
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
if redis.call('ZCARD', KEYS[2]) >= tonumber(ARGV[4]) then return -1 end
if ARGV[6] ~= '' then
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', ARGV[7])
  if redis.call('ZCARD', KEYS[3]) >= tonumber(ARGV[6]) then return -2 end
  redis.call('ZADD', KEYS[3], tonumber(ARGV[7]) + tonumber(ARGV[5]), ARGV[3])
end
redis.call('HSET', KEYS[1], 'start', ARGV[1], 'claimedUntil', 0)
redis.call('PEXPIRE', KEYS[1], ARGV[5])
redis.call('ZADD', KEYS[2], ARGV[2], ARGV[3])
return 1`;

const CLAIM = `
local start = redis.call('HGET', KEYS[1], 'start')
if not start then
  redis.call('ZREM', KEYS[2], ARGV[4])
  return {0}
end
if tonumber(redis.call('HGET', KEYS[1], 'claimedUntil') or '0') > tonumber(ARGV[2]) then return {1} end
local claimedUntil = tonumber(ARGV[2]) + tonumber(ARGV[3])
redis.call('HSET', KEYS[1], 'claim', ARGV[1], 'claimedUntil', claimedUntil)
-- The sweep passes over it while it is claimed.
redis.call('ZADD', KEYS[2], 'GT', claimedUntil, ARGV[4])
return {2, start}`;

const CLEAR = `
if redis.call('HGET', KEYS[1], 'claim') ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
redis.call('ZREM', KEYS[2], ARGV[2])
redis.call('ZREM', KEYS[3], ARGV[2])
return 1`;

const RELEASE = `
if redis.call('HGET', KEYS[1], 'claim') ~= ARGV[1] then return 0 end
redis.call('HDEL', KEYS[1], 'claim')
redis.call('HSET', KEYS[1], 'claimedUntil', 0)
local due = ARGV[3]
if due == '' then due = cjson.decode(redis.call('HGET', KEYS[1], 'start')).expiresAt end
redis.call('ZADD', KEYS[2], due, ARGV[2])
return 1`;

/**
 * Sends one command through the Redis stores' guard (timeout, unavailability); rejects instead of answering from
 * memory.
 */
export type RegionCommand = <T>(command: () => Promise<T>) => Promise<T>;

interface Scripts {
  regionOpen(
    hash: string,
    due: string,
    team: string,
    start: string,
    at: number,
    id: string,
    maxOpen: number,
    keepMs: number,
    teamMax: string,
    now: number,
  ): Promise<number>;
  regionClaim(
    hash: string,
    due: string,
    token: string,
    now: number,
    holdMs: number,
    id: string,
  ): Promise<[number, string?]>;
  regionClear(hash: string, due: string, team: string, token: string, id: string): Promise<number>;
  regionRelease(hash: string, due: string, token: string, id: string, retryAt: string): Promise<number>;
}

export function createRedisRegionStore(
  redis: Redis,
  command: RegionCommand,
  limits: RegionLimits,
  now: () => number = Date.now,
): RegionStore {
  redis.defineCommand('regionOpen', { numberOfKeys: 3, lua: OPEN });
  redis.defineCommand('regionClaim', { numberOfKeys: 2, lua: CLAIM });
  redis.defineCommand('regionClear', { numberOfKeys: 3, lua: CLEAR });
  redis.defineCommand('regionRelease', { numberOfKeys: 2, lua: RELEASE });
  const scripts = redis as unknown as Scripts;
  const hash = (id: string) => `${PREFIX}${id}`;
  const team = (scope: string | undefined) => `${TEAM}${scope ?? ''}`;
  return {
    open: (id, start) =>
      command(async () => {
        const keepMs = Math.max(1, start.expiresAt - now()) + KEEP_PAST_TIMEOUT_MS;
        const teamMax = start.scope === undefined ? '' : String(limits.maxOpenPerTeam);
        const opened = await scripts.regionOpen(
          hash(id),
          DUE,
          team(start.scope),
          JSON.stringify(start),
          start.expiresAt,
          id,
          limits.maxOpen,
          keepMs,
          teamMax,
          now(),
        );
        return opened === 1 ? 'opened' : opened === 0 ? 'open' : opened === -1 ? 'full' : 'team_full';
      }),
    peek: (id) =>
      command(async () => {
        const start = await redis.hget(hash(id), 'start');
        return start === null ? undefined : (JSON.parse(start) as RegionStart);
      }),
    claim: (id, token, holdMs) =>
      command(async () => {
        const [status, start] = await scripts.regionClaim(
          hash(id),
          DUE,
          token,
          now(),
          Math.max(1, Math.round(holdMs)),
          id,
        );
        if (status === 0) return { status: 'none' } as const;
        if (status === 1) return { status: 'claimed' } as const;
        return { status: 'taken', start: JSON.parse(start!) as RegionStart } as const;
      }),
    clear: (id, token, scope) =>
      command(async () => void (await scripts.regionClear(hash(id), DUE, team(scope), token, id))),
    release: (id, token, retryAt) =>
      command(
        async () =>
          void (await scripts.regionRelease(hash(id), DUE, token, id, retryAt === undefined ? '' : String(retryAt))),
      ),
    due: (at, limit) => command(() => redis.zrangebyscore(DUE, '-inf', at, 'LIMIT', 0, limit)),
    size: () => command(() => redis.zcard(DUE)),
  };
}
