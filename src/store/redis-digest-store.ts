/**
 * Digest groups in Redis (REDIS_URL): shared by every replica and kept when one dies. Each step is one Lua
 * script, so it is atomic across replicas:
 * - record: skip an occurrence already recorded (a key per occurrence, for DEDUP_WINDOW_SECONDS), else add
 *   it to the key's open group — opening one, due at now + window, if there is none — and close the group
 *   when it reaches `maxEvents` (due now);
 * - claim: take due groups from one sorted set (score = when due), close each (the next occurrence of its
 *   key opens a new group) and push its score out by the lease with this claim's token: exactly one
 *   replica holds it, and if that replica dies the group is due again when the lease ends;
 * - complete / retry later: only with the token of the claim, so a late claimant cannot undo a newer one.
 * Group keys are hashes of (rule, key): event data sets the key, and it must not set Redis key names.
 * Every command goes through the stores' guard (timeout, skipped while Redis is unavailable); a record
 * that cannot be made throws, and the event is answered 503.
 */
import { createHash, randomUUID } from 'node:crypto';
import type { Redis } from 'ioredis';
import type { DigestClaim, DigestGroup, DigestStore } from '../match/digest-store.js';

const RECORD = `
local prefix, gid, now = ARGV[1], ARGV[2], tonumber(ARGV[3])
if redis.call('EXISTS', KEYS[1]) == 1 then return 'duplicate' end
local open = redis.call('GET', KEYS[2])
if open then gid = open else
  if tonumber(redis.call('HGET', KEYS[4], ARGV[10]) or '0') >= tonumber(ARGV[9]) then return 'over_capacity' end
  redis.call('HSET', prefix .. gid, 'rule', ARGV[10], 'key', ARGV[11], 'start', now, 'end', now, 'count', 0, 'failures', 0, 'open', KEYS[2])
  redis.call('SET', KEYS[2], gid)
  redis.call('ZADD', KEYS[3], now + tonumber(ARGV[4]), gid)
  redis.call('HINCRBY', KEYS[4], ARGV[10], 1)
end
local g = prefix .. gid
local count = redis.call('HINCRBY', g, 'count', 1)
redis.call('HSET', g, 'end', now)
local keep = tonumber(ARGV[6])
if count <= keep then redis.call('RPUSH', g .. ':first', ARGV[7]) else
  redis.call('RPUSH', g .. ':last', ARGV[7])
  redis.call('LTRIM', g .. ':last', -keep, -1)
end
local max = tonumber(ARGV[5])
if max > 0 and count >= max then
  redis.call('DEL', KEYS[2])
  redis.call('ZADD', KEYS[3], now, gid)
end
redis.call('SET', KEYS[1], '1', 'PX', ARGV[8])
return 'recorded'`;

const CLAIM = `
local prefix, now = ARGV[1], tonumber(ARGV[2])
local out = {}
for _, gid in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', now, 'LIMIT', 0, tonumber(ARGV[4]))) do
  local g = prefix .. gid
  if redis.call('EXISTS', g) == 0 then redis.call('ZREM', KEYS[1], gid) else
    local open = redis.call('HGET', g, 'open')
    if open and redis.call('GET', open) == gid then redis.call('DEL', open) end
    local token = ARGV[5] .. ':' .. gid
    redis.call('HSET', g, 'lease', token)
    redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), gid)
    table.insert(out, { gid, token, redis.call('HGETALL', g), redis.call('LRANGE', g .. ':first', 0, -1), redis.call('LRANGE', g .. ':last', 0, -1) })
  end
end
return out`;

const COMPLETE = `
local g = ARGV[1] .. ARGV[2]
if redis.call('HGET', g, 'lease') ~= ARGV[3] then return 0 end
local rule = redis.call('HGET', g, 'rule')
redis.call('DEL', g, g .. ':first', g .. ':last')
redis.call('ZREM', KEYS[1], ARGV[2])
if redis.call('HINCRBY', KEYS[2], rule, -1) <= 0 then redis.call('HDEL', KEYS[2], rule) end
return 1`;

const RETRY_LATER = `
local g = ARGV[1] .. ARGV[2]
if redis.call('HGET', g, 'lease') ~= ARGV[3] then return 0 end
redis.call('HINCRBY', g, 'failures', 1)
redis.call('HDEL', g, 'lease')
redis.call('ZADD', KEYS[1], tonumber(ARGV[4]), ARGV[2])
return 1`;

