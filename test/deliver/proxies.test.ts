/**
 * Egress through a real forward proxy (Debian's tinyproxy, started here on 127.0.0.1): HTTPS deliveries by
 * CONNECT tunnel with HTTPS_PROXY, NO_PROXY honoured, a destination's own proxy with credentials from a
 * Secret (never in any message), and each proxy failure ending in its documented outcome and message.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createHttpSender } from '../../src/deliver/http-sender.js';
import type { DeliveryResult } from '../../src/deliver/destination.js';
import type { RenderedRequest } from '../../src/render/render-request.js';
import { compileTransport, resolveTransport } from '../../src/render/transport.js';
import type { SecretReader } from '../../src/render/value-source.js';
import type { DestinationSpec } from '../../src/rules/document.js';
import { knownSecrets } from '../../src/redact.js';
import { createMetrics } from '../support/quiet.js';
import { needs } from '../support/needs.js';
import { closedPort } from '../support/ports.js';
import { createTestPki, type TestCa, type TestPki } from '../support/test-pki.js';
import { startHttpsReceiver, type HttpsReceiver } from '../support/https-receiver.js';
import { startCaptureSink, type CaptureSink } from '../support/capture-sink.js';
import { startTinyproxy, type Tinyproxy } from '../support/tinyproxy.js';
import { sampleValue } from '../support/running-service.js';

const context = { rule: 'r', ceId: 'c', occurrence: 'o' };
const PROXY_USER = 'egress';
const PROXY_PASSWORD = 'proxy-password-5d2c';

describe(
  'egress proxies (tinyproxy on 127.0.0.1, HTTPS receiver with a private CA)',
  { skip: needs('openssl', 'tinyproxy') },
  () => {
    let pki: TestPki;
    let ca: TestCa;
    let receiver: HttpsReceiver;
    let sink: CaptureSink;
    let open: Tinyproxy;
    let guarded: Tinyproxy;
    const metrics = createMetrics();

    before(async () => {
      pki = createTestPki();
      ca = pki.createCa('proxy-test-ca');
      receiver = await startHttpsReceiver(ca.issue('behind-proxy'));
      sink = await startCaptureSink();
      open = await startTinyproxy();
      guarded = await startTinyproxy({ auth: { user: PROXY_USER, password: PROXY_PASSWORD } });
    });
    after(async () => {
      await open?.stop();
      await guarded?.stop();
      await receiver?.close();
      await sink?.close();
      pki?.remove();
    });

    const secrets: SecretReader = {
      read: async (_name, key) => (key === 'username' ? PROXY_USER : key === 'password' ? password : assert.fail(key)),
    };
    let password = PROXY_PASSWORD;

    async function request(url: string, spec: Omit<DestinationSpec, 'url'> = {}): Promise<RenderedRequest> {
      const compiled = compileTransport({
        url,
        tls: url.startsWith('https:') ? { ca: { file: ca.certFile } } : undefined,
        ...spec,
      });
      const transport =
        compiled && (await resolveTransport(compiled, 'behind-proxy', { secrets, configMaps: secrets, files: true }));
      return {
        method: 'POST',
        url,
        headers: { 'content-type': 'application/json' },
        body: '{"via":"proxy"}',
        secretHeaders: [],
        secretUrl: false,
        transport,
      };
    }
    const sendWith = (env: Record<string, string>, req: RenderedRequest): Promise<DeliveryResult> =>
      createHttpSender({ attempts: 2, retryAfterMaxMs: 1000, metrics, env }).send(req, {
        timeoutMs: 3000,
        deadline: Date.now() + 8000,
        destination: 'behind-proxy',
        context,
      });
    const attempts = async (result: string) =>
      sampleValue(await metrics.registry.metrics(), 'kube_event_rules_delivery_attempts_total', { result });

    it('HTTPS_PROXY: an HTTPS delivery goes through the proxy by a CONNECT tunnel (TLS end to end, private CA)', async () => {
      const result = await sendWith({ HTTPS_PROXY: open.url }, await request(`${receiver.url}/tunnelled`));
      assert.deepEqual(result, { outcome: 'delivered', attempts: 1, status: 204 });
      assert.ok(
        open.requests().includes(`CONNECT 127.0.0.1:${receiver.port} HTTP/1.1`),
        `the proxy carried it: ${open.requests().join(' | ')}`,
      );
      assert.equal(receiver.received.at(-1)?.path, '/tunnelled');
    });

    it('lower-case https_proxy wins over HTTPS_PROXY (as in curl)', async () => {
      const dead = `http://127.0.0.1:${await closedPort()}`;
      const result = await sendWith(
        { https_proxy: open.url, HTTPS_PROXY: dead },
        await request(`${receiver.url}/lower-case`),
      );
      assert.equal(result.outcome, 'delivered');
    });

    it('NO_PROXY: a matching host is reached directly, bypassing a proxy that is down', async () => {
      const dead = `http://127.0.0.1:${await closedPort()}`;
      const direct = await sendWith(
        { HTTPS_PROXY: dead, NO_PROXY: 'localhost,127.0.0.1' },
        await request(`${receiver.url}/direct`),
      );
      assert.deepEqual(direct, { outcome: 'delivered', attempts: 1, status: 204 });
      // Without NO_PROXY the same delivery needs that proxy: refused, retryable (the Broker will redeliver).
      const viaDead = await sendWith({ HTTPS_PROXY: dead }, await request(`${receiver.url}/needs-proxy`));
      assert.equal(viaDead.outcome, 'failed');
      assert.equal(viaDead.attempts, 2, 'retried with backoff');
      assert.match(viaDead.error!, /the connection was refused \(127\.0\.0\.1:\d+\) \(ECONNREFUSED\)$/);
    });

    it('HTTP_PROXY carries plain http destinations in forward-proxy form', async () => {
      const result = await sendWith({ HTTP_PROXY: open.url }, await request(`${sink.url}/forwarded`));
      assert.deepEqual(result, { outcome: 'delivered', attempts: 1, status: 200 });
      assert.ok(
        open.requests().includes(`POST ${sink.url}/forwarded HTTP/1.1`),
        `the proxy carried it: ${open.requests().join(' | ')}`,
      );
    });

    it("a destination's own proxy with credentials from a Secret: delivered; the credentials appear in no message", async () => {
      const result = await sendWith({}, await request(`${receiver.url}/own-proxy`, { proxy: ownProxy() }));
      assert.deepEqual(result, { outcome: 'delivered', attempts: 1, status: 204 });
      assert.ok(guarded.requests().includes(`CONNECT 127.0.0.1:${receiver.port} HTTP/1.1`));
      const basic = Buffer.from(`${PROXY_USER}:${PROXY_PASSWORD}`).toString('base64');
      assert.equal(
        knownSecrets.redact(`p=${PROXY_PASSWORD} b=${basic}`),
        'p=[redacted] b=[redacted]',
        'the password and the Basic token are remembered for redaction',
      );
    });

    const ownProxy = () => ({
      url: guarded.url,
      username: { secretKeyRef: { name: 'egress-proxy', key: 'username' } },
      password: { secretKeyRef: { name: 'egress-proxy', key: 'password' } },
    });

    it('proxy 407 (no credentials given): rejected at once, result proxy, the message names the proxy by host only', async () => {
      const before = await attempts('proxy');
      const result = await sendWith(
        {},
        await request(`${receiver.url}/no-credentials`, { proxy: { url: guarded.url } }),
      );
      assert.equal(result.outcome, 'rejected');
      assert.equal(result.attempts, 1, 'not retried: the credentials must change first');
      assert.equal(
        result.error,
        `proxy ${guarded.host} refused the request to 127.0.0.1:${receiver.port}: 407 Proxy Authentication Required (check the proxy credentials)`,
      );
      assert.equal((await attempts('proxy')) - before, 1);
    });

    it('wrong credentials (tinyproxy answers 401): rejected the same way, and the password is in no message', async () => {
      password = 'wrong-password-8e1f';
      try {
        const result = await sendWith({}, await request(`${receiver.url}/bad-credentials`, { proxy: ownProxy() }));
        assert.equal(result.outcome, 'rejected');
        assert.equal(
          result.error,
          `proxy ${guarded.host} refused the request to 127.0.0.1:${receiver.port}: 401 Unauthorized (check the proxy credentials)`,
        );
      } finally {
        password = PROXY_PASSWORD;
      }
    });

    it('HTTPS_PROXY with credentials in its URL: a refusal names the proxy by host, never its credentials', async () => {
      const noCredentials = await sendWith({ HTTPS_PROXY: guarded.url }, await request(`${receiver.url}/env-407`));
      assert.equal(noCredentials.outcome, 'rejected');
      assert.match(
        noCredentials.error!,
        new RegExp(`^proxy ${guarded.host} refused the request to .*: 407 Proxy Authentication Required`),
      );
      const wrong = await sendWith(
        { HTTPS_PROXY: `http://${PROXY_USER}:not-it-3b7a@${guarded.host}` },
        await request(`${receiver.url}/env-401`),
      );
      assert.equal(wrong.outcome, 'rejected');
      assert.match(wrong.error!, new RegExp(`^proxy ${guarded.host} refused the request to .*: 401 Unauthorized`));
      assert.equal(
        knownSecrets.redact('x not-it-3b7a'),
        'x [redacted]',
        'the URL password is remembered for redaction',
      );
    });

    it('proxy 5xx (it cannot reach the destination): retried, then handed back to the Broker', async () => {
      const before = await attempts('proxy');
      const result = await sendWith(
        { HTTPS_PROXY: open.url },
        await request(`https://127.0.0.1:${await closedPort()}/unreachable`),
      );
      assert.equal(result.outcome, 'failed');
      assert.equal(result.attempts, 2);
      assert.match(result.error!, new RegExp(`^proxy ${open.host} answered 5\\d\\d to CONNECT 127\\.0\\.0\\.1:\\d+$`));
      assert.equal((await attempts('proxy')) - before, 2);
    });
  },
);
