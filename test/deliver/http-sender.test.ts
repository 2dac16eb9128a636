import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { createHttpSender } from '../../src/deliver/http-sender.js';
import { backoffMs, parseRetryAfter } from '../../src/deliver/retry-policy.js';
import type { RenderedRequest } from '../../src/render/render-request.js';
import { startCaptureSink, type CaptureSink } from '../support/capture-sink.js';
import { createMetrics } from '../support/quiet.js';
import { closedPort } from '../support/ports.js';

const context = { rule: 'r', ceId: 'c', occurrence: 'o' };

describe('http sender (against a real local server)', () => {
  let sink: CaptureSink;
  const metrics = createMetrics();
  const sender = createHttpSender({ attempts: 3, retryAfterMaxMs: 1000, metrics });
  const request = (path: string): RenderedRequest => ({
    method: 'POST',
    url: `${sink.url}${path}`,
    headers: { 'content-type': 'application/json', authorization: 'Bearer t' },
    body: '{"a":1}',
    secretHeaders: ['authorization'],
    secretUrl: false,
  });
  const send = (path: string, timeoutMs = 300, deadlineMs = 3000) =>
    sender.send(request(path), { timeoutMs, deadline: Date.now() + deadlineMs, destination: 'd', context });

  before(async () => {
    sink = await startCaptureSink();
  });
  after(() => sink.close());

  it('delivers method, headers and body as rendered', async () => {
    const result = await send('/ok');
    assert.deepEqual(result, { outcome: 'delivered', attempts: 1, status: 200 });
    const [captured] = sink.received('/ok');
    assert.equal(captured.method, 'POST');
    assert.equal(captured.headers.authorization, 'Bearer t');
    assert.deepEqual(captured.json(), { a: 1 });
  });

  it('retries 500 and 503, then delivers', async () => {
    sink.respond('/flaky', 500, 503);
    const result = await send('/flaky');
    assert.equal(result.outcome, 'delivered');
    assert.equal(result.attempts, 3);
    assert.equal(sink.received('/flaky').length, 3);
  });

  it('gives up after the configured attempts with the last error', async () => {
    sink.always('/down', { status: 502, body: 'bad gateway' });
    const result = await send('/down');
    sink.always('/down', undefined);
    assert.equal(result.outcome, 'failed');
    assert.equal(result.attempts, 3);
    assert.equal(result.error, 'HTTP 502: bad gateway');
  });

  it('does not retry a permanent 4xx', async () => {
    sink.respond('/bad', { status: 400, body: '{"message":"missing text"}' });
    const result = await send('/bad');
    assert.equal(result.outcome, 'rejected');
    assert.equal(result.attempts, 1);
    assert.match(result.error!, /HTTP 400: \{"message":"missing text"\}/);
  });

  it('honours a short Retry-After on 429', async () => {
    sink.respond('/throttled', { status: 429, retryAfter: '0.3' });
    const started = Date.now();
    const result = await send('/throttled');
    assert.equal(result.outcome, 'delivered');
    assert.ok(Date.now() - started >= 290, 'waited for Retry-After');
  });

  it('hands a long Retry-After back instead of waiting in the request', async () => {
    sink.respond('/slow-down', { status: 429, retryAfter: '30' });
    const result = await send('/slow-down');
    assert.equal(result.outcome, 'failed');
    assert.equal(result.attempts, 1);
    assert.equal(result.retryAfterMs, 30_000);
  });

  it('times out a hanging destination and retries', async () => {
    sink.respond('/hang', 'hang');
    const result = await send('/hang', 200);
    assert.equal(result.outcome, 'delivered');
    assert.equal(result.attempts, 2);
  });

  it('retries a reset connection', async () => {
    sink.respond('/reset', 'reset');
    const result = await send('/reset');
    assert.equal(result.outcome, 'delivered');
    assert.equal(result.attempts, 2);
  });

  it('reports an unreachable destination as failed with the network error', async () => {
    const port = await closedPort();
    const result = await sender.send(
      { ...request('/'), url: `http://127.0.0.1:${port}/x` },
      { timeoutMs: 300, deadline: Date.now() + 2000, destination: 'd', context },
    );
    assert.equal(result.outcome, 'failed');
    assert.match(result.error!, /ECONNREFUSED/);
    assert.equal(result.attempts, 3, 'a refused connection is retried');
  });

  it('says how long it waited when a destination hangs every time', async () => {
    sink.always('/stuck', 'hang');
    const result = await send('/stuck', 150, 2000);
    sink.always('/stuck', undefined);
    assert.equal(result.outcome, 'failed');
    assert.equal(result.error, 'no response within 150 ms');
  });

  it('keeps only the start of a huge error body', async () => {
    sink.respond('/huge-error', { status: 400, body: 'e'.repeat(2_000_000) });
    const result = await send('/huge-error');
    assert.equal(result.outcome, 'rejected');
    assert.equal(result.error, `HTTP 400: ${'e'.repeat(200)}`);
  });

  it('refuses a request with a malformed header once, without retrying', async () => {
    const bad = { ...request('/never-reached'), headers: { 'x-broken': 'line\r\nbreak' } };
    const result = await sender.send(bad, { timeoutMs: 300, deadline: Date.now() + 2000, destination: 'd', context });
    assert.equal(result.outcome, 'rejected');
    assert.equal(result.attempts, 1);
    assert.match(result.error!, /^EINVALIDREQUEST: invalid request: /);
    assert.equal(sink.received('/never-reached').length, 0);
  });

  it('starts no attempt after the deadline', async () => {
    sink.always('/never', 'hang');
    const started = Date.now();
    const result = await send('/never', 5000, 400);
    sink.always('/never', undefined);
    assert.equal(result.outcome, 'failed');
    assert.ok(Date.now() - started < 1500, `took ${Date.now() - started} ms`);
  });

  it('a redirect is not a delivery: failed (the Broker redelivers), not retried in-request, never followed', async () => {
    for (const [status, location, target] of [
      [301, 'http://elsewhere.example:8443/hooks/T0/B0/secret-token?x=1', 'elsewhere.example:8443'],
      [302, '/moved', 'the same host'],
      [307, 'http://elsewhere.example/next', 'elsewhere.example'],
      [308, undefined, 'no Location'],
    ] as const) {
      sink.respond(`/redirect-${status}`, { status, headers: location ? { location } : {} });
      const result = await send(`/redirect-${status}`);
      assert.equal(result.outcome, 'failed', `${status} is not a rejection`);
      assert.equal(result.attempts, 1);
      assert.equal(result.status, status);
      assert.equal(result.error, `HTTP ${status}: redirect to ${target}, not followed (fix the destination URL)`);
      assert.doesNotMatch(result.error, /secret-token|hooks/, 'only the host of the Location');
    }
    assert.equal(sink.received('/moved').length + sink.received('/next').length, 0, 'nothing followed');
  });

  it("an attempt cut short by the deadline is inconclusive (no verdict for the breaker); the destination's own timeout is not", async () => {
    sink.always('/cut-short', 'hang');
    const byDeadline = await sender.send(request('/cut-short'), {
      timeoutMs: 5000,
      deadline: Date.now() + 300,
      destination: 'd',
      context,
    });
    const byOwnTimeout = await sender.send(request('/cut-short'), {
      timeoutMs: 150,
      deadline: Date.now() + 3000,
      destination: 'd',
      context,
    });
    sink.always('/cut-short', undefined);
    assert.equal(byDeadline.outcome, 'failed');
    assert.equal(byDeadline.inconclusive, true);
    assert.equal(byOwnTimeout.outcome, 'failed');
    assert.equal(byOwnTimeout.inconclusive, false);
  });

  it('follows a 307 or 308 to the same origin (method and body kept, at most twice), never elsewhere', async () => {
    sink.respond('/hop-1', { status: 308, headers: { location: '/hop-2' } });
    sink.respond('/hop-2', { status: 307, headers: { location: `${sink.url}/landed` } });
    const followed = await send('/hop-1');
    assert.deepEqual(followed, { outcome: 'delivered', attempts: 1, status: 200 });
    const [landed] = sink.received('/landed');
    assert.equal(landed.method, 'POST');
    assert.deepEqual(landed.json(), { a: 1 });
    assert.equal(landed.headers.authorization, 'Bearer t');

    sink.always('/loop', { status: 308, headers: { location: '/loop' } });
    const looping = await send('/loop');
    sink.always('/loop', undefined);
    assert.equal(looping.outcome, 'failed');
    assert.equal(
      looping.error,
      'HTTP 308: redirect to the same host, not followed after 2 followed on the same origin (fix the destination URL)',
    );
    assert.equal(sink.received('/loop').length, 3, 'the first request and two redirects');

    const port = sink.url.split(':').pop();
    sink.respond('/other-port', { status: 307, headers: { location: `http://localhost:${port}/landed` } });
    const crossOrigin = await send('/other-port');
    assert.equal(crossOrigin.outcome, 'failed');
    assert.match(crossOrigin.error!, /^HTTP 307: redirect to localhost:\d+, not followed/);
    assert.equal(
      sink.received('/landed').length,
      1,
      'another host (even the same address by another name) is never followed',
    );
  });

  it('starts no attempt that is too close to the deadline (queued that long): failed with Retry-After, nothing sent', async () => {
    const result = await sender.send(request('/too-late'), {
      timeoutMs: 300,
      deadline: Date.now() + 20,
      destination: 'd',
      context,
    });
    assert.equal(result.outcome, 'failed');
    assert.equal(result.inconclusive, true);
    assert.equal(result.attempts, 0);
    assert.equal(result.retryAfterMs, 1000);
    assert.match(result.error!, /too close to the request's deadline to start attempt 1/);
    assert.equal(sink.received('/too-late').length, 0);
  });

  describe('slow and echoing bodies', () => {
    let url = '';
    let server: Server;
    before(async () => {
      server = createServer((req, res) => {
        const chunks: Buffer[] = [];
        req.on('data', (c: Buffer) => chunks.push(c));
        req.on('end', () => {
          if (req.url === '/endless-200') {
            res.writeHead(200, { 'content-type': 'text/plain' });
            res.write('accepted; more follows'); // and never ends
          } else if (req.url === '/trickling-404') {
            res.writeHead(404, { 'content-type': 'text/plain' });
            const drip = setInterval(() => res.write('.'), 100); // a byte every 100 ms, never ending
            res.on('close', () => clearInterval(drip));
          } else if (req.url === '/echo-500') {
            res.writeHead(500, { 'content-type': 'application/json' });
            res.end(
              JSON.stringify({
                error: 'upstream failed',
                youSent: req.headers,
                note: 'password=hunter2-long and Bearer abcdef123456',
              }),
            );
          }
        });
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    after(async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    });
    const to = (path: string, headers: Record<string, string> = {}): RenderedRequest => ({
      ...request('/'),
      url: `${url}${path}`,
      headers: { 'content-type': 'application/json', ...headers },
    });

    it('a 2xx counts as delivered once its status is known, whatever its body does', async () => {
      // Waiting for a body that never ends would hold the delivery (and its slot) until the attempt timeout.
      const started = Date.now();
      const results = await Promise.all(
        Array.from({ length: 3 }, () =>
          sender.send(to('/endless-200'), { timeoutMs: 6000, deadline: Date.now() + 8000, destination: 'd', context }),
        ),
      );
      for (const result of results) assert.deepEqual(result, { outcome: 'delivered', attempts: 1, status: 200 });
      assert.ok(Date.now() - started < 6000, 'answered before the attempt timeout: the body was not waited for');
    });

    it('a 4xx stays a permanent rejection however slowly its body arrives', async () => {
      const result = await sender.send(to('/trickling-404'), {
        timeoutMs: 4000,
        deadline: Date.now() + 8000,
        destination: 'd',
        context,
      });
      assert.equal(result.outcome, 'rejected');
      assert.equal(result.attempts, 1);
      assert.match(result.error!, /^HTTP 404: \.+ \(body not read within 1000 ms\)$/);
    });

    it('an error body keeps status and a short excerpt, never our header values or credential-shaped text', async () => {
      const secretHeaders = {
        authorization: 'Bearer s3cr3t-token-value',
        'x-api-key': 'k-1234567890',
        'x-signed': 'sig "quoted" value',
      };
      const result = await sender.send(to('/echo-500', secretHeaders), {
        timeoutMs: 1000,
        deadline: Date.now() + 3000,
        destination: 'd',
        context,
      });
      assert.equal(result.outcome, 'failed');
      assert.match(result.error!, /^HTTP 500: \{"error":"upstream failed"/);
      for (const leaked of ['s3cr3t-token-value', 'k-1234567890', 'quoted', 'hunter2', 'abcdef123456'])
        assert.ok(!result.error!.includes(leaked), `${leaked} in ${result.error}`);
      assert.ok(result.error!.length <= 'HTTP 500: '.length + 200);
      assert.match(result.error!, /\[redacted\]/);
    });
  });

  it('counts attempts by result', async () => {
    const text = await metrics.registry.getSingleMetricAsString('kube_event_rules_delivery_attempts_total');
    for (const result of ['2xx', '3xx', '4xx', '5xx', '429', 'timeout', 'network'])
      assert.match(text, new RegExp(`result="${result}"`));
  });
});

describe('retry policy', () => {
  it('parses Retry-After seconds and HTTP dates', () => {
    assert.equal(parseRetryAfter('2'), 2000);
    assert.equal(parseRetryAfter('1.5'), 1500);
    assert.equal(parseRetryAfter(new Date(10_000).toUTCString(), 4000), 6000);
    assert.equal(parseRetryAfter('soon'), undefined);
    assert.equal(parseRetryAfter(null), undefined);
  });

  it('backs off exponentially with full jitter, capped', () => {
    assert.equal(
      backoffMs(1, () => 0.999),
      99,
    );
    assert.equal(
      backoffMs(3, () => 0.999),
      399,
    );
    assert.equal(
      backoffMs(20, () => 0.999),
      1998,
    );
    assert.equal(
      backoffMs(5, () => 0),
      0,
    );
  });
});
