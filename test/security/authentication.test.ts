/**
 * Authenticated endpoints, against a real OIDC issuer on 127.0.0.1 (discovery document and JWKS, keys
 * generated here with jose): POST / takes a Knative OIDC token for its audience or the static token;
 * /dry-run and /status take the admin token only; the probes and /metrics take nothing.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey } from 'jose';
import type { OidcSettings } from '../../src/auth/oidc-verifier.js';
import { bodyOf, loadFixture } from '../support/fixtures.js';
import { closedPort } from '../support/ports.js';
import { sampleValue, startService, type RunningService } from '../support/running-service.js';

const AUDIENCE = 'kube-event-rules';
const TRIGGER_IDENTITY = 'system:serviceaccount:kube-event-rules:kube-event-rules-oidc-eventing.knative.dev-trigger';
const FETCH_TOKEN = 'service-account-token-for-the-jwks';

/**
 * A cluster's OIDC issuer: the discovery document, and the JWKS only for a caller with the fetch token (as the API
 * server).
 */
async function startIssuer(tls?: { cert: string; key: string }): Promise<{
  url: string;
  jwksRequests: number;
  sign(claims: Claims, key?: CryptoKey): Promise<string>;
  close(): Promise<void>;
}> {
  const { publicKey, privateKey } = await generateKeyPair('RS256');
  const jwk = { ...(await exportJWK(publicKey)), kid: 'cluster-key', alg: 'RS256', use: 'sig' };
  let url = '';
  const issuer = {
    url: '',
    jwksRequests: 0,
    async sign(claims: Claims, key: CryptoKey = privateKey) {
      const jwt = new SignJWT({}).setProtectedHeader({ alg: 'RS256', kid: 'cluster-key' }).setIssuedAt();
      if (claims.iss !== null) jwt.setIssuer(claims.iss ?? url);
      if (claims.aud !== null) jwt.setAudience(claims.aud ?? AUDIENCE);
      if (claims.sub !== null) jwt.setSubject(claims.sub ?? TRIGGER_IDENTITY);
      if (claims.exp !== null) jwt.setExpirationTime(claims.exp ?? '10m');
      return jwt.sign(key);
    },
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const handle = (req: import('node:http').IncomingMessage, res: import('node:http').ServerResponse) => {
    res.setHeader('content-type', 'application/json');
    if (req.url === '/.well-known/openid-configuration') {
      res.end(
        JSON.stringify({
          issuer: url,
          jwks_uri: `${url}/openid/v1/jwks`,
          id_token_signing_alg_values_supported: ['RS256'],
        }),
      );
    } else if (req.url === '/openid/v1/jwks' && req.headers.authorization === `Bearer ${FETCH_TOKEN}`) {
      issuer.jwksRequests++;
      res.end(JSON.stringify({ keys: [jwk] }));
    } else {
      res.statusCode = req.url === '/openid/v1/jwks' ? 401 : 404;
      res.end('{}');
    }
  };
  const server: Server = tls ? createHttpsServer(tls, handle) : createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `${tls ? 'https' : 'http'}://127.0.0.1:${(server.address() as AddressInfo).port}`;
  issuer.url = url;
  return issuer;
}

/** Claims to set; undefined = the valid default, null = leave the claim out. */
type Claims = { iss?: string | null; aud?: string | null; sub?: string | null; exp?: number | string | null };

const event = loadFixture('pod-backoff-crashloop-resource-update');

describe('authenticated endpoints', () => {
  let issuer: Awaited<ReturnType<typeof startIssuer>>;
  let svc: RunningService;
  let metricsServer: Server;
  let metricsUrl: string;
  let dir: string;
  let senderTokenPath: string;
  const usedTokens: string[] = [];

  const post = async (authorization?: string) => {
    if (authorization) usedTokens.push(authorization);
    return svc.postRaw({ ...event.headers, ...(authorization ? { authorization } : {}) }, bodyOf(event));
  };
  const admin = async (path: '/dry-run' | '/status', authorization?: string) => {
    const init =
      path === '/dry-run'
        ? { method: 'POST', headers: { ...event.headers }, body: bodyOf(event) }
        : { method: 'GET', headers: {} };
    if (authorization) (init.headers as Record<string, string>).authorization = authorization;
    const response = await fetch(`${svc.url}${path}`, init);
    return { status: response.status, headers: response.headers, text: await response.text() };
  };
  const refused = async (name: string) =>
    sampleValue(await (await fetch(`${metricsUrl}/metrics`)).text(), 'kube_event_rules_requests_refused_total', {
      reason: name,
    });

  before(async () => {
    issuer = await startIssuer();
    dir = await mkdtemp(join(tmpdir(), 'ker-auth-'));
    senderTokenPath = join(dir, 'sender-token');
    await writeFile(senderTokenPath, 'static-sender-token-1\n');
    await writeFile(join(dir, 'admin-token'), 'admin-token-xyz');
    await writeFile(join(dir, 'fetch-token'), FETCH_TOKEN);
    const oidc: OidcSettings = {
      issuer: issuer.url,
      audience: AUDIENCE,
      jwksUrl: '',
      subjects: [TRIGGER_IDENTITY],
      caFile: '',
      fetchTokenFile: join(dir, 'fetch-token'),
    };
    svc = await startService({
      config: { metricsPort: 9, auth: { oidc, tokenFile: senderTokenPath, adminTokenFile: join(dir, 'admin-token') } },
    });
    const handle = svc.service.metricsApp.callback(); // answers its own errors: its promise never rejects
    metricsServer = createServer((req, res) => void handle(req, res));
    await new Promise<void>((resolve) => metricsServer.listen(0, '127.0.0.1', resolve));
    metricsUrl = `http://127.0.0.1:${(metricsServer.address() as AddressInfo).port}`;
  });
  after(async () => {
    await svc.stop();
    metricsServer.closeAllConnections();
    await new Promise<void>((resolve) => metricsServer.close(() => resolve()));
    await issuer.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('accepts the Knative OIDC token of the Trigger for our audience (keys found through discovery, fetched once)', async () => {
    const answer = await post(`Bearer ${await issuer.sign({})}`);
    assert.equal(answer.status, 204, answer.text);
    assert.equal((await post(`bearer ${await issuer.sign({})}`)).status, 204, 'the scheme is case-insensitive');
    assert.equal(issuer.jwksRequests, 1, 'the JWKS is cached');
  });

  it('refuses a request without a token: 401, WWW-Authenticate, counted', async () => {
    const before = await refused('missing_credential');
    const answer = await post();
    assert.equal(answer.status, 401);
    assert.equal(answer.headers.get('www-authenticate'), 'Bearer realm="kube-event-rules"');
    assert.deepEqual(JSON.parse(answer.text), { error: 'unauthorized', detail: 'a Bearer token is required' });
    assert.equal((await post('Basic dXNlcjpwYXNz')).status, 401, 'another scheme is no credential');
    assert.equal(await refused('missing_credential'), before + 2);
  });

  for (const [name, claims, key] of [
    ['another audience', { aud: 'some-other-service' }],
    ['no audience', { aud: null }],
    ['an expired token', { exp: Math.floor(Date.now() / 1000) - 3600 }],
    ['a token without expiry', { exp: null }],
    ['another issuer', { iss: 'https://evil.example' }],
    ['a subject not in AUTH_OIDC_SUBJECTS', { sub: 'system:serviceaccount:team-a:default' }],
    ['a bad signature (a key of our own under the cluster key id)', {}, 'attacker'],
  ] as const) {
    it(`refuses ${name}: 401 invalid_token, counted, the token never logged`, async () => {
      const signingKey = key === 'attacker' ? (await generateKeyPair('RS256')).privateKey : undefined;
      const token = await issuer.sign(claims, signingKey);
      const before = await refused('invalid_credential');
      const answer = await post(`Bearer ${token}`);
      assert.equal(answer.status, 401, answer.text);
      assert.equal(answer.headers.get('www-authenticate'), 'Bearer realm="kube-event-rules", error="invalid_token"');
      assert.equal(await refused('invalid_credential'), before + 1);
      const logged = svc.logs.at(-1)!;
      assert.equal(logged.msg, 'request refused: not authenticated');
      assert.ok(String(logged.why).length > 0, 'the log says why');
    });
  }

  it('refuses a token that is not a JWT and not the static token, and an unsigned JWT', async () => {
    assert.equal((await post('Bearer not-a-token')).status, 401);
    const unsigned = `${Buffer.from('{"alg":"none"}').toString('base64url')}.${Buffer.from(JSON.stringify({ iss: issuer.url, aud: AUDIENCE, sub: TRIGGER_IDENTITY, exp: 9999999999 })).toString('base64url')}.`;
    assert.equal((await post(`Bearer ${unsigned}`)).status, 401);
  });

  it('accepts the static token of AUTH_TOKEN_FILE, and a rotated one once the file changes', async () => {
    assert.equal((await post('Bearer static-sender-token-1')).status, 204);
    assert.equal((await post('Bearer static-sender-token-')).status, 401, 'a prefix is not the token');
    await writeFile(senderTokenPath, 'static-sender-token-22\n');
    assert.equal((await post('Bearer static-sender-token-22')).status, 204);
    assert.equal((await post('Bearer static-sender-token-1')).status, 401, 'the old token stops working');
  });

  it('/dry-run and /status need the admin token; sender credentials do not open them', async () => {
    for (const path of ['/dry-run', '/status'] as const) {
      const none = await admin(path);
      assert.equal(none.status, 401, path);
      assert.equal(none.headers.get('www-authenticate'), 'Bearer realm="kube-event-rules"');
      assert.equal((await admin(path, 'Bearer static-sender-token-22')).status, 401, `${path}: the sender token`);
      assert.equal(
        (await admin(path, `Bearer ${await issuer.sign({})}`)).status,
        401,
        `${path}: the Broker's OIDC token`,
      );
      const ok = await admin(path, 'Bearer admin-token-xyz');
      assert.equal(ok.status, 200, `${path}: ${ok.text}`);
    }
    assert.equal((await post('Bearer admin-token-xyz')).status, 401, 'the admin token is not a sender credential');
    assert.ok((await refused('invalid_credential')) > 0);
  });

  it('probes and /metrics need nothing; /metrics lives on the metrics port only', async () => {
    for (const path of ['/healthz', '/readyz']) {
      assert.equal((await fetch(`${svc.url}${path}`)).status, 200, `event port ${path}`);
      assert.equal((await fetch(`${metricsUrl}${path}`)).status, 200, `metrics port ${path}`);
    }
    assert.equal((await fetch(`${metricsUrl}/metrics`)).status, 200);
    assert.equal((await fetch(`${svc.url}/metrics`)).status, 404, 'not on the event port when METRICS_PORT is set');
    assert.equal((await fetch(`${metricsUrl}/`, { method: 'POST' })).status, 404, 'the metrics port takes no events');
  });

  it('no log line holds a presented credential', () => {
    const logs = svc.logs.map((l) => JSON.stringify(l)).join('\n');
    for (const token of usedTokens) assert.ok(!logs.includes(token.replace(/^\w+ /, '')), 'a token was logged');
    assert.ok(!logs.includes('admin-token-xyz') && !logs.includes('static-sender-token'));
  });

  it('fetches the keys over HTTPS from an issuer with a private CA (as the API server), trusting AUTH_OIDC_CA_FILE only', async () => {
    const tlsDir = new URL('../support/tls/', import.meta.url).pathname;
    const tlsIssuer = await startIssuer({
      cert: readFileSync(`${tlsDir}server.crt`, 'utf8'),
      key: readFileSync(`${tlsDir}server.key`, 'utf8'),
    });
    const oidc = (caFile: string): OidcSettings => ({
      issuer: tlsIssuer.url,
      audience: AUDIENCE,
      jwksUrl: '',
      subjects: [],
      caFile,
      fetchTokenFile: join(dir, 'fetch-token'),
    });
    const trusting = await startService({
      config: { auth: { oidc: oidc(`${tlsDir}ca.crt`), tokenFile: '', adminTokenFile: '' } },
    });
    const untrusting = await startService({ config: { auth: { oidc: oidc(''), tokenFile: '', adminTokenFile: '' } } });
    try {
      const token = `Bearer ${await tlsIssuer.sign({})}`;
      const trusted = await trusting.postRaw({ ...event.headers, authorization: token }, bodyOf(event));
      assert.equal(trusted.status, 204, trusted.text);
      assert.equal(tlsIssuer.jwksRequests, 1);
      const untrusted = await untrusting.postRaw({ ...event.headers, authorization: token }, bodyOf(event));
      assert.equal(
        untrusted.status,
        503,
        'a certificate the system CAs do not know is not trusted: the keys are unavailable',
      );
    } finally {
      await trusting.stop();
      await untrusting.stop();
      await tlsIssuer.close();
    }
  });

  it('asks a failing issuer for its discovery document once per cooldown, not once per event', async () => {
    let discoveries = 0;
    const failing = createServer((_req, res) => {
      discoveries++;
      res.writeHead(500).end();
    });
    await new Promise<void>((resolve) => failing.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(failing.address() as AddressInfo).port}`;
    const service = await startService({
      config: {
        auth: {
          oidc: { issuer: url, audience: AUDIENCE, jwksUrl: '', subjects: [], caFile: '', fetchTokenFile: '' },
          tokenFile: '',
          adminTokenFile: '',
        },
      },
    });
    try {
      const token = await issuer.sign({ iss: url });
      for (let i = 0; i < 3; i++)
        assert.equal(
          (await service.postRaw({ ...event.headers, authorization: `Bearer ${token}` }, bodyOf(event))).status,
          503,
        );
      assert.equal(discoveries, 1);
      assert.ok(
        service.logs.some((l) => /OIDC discovery .*HTTP 500/.test(String(l.why))),
        'the log says what failed',
      );
    } finally {
      await service.stop();
      failing.closeAllConnections();
      await new Promise<void>((resolve) => failing.close(() => resolve()));
    }
  });

  it("answers 503 + Retry-After (the Broker redelivers) while the issuer's keys cannot be fetched", async () => {
    const down = `http://127.0.0.1:${await closedPort()}`;
    const offline = await startService({
      config: {
        auth: {
          oidc: { issuer: down, audience: AUDIENCE, jwksUrl: '', subjects: [], caFile: '', fetchTokenFile: '' },
          tokenFile: '',
          adminTokenFile: '',
        },
      },
    });
    try {
      const token = await issuer.sign({ iss: down });
      const answer = await offline.postRaw({ ...event.headers, authorization: `Bearer ${token}` }, bodyOf(event));
      assert.equal(answer.status, 503, answer.text);
      assert.equal(answer.headers.get('retry-after'), '5');
      assert.equal(
        await offline.metric('kube_event_rules_requests_refused_total', { reason: 'verifier_unavailable' }),
        1,
      );
      assert.equal((await offline.postRaw(event.headers, bodyOf(event))).status, 401, 'no token is still 401');
      assert.equal(
        (await fetch(`${offline.url}/status`)).status,
        401,
        'without ADMIN_TOKEN_FILE the admin endpoints are closed',
      );
    } finally {
      await offline.stop();
    }
  });
});
