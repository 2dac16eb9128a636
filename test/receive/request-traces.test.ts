/**
 * POST /'s traces end with the status the sender is answered with — also when the request fails after the
 * traces began (a bad batch entry, an unexpected error) — and its reservations are released exactly once.
 */
import assert from 'node:assert/strict';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import Koa from 'koa';
import { loadConfig } from '../../src/config.js';
import { InvalidEventError } from '../../src/errors.js';
import type { Pipeline, PreparedRequest } from '../../src/pipeline.js';
import { createActionCapacity } from '../../src/receive/action-capacity.js';
import { createBodyBytesInFlight } from '../../src/receive/body-bytes-in-flight.js';
import { errorMiddleware } from '../../src/receive/error-middleware.js';
import { eventsRoute } from '../../src/receive/events-route.js';
import { NO_SPAN, type EventTrace } from '../../src/trace/event-trace.js';
import type { Tracing } from '../../src/trace/tracing.js';
import { createLogger } from '../../src/log.js';
import { bodyOf, loadFixture } from '../support/fixtures.js';
import { createMetrics } from '../support/quiet.js';

type Failure = 'none' | 'over capacity' | 'prepare: bad entry' | 'prepare: unexpected' | 'run: unexpected';

describe('POST / traces and reservations', () => {
  let failure: Failure = 'none';
  const ended: number[] = [];
  const capacity = createActionCapacity({ perRequest: 100, perProcess: 100 });
  const bodyBytes = createBodyBytesInFlight(10_000_000);
  let server: Server;
  let url = '';

  const pipeline: Pipeline = {
    prepare(): Promise<PreparedRequest> {
      if (failure === 'prepare: bad entry')
        return Promise.reject(new InvalidEventError(400, 'invalid event', 'batch entry 1: no involvedObject'));
      if (failure === 'prepare: unexpected') return Promise.reject(new Error('prepare broke'));
      return Promise.resolve({
        actions: failure === 'over capacity' ? 1000 : 2, // the per-request cap is 100
        teamActions: new Map(),
        run: () => (failure === 'run: unexpected' ? Promise.reject(new Error('run broke')) : Promise.resolve([])),
      });
    },
    process: () => Promise.resolve([]),
  };
  const trace: EventTrace = {
    match: () => NO_SPAN,
    render: () => NO_SPAN,
    deliver: () => NO_SPAN,
    end: (status) => void ended.push(status),
  };
  const tracing: Tracing = { exporting: true, begin: () => trace, close: () => Promise.resolve() };

  before(async () => {
    const app = new Koa();
    app.use(errorMiddleware(createLogger('silent'), () => undefined));
    app.use(
      eventsRoute({
        config: loadConfig({}),
        pipeline,
        dryRunPipeline: pipeline,
        capacity,
        metrics: createMetrics(),
        isReady: () => true,
        bodyBytes,
        tracing,
      }),
    );
    await new Promise<void>((resolve) => {
      server = app.listen(0, '127.0.0.1', resolve);
    });
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
  });
  after(() => new Promise<void>((resolve) => server.close(() => resolve())));

  const post = async (mode: Failure) => {
    failure = mode;
    ended.length = 0;
    const fixture = loadFixture('pod-backoff-crashloop-resource-update');
    const res = await fetch(url, { method: 'POST', headers: fixture.headers, body: bodyOf(fixture) });
    await res.text();
    return res.status;
  };

  for (const [mode, status] of [
    ['none', 204],
    ['over capacity', 429],
    ['prepare: bad entry', 400],
    ['prepare: unexpected', 500],
    ['run: unexpected', 500],
  ] as const) {
    it(`${mode}: answered ${status}, the trace ended with ${status}, nothing left reserved`, async () => {
      assert.equal(await post(mode), status);
      assert.deepEqual(ended, [status]);
      assert.equal(capacity.inFlight, 0);
      assert.equal(bodyBytes.inFlight, 0);
    });
  }
});