/** Runs one command through the stores' guard: `fallback` answers when Redis is skipped or the command fails. */
export type GuardedRun = <T>(op: string, command: () => Promise<T>, fallback: () => Promise<T>) => Promise<T>;

type Script = (...args: (string | number)[]) => Promise<unknown>;

const hashed = (...parts: string[]) => createHash('sha256').update(parts.join('\n')).digest('base64url').slice(0, 32);

export function createRedisDigestStore(
  redis: Redis,
  run: GuardedRun,
  prefix: string,
  seenWindowMs: number,
): DigestStore {
  const scripts = {
    digestRecord: [4, RECORD],
    digestClaim: [1, CLAIM],
    digestComplete: [2, COMPLETE],
    digestRetryLater: [1, RETRY_LATER],
  } as const;
  for (const [name, [numberOfKeys, lua]] of Object.entries(scripts)) redis.defineCommand(name, { numberOfKeys, lua });
  const call = (name: keyof typeof scripts) => (redis as unknown as Record<string, Script>)[name].bind(redis);
  const [record, claim, complete, retryLater] = [
    call('digestRecord'),
    call('digestClaim'),
    call('digestComplete'),
    call('digestRetryLater'),
  ];
  const groupPrefix = `${prefix}digest:group:`;
  const due = `${prefix}digest:due`;
  const perRule = `${prefix}digest:groups-per-rule`;
  const openKey = (rule: string, key: string) => `${prefix}digest:open:${hashed(rule, key)}`;
  const unrecorded = (): Promise<never> =>
    Promise.reject(new Error('Redis is unavailable: the occurrence is not recorded'));
  /** The instance's part of every claim token: the claim itself adds the group's id. */
  const instance = randomUUID();

  return {
    shared: true,
    record: (rule, key, id, view, options) =>
      run(
        'digest_record',
        async () =>
          (await record(
            `${prefix}digest:seen:${hashed(rule, id)}`,
            openKey(rule, key),
            due,
            perRule,
            groupPrefix,
            randomUUID(),
            Date.now(),
            Math.round(options.windowMs),
            options.maxEvents ?? 0,
            options.keep,
            JSON.stringify(view),
            Math.max(1, seenWindowMs),
            options.maxGroups,
            rule,
            key,
          )) as 'recorded' | 'duplicate' | 'over_capacity',
        unrecorded,
      ),
    peek: (rule, key) =>
      run(
        'digest_peek',
        async () => {
          const gid = await redis.get(openKey(rule, key));
          const count = gid ? await redis.hget(`${groupPrefix}${gid}`, 'count') : null;
          return count === null ? undefined : Number(count);
        },
        async () => undefined,
      ),
    claimDue: (leaseMs, limit) =>
      run(
        'digest_claim',
        async () => {
          const rows = (await claim(due, groupPrefix, Date.now(), Math.round(leaseMs), limit, instance)) as [
            string,
            string,
            string[],
            string[],
            string[],
          ][];
          return rows.map(([id, token, fields, first, last]): DigestClaim => ({
            group: groupOf(id, fields, first, last),
            token,
          }));
        },
        async () => [],
      ),
    complete: (c) =>
      run(
        'digest_complete',
        async () => void (await complete(due, perRule, groupPrefix, c.group.id, c.token)),
        async () => undefined,
      ),
    retryLater: (c, at) =>
      run(
        'digest_retry',
        async () => void (await retryLater(due, groupPrefix, c.group.id, c.token, Math.round(at))),
        async () => undefined,
      ),
    groups: () =>
      run(
        'digest_groups',
        () => redis.zcard(due),
        async () => 0,
      ),
    groupsByRule: () =>
      run(
        'digest_groups',
        async () => new Map(Object.entries(await redis.hgetall(perRule)).map(([rule, n]) => [rule, Number(n)])),
        async () => new Map<string, number>(),
      ),
    // Groups in Redis outlive this process: another replica (or this one, restarted) flushes them when due.
    dueNow: async () => undefined,
  };
}

function groupOf(id: string, fields: string[], first: string[], last: string[]): DigestGroup {
  const hash: Record<string, string> = {};
  for (let i = 0; i < fields.length; i += 2) hash[fields[i]] = fields[i + 1];
  const parse = (views: string[]) => views.map((v) => JSON.parse(v) as Record<string, unknown>);
  return {
    id,
    rule: hash.rule,
    key: hash.key,
    count: Number(hash.count),
    start: Number(hash.start),
    end: Number(hash.end),
    first: parse(first),
    last: parse(last),
    failures: Number(hash.failures),
  };
}
