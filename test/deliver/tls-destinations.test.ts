/**
 * HTTPS destinations against real HTTPS receivers whose certificates come from CAs this test makes with
 * openssl: a private CA trusted per destination, a receiver that requires a client certificate, keep-alive
 * reuse per TLS configuration, rotation, and each TLS failure ending as a permanent rejection that says why.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { createHttpSender } from '../../src/deliver/http-sender.js';
import type { DeliveryResult } from '../../src/deliver/destination.js';
import type { RenderedRequest } from '../../src/render/render-request.js';
import { compileTransport, resolveTransport } from '../../src/render/transport.js';
import type { SecretReader } from '../../src/render/value-source.js';
import type { TlsSpec } from '../../src/rules/document.js';
import { createMetrics } from '../support/quiet.js';
import { needs } from '../support/needs.js';
import { createTestPki, type TestCa, type TestPki } from '../support/test-pki.js';
import { startHttpsReceiver, type HttpsReceiver } from '../support/https-receiver.js';
import { sampleValue } from '../support/running-service.js';
import { startCaptureSink } from '../support/capture-sink.js';

const context = { rule: 'r', ceId: 'c', occurrence: 'o' };
const noSecrets: SecretReader = { read: async () => assert.fail('no Secret expected') };

describe('TLS per destination (openssl CA, real HTTPS receivers)', { skip: needs('openssl') }, () => {
  let pki: TestPki;
  let ca: TestCa;
  let otherCa: TestCa;
  let receiver: HttpsReceiver;
  let metrics: ReturnType<typeof createMetrics>;
  let sender: ReturnType<typeof createHttpSender>;

  before(async () => {
    pki = createTestPki();
    ca = pki.createCa('private-ca');
    otherCa = pki.createCa('other-ca');
    receiver = await startHttpsReceiver(ca.issue('receiver'));
    metrics = createMetrics();
    sender = createHttpSender({ attempts: 3, retryAfterMaxMs: 1000, metrics, env: {} });
  });
  after(async () => {
    await receiver?.close();
    pki?.remove();
  });

  /** request builds the rendered request of a destination with this tls block, as the pipeline does. */
  async function request(
    url: string,
    tls: TlsSpec | undefined,
    secrets: SecretReader = noSecrets,
  ): Promise<RenderedRequest> {
    const compiled = tls && compileTransport({ url, tls });
    const transport =
      compiled && (await resolveTransport(compiled, 'grafana', { secrets, configMaps: noSecrets, files: true }));
    return {
      method: 'POST',
      url,
      headers: { 'content-type': 'application/json' },
      body: '{"a":1}',
      secretHeaders: [],
      secretUrl: false,
      transport,
    };
  }
  const send = (req: RenderedRequest, destination = 'grafana'): Promise<DeliveryResult> =>
    sender.send(req, { timeoutMs: 2000, deadline: Date.now() + 5000, destination, context });
  const attempts = async (result: string) =>
    sampleValue(await metrics.registry.metrics(), 'kube_event_rules_delivery_attempts_total', { result });

  it("delivers to a receiver whose certificate comes from the destination's private CA, reusing the connection", async () => {
    const before = receiver.connections().accepted;
    for (let i = 0; i < 6; i++) {
      // Each request resolves its transport anew (as each event does): the same material finds the same pool.
      assert.deepEqual(await send(await request(`${receiver.url}/ok`, { ca: { file: ca.certFile } })), {
        outcome: 'delivered',
        attempts: 1,
        status: 204,
      });
    }
    // The pool may open a second connection while the first is being handed back; never one per delivery.
    assert.ok(
      receiver.connections().accepted - before <= 2,
      `6 deliveries over ${receiver.connections().accepted - before} TLS connections`,
    );
    assert.equal(receiver.received.at(-1)?.body, '{"a":1}');
  });

  it('without the CA the certificate is unknown: rejected at once, result tls, with a message that says so', async () => {
    const before = await attempts('tls');
    const result = await send(await request(`${receiver.url}/no-ca`, undefined));
    assert.equal(result.outcome, 'rejected');
    assert.equal(result.attempts, 1, 'not retried: retrying cannot fix a certificate');
    assert.match(
      result.error!,
      /^TLS: the certificate of 127\.0\.0\.1:\d+ is not signed by a trusted CA \(UNABLE_TO_VERIFY_LEAF_SIGNATURE\): trust its CA with tls\.ca/,
    );
    assert.equal((await attempts('tls')) - before, 1);
  });

  it('another CA than the one that signed it: rejected as untrusted', async () => {
    const result = await send(await request(`${receiver.url}/wrong-ca`, { ca: { file: otherCa.certFile } }));
    assert.equal(result.outcome, 'rejected');
    assert.match(result.error!, /is not signed by a trusted CA/);
  });

  it('an expired certificate: rejected, and the message says expired', async () => {
    const expired = await startHttpsReceiver(ca.issue('expired', { from: '20200101000000Z', to: '20210101000000Z' }));
    try {
      const result = await send(await request(`${expired.url}/expired`, { ca: { file: ca.certFile } }));
      assert.equal(result.outcome, 'rejected');
      assert.match(result.error!, /^TLS: the certificate of 127\.0\.0\.1:\d+ has expired \(CERT_HAS_EXPIRED\)$/);
    } finally {
      await expired.close();
    }
  });

  it('a certificate for another name: rejected with the names it carries; tls.serverName verifies the name it is for', async () => {
    const elsewhere = await startHttpsReceiver(ca.issue('grafana', { names: ['DNS:grafana.internal'] }));
    try {
      const result = await send(await request(`${elsewhere.url}/name`, { ca: { file: ca.certFile } }));
      assert.equal(result.outcome, 'rejected');
      assert.match(
        result.error!,
        /^TLS: the certificate of 127\.0\.0\.1:\d+ is not for this name \(it is for DNS:grafana\.internal\): fix the URL, or set tls\.serverName/,
      );
      const named = await send(
        await request(`${elsewhere.url}/name`, { ca: { file: ca.certFile }, serverName: 'grafana.internal' }),
      );
      assert.deepEqual(named, { outcome: 'delivered', attempts: 1, status: 204 });
    } finally {
      await elsewhere.close();
    }
  });

  it('an https URL whose port speaks plain HTTP: rejected, and the message says so', async () => {
    const plain = await startCaptureSink();
    try {
      const result = await send(
        await request(`${plain.url.replace('http:', 'https:')}/plain`, { ca: { file: ca.certFile } }),
      );
      assert.equal(result.outcome, 'rejected');
      assert.match(result.error!, /^TLS: 127\.0\.0\.1:\d+ does not speak TLS on this port \(ERR_SSL_\w+\)/);
    } finally {
      await plain.close();
    }
  });

  it("insecureSkipVerify (a cluster document's opt-out) delivers to a certificate nobody trusts", async () => {
    const result = await send(await request(`${receiver.url}/insecure`, { insecureSkipVerify: true }));
    assert.equal(result.outcome, 'delivered');
  });

  it('mutual TLS: the client certificate from a Secret is presented; without it the receiver refuses the handshake (permanent)', async () => {
    const client = ca.issue('kube-event-rules', { client: true });
    const mtls = await startHttpsReceiver({ ...ca.issue('mtls-receiver'), clientCa: ca.cert });
    const secrets: SecretReader = {
      read: async (name, key) => (assert.equal(name, 'grafana-client'), key === 'tls.crt' ? client.cert : client.key),
    };
    try {
      const withCert = {
        ca: { file: ca.certFile },
        clientCert: { secretKeyRef: { name: 'grafana-client', key: 'tls.crt' } },
        clientKey: { secretKeyRef: { name: 'grafana-client', key: 'tls.key' } },
      };
      assert.deepEqual(await send(await request(`${mtls.url}/mtls`, withCert, secrets)), {
        outcome: 'delivered',
        attempts: 1,
        status: 204,
      });
      assert.equal(mtls.received.at(-1)?.clientCn, 'kube-event-rules');

      const without = await send(await request(`${mtls.url}/mtls`, { ca: { file: ca.certFile } }));
      assert.equal(without.outcome, 'rejected');
      assert.match(
        without.error!,
        /^TLS: 127\.0\.0\.1:\d+ refused the TLS handshake \(ERR_SSL_\w+\): it wants a client certificate it trusts/,
      );
      assert.ok(!without.error!.includes(client.key.slice(40, 80)));
    } finally {
      await mtls.close();
    }
  });

  it('a client key that does not belong to the certificate: a precise error before any connection', async () => {
    const a = ca.issue('a', { client: true });
    const b = ca.issue('b', { client: true });
    const secrets: SecretReader = { read: async (_name, key) => (key === 'tls.crt' ? a.cert : b.key) };
    await assert.rejects(
      request(
        `${receiver.url}/x`,
        {
          clientCert: { secretKeyRef: { name: 's', key: 'tls.crt' } },
          clientKey: { secretKeyRef: { name: 's', key: 'tls.key' } },
        },
        secrets,
      ),
      /destination grafana: tls.clientCert and tls.clientKey do not belong together/,
    );
  });

  it('a rotated CA (new material, new hash) opens a new pool and closes the old one once idle', async () => {
    const rotating = await startHttpsReceiver(ca.issue('rotating'));
    let caPem = ca.cert;
    const secrets: SecretReader = { read: async () => caPem };
    const spec = { url: rotating.url, tls: { ca: { secretKeyRef: { name: 'ca', key: 'ca.crt' } } } };
    const compiled = compileTransport(spec)!;
    const at = async () => ({
      ...(await request(`${rotating.url}/r`, undefined)),
      transport: await resolveTransport(compiled, 'rotating', { secrets, configMaps: noSecrets, files: false }),
    });
    try {
      for (let i = 0; i < 3; i++) assert.equal((await send(await at(), 'rotating')).outcome, 'delivered');
      const old = rotating.connections().open;
      assert.ok(old.length >= 1);
      // The receiver moves to a certificate of the other CA, and the Secret is rotated to that CA.
      const next = otherCa.issue('rotating');
      rotating.setCertificate(next.cert, next.key);
      caPem = otherCa.cert;
      assert.equal((await send(await at(), 'rotating')).outcome, 'delivered');
      const used = rotating.received.at(-1)!.connection;
      assert.ok(!old.includes(used), 'a new connection, verified with the new CA');
      const deadline = Date.now() + 3000;
      while (rotating.connections().open.some((id) => old.includes(id)) && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 20));
      assert.deepEqual(
        rotating.connections().open.filter((id) => old.includes(id)),
        [],
        'the old pool was closed',
      );
    } finally {
      await rotating.close();
    }
  });
});
