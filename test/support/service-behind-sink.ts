/**
 * serviceBehindSink: the setup most service suites share — a capture sink, and a service whose rules (built
 * from the sink's URL) deliver to it; both started before the suite's tests and stopped after them.
 */
import { after, before } from 'node:test';
import type { Config } from '../../src/config.js';
import { startCaptureSink, type CaptureSink } from './capture-sink.js';
import { startService, type RunningService } from './running-service.js';

export interface ServiceBehindSink {
  sink: CaptureSink;
  svc: RunningService;
}

/** Call inside describe(): the returned object is filled in by the suite's before hook. */
export function serviceBehindSink(
  rules: (sinkUrl: string) => Record<string, string>,
  config?: Partial<Config>,
): ServiceBehindSink {
  const running = {} as ServiceBehindSink;
  before(async () => {
    running.sink = await startCaptureSink();
    running.svc = await startService({ rules: rules(running.sink.url), config });
  });
  after(async () => {
    await running.svc?.stop();
    await running.sink?.close();
  });
  return running;
}
