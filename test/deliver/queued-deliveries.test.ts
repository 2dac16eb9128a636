/**
 * Queued deliveries are checked again when their turn comes: none is sent after its request's deadline,
 * and none once the destination's breaker has opened. The destinations here count what actually reaches
 * them (TCP connections and requests), so a send the service should not have made cannot hide.
 */
import assert from 'node:assert/strict';
import { createServer as createHttpServer } from 'node:http';
import { createServer as createTcpServer, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { describe, it } from 'node:test';
import { loadConfig } from '../../src/config.js';
import { createBulkheads } from '../../src/deliver/bulkhead.js';
import { createMetrics } from '../../src/metrics.js';
import { loadFixture, withEvent } from '../support/fixtures.js';
import { startService } from '../support/running-service.js';

const event = (n: number) =>
  withEvent(loadFixture('pod-backoff-crashloop-resource-update'), (body, headers) => {
    body.metadata.uid = `queued-${n}`;
    headers['ce-id'] = `queued-${n}`;
  });

const rules = (url: string, timeoutSeconds: number) => ({
  'r.yaml': `
destinations:
  target: { url: "${url}/in", timeoutSeconds: ${timeoutSeconds} }
rules:
  - name: every-backoff
    conditions: { all: [ { fact: event, path: $.reason, operator: equal, value: BackOff } ] }
    actions: [ { destination: target, body: '{ "uid": metadata.uid }' } ]
`,
});

const settings = (overrides: Partial<ReturnType<typeof loadConfig>['destinations']>) => ({
  ...loadConfig({}).destinations,
  ...overrides,
});

describe('queued deliveries', () => {
  it('a slow healthy destination and a burst larger than its slots: nothing queued is sent after its deadline', async () => {
    let connections = 0;
    const requests: string[] = [];
    const server = createHttpServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => setTimeout(() => res.writeHead(200).end('{}'), 700));
      req.on('end', () =>
        requests.push((JSON.parse(Buffer.concat(chunks).toString() || '{}') as { uid?: string }).uid ?? '?'),
      );
    });
    let started = 0;
    server.on('request', () => started++);
    server.on('connection', () => connections++);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    const svc = await startService({
      rules: rules(url, 3),
      config: {
        deliveryAttempts: 1,
        deliveryDeadlineMs: 1000,
        destinations: settings({ maxConcurrent: 2, maxQueued: 50, failureThreshold: 3 }),
      },
    });
    try {
      const answers = await Promise.all(Array.from({ length: 12 }, (_, i) => svc.post(event(i))));
      const queuedTooLong = answers.filter((a) => /deadline passed while queued/.test(a.text));
      const notSent = answers.filter((a) => /deadline/.test(a.text)); // also: a slot came too close to the deadline
      assert.ok(queuedTooLong.length >= 1, 'some deliveries waited past their deadline in the queue');
      // Attempts cut short by the deadline, and deliveries never started, say nothing about the destination.
      assert.ok(
        !answers.some((a) => /circuit open/.test(a.text)),
        'a slow but healthy destination does not open its breaker',
      );
      for (const a of queuedTooLong) {
        assert.equal(a.status, 429, 'refused with Retry-After');
        assert.ok(Number(a.headers.get('retry-after')) >= 1);
      }
      await new Promise((r) => setTimeout(r, 300)); // anything sent late would arrive now
      assert.ok(
        started <= answers.length - notSent.length,
        `only deliveries that got a slot before their deadline reached the destination (${started} requests, ${notSent.length} of ${answers.length} not sent)`,
      );
      assert.ok(started < 12);
    } finally {
      await svc.stop();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it("attempts cut short by the request's deadline do not open the breaker of a slow but healthy destination", async () => {
    const server = createHttpServer((req, res) => {
      req.resume();
      req.on('end', () => setTimeout(() => res.writeHead(200).end('{}'), 700));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const svc = await startService({
      rules: rules(`http://127.0.0.1:${(server.address() as AddressInfo).port}`, 3),
      config: {
        deliveryAttempts: 1,
        deliveryDeadlineMs: 400,
        destinations: settings({ maxConcurrent: 1, failureThreshold: 2, openMs: 60_000 }),
      },
    });
    try {
      for (let i = 0; i < 4; i++) {
        // Each attempt is cut at the 400 ms deadline, before the 700 ms answer.
        const answer = await svc.post(event(200 + i));
        assert.equal(answer.status, 503);
        assert.doesNotMatch(answer.text, /circuit open/, `event ${i}: the breaker stays closed`);
      }
    } finally {
      await svc.stop();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
  });

  it('a blackholed destination: once the breaker opens, queued deliveries never connect', async () => {
    const sockets = new Set<Socket>();
    let connections = 0; // TCP connections that carried a request (undici may open spare idle ones)
    const blackhole = createTcpServer((socket) => {
      socket.once('data', () => connections++);
      sockets.add(socket); // accepts, reads, never answers
      socket.on('close', () => sockets.delete(socket));
      socket.on('error', () => undefined);
    });
    await new Promise<void>((resolve) => blackhole.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(blackhole.address() as AddressInfo).port}`;
    const svc = await startService({
      rules: rules(url, 0.3),
      config: {
        deliveryAttempts: 1,
        deliveryDeadlineMs: 5000,
        destinations: settings({ maxConcurrent: 2, maxQueued: 50, failureThreshold: 3, openMs: 10_000 }),
      },
    });
    try {
      const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => svc.post(event(100 + i))));
      assert.ok(
        answers.every((a) => a.status === 429 || a.status === 503),
        'nothing acknowledged',
      );
      const refused = answers.filter((a) => /circuit open/.test(a.text));
      // Two slots: at most 3 failures to open it plus the one still in flight when it opened.
      assert.ok(connections <= 4, `${connections} TCP connections reached the blackhole`);
      assert.equal(
        refused.length,
        20 - connections,
        'every delivery that did not connect was refused by the open breaker',
      );
    } finally {
      await svc.stop();
      for (const socket of sockets) socket.destroy();
      await new Promise<void>((resolve) => blackhole.close(() => resolve()));
    }
  });

  it('a waiter whose deadline passes leaves the queue; an opening breaker refuses every waiter at once', async () => {
    const bulkheads = createBulkheads(
      { maxConcurrent: 1, maxQueued: 5, failureThreshold: 1, openMs: 60_000 },
      createMetrics(),
    );
    const held = await bulkheads.acquire('k', 'd', Date.now() + 5000);
    assert.ok(held.ok);
    const late = await bulkheads.acquire('k', 'd', Date.now() + 50);
    assert.deepEqual(
      late.ok ? 'admitted' : late.reason,
      "destination busy: the request's deadline passed while queued (1 in flight)",
    );
    const waiting = [bulkheads.acquire('k', 'd', Date.now() + 5000), bulkheads.acquire('k', 'd', Date.now() + 5000)];
    held.release(true); // the breaker opens
    for (const admission of await Promise.all(waiting)) {
      assert.equal(admission.ok, false);
      if (!admission.ok) assert.match(admission.reason, /circuit open: 1 consecutive failures/);
    }
  });
});
