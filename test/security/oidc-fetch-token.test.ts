/**
 * The service's own ServiceAccount token (AUTH_OIDC_FETCH_TOKEN_FILE) goes to the issuer only: a discovery
 * document that names a jwks_uri on another host gets the keys fetched without it. And an OIDC set-up
 * without AUTH_OIDC_SUBJECTS (any ServiceAccount token for the audience is accepted) is logged as an error.
 */
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { exportJWK, generateKeyPair, SignJWT } from 'jose';
import { pino } from 'pino';
import { createAuthenticators } from '../../src/auth/authenticate.js';
import { createOidcVerifier } from '../../src/auth/oidc-verifier.js';
import { createMetrics } from '../../src/metrics.js';

const FETCH_TOKEN = 'service-account-token-never-to-another-host';

async function listen(
  handle: (req: IncomingMessage, res: import('node:http').ServerResponse) => void,
): Promise<{ server: Server; url: string }> {
  const server = createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

describe('OIDC: the fetch token and the subjects', () => {
  let dir: string;
  let issuer: { server: Server; url: string };
  let keyHost: { server: Server; url: string };
  const authorizations: { at: string; authorization: string | undefined }[] = [];
  let sign: () => Promise<string>;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'oidc-fetch-'));
    await writeFile(join(dir, 'token'), FETCH_TOKEN);
    const { publicKey, privateKey } = await generateKeyPair('RS256');
    const jwk = { ...(await exportJWK(publicKey)), kid: 'k', alg: 'RS256', use: 'sig' };
    keyHost = await listen((req, res) => {
      authorizations.push({ at: 'key host', authorization: req.headers.authorization });
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ keys: [jwk] }));
    });
    issuer = await listen((req, res) => {
      authorizations.push({ at: 'issuer', authorization: req.headers.authorization });
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ issuer: issuer.url, jwks_uri: `${keyHost.url}/keys` }));
    });
    sign = () =>
      new SignJWT({})
        .setProtectedHeader({ alg: 'RS256', kid: 'k' })
        .setIssuer(issuer.url)
        .setAudience('aud')
        .setSubject('sa')
        .setIssuedAt()
        .setExpirationTime('5m')
        .sign(privateKey);
  });
  after(async () => {
    for (const { server } of [issuer, keyHost]) {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    }
    await rm(dir, { recursive: true, force: true });
  });

  it('sends the fetch token to the issuer, not to a jwks_uri on another host', async () => {
    const verifier = createOidcVerifier({
      issuer: issuer.url,
      audience: 'aud',
      jwksUrl: '',
      subjects: ['sa'],
      caFile: '',
      fetchTokenFile: join(dir, 'token'),
    });
    assert.equal(await verifier.verify(await sign()), 'sa');
    assert.deepEqual(authorizations, [
      { at: 'issuer', authorization: `Bearer ${FETCH_TOKEN}` },
      { at: 'key host', authorization: undefined },
    ]);
  });

  it('logs an error when AUTH_OIDC_SUBJECTS is empty, unless AUTH_OIDC_ANY_SUBJECT says so on purpose', () => {
    const lines: string[] = [];
    const log = pino({ level: 'info' }, { write: (line: string) => lines.push(line) });
    const oidc = { issuer: issuer.url, audience: 'aud', jwksUrl: '', subjects: [], caFile: '', fetchTokenFile: '' };
    createAuthenticators({ tokenFile: '', adminTokenFile: '', oidc }, createMetrics(), log);
    assert.equal(lines.filter((l) => /AUTH_OIDC_SUBJECTS is empty/.test(l)).length, 1);
    createAuthenticators(
      { tokenFile: '', adminTokenFile: '', oidc: { ...oidc, anySubject: true } },
      createMetrics(),
      log,
    );
    createAuthenticators(
      { tokenFile: '', adminTokenFile: '', oidc: { ...oidc, subjects: ['sa'] } },
      createMetrics(),
      log,
    );
    assert.equal(lines.filter((l) => /AUTH_OIDC_SUBJECTS is empty/.test(l)).length, 1);
  });
});
