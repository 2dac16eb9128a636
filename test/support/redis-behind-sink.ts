/**
 * redisBehindSink: the setup the Redis suites share — Debian's redis-server and a capture sink, started
 * before the suite's tests and stopped after them. Call inside describe(); the object is filled in by the
 * suite's before hook.
 */
import { after, before } from 'node:test';
import { startCaptureSink, type CaptureSink } from './capture-sink.js';
import { startRedis } from './real-receivers.js';

export interface RedisBehindSink {
  redis: Awaited<ReturnType<typeof startRedis>>;
  sink: CaptureSink;
}

export function redisBehindSink(): RedisBehindSink {
  const running = {} as RedisBehindSink;
  before(async () => {
    running.redis = await startRedis();
    running.sink = await startCaptureSink();
  });
  after(async () => {
    await running.sink?.close();
    await running.redis?.stop();
  });
  return running;
}
