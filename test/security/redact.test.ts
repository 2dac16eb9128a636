/**
 * The secret registry: what it replaces (raw, JSON-escaped, percent-encoded, a secret URL's path and
 * password), what it leaves alone (short values), and that its JSON output stays JSON.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { MAX_FORMS_PER_SOURCE, REDACTED, SecretValues } from '../../src/redact.js';
import { errorExcerpt } from '../../src/deliver/error-excerpt.js';
import { ConfigurationError } from '../../src/errors.js';

describe('secret registry', () => {
  it('replaces a value raw, JSON-escaped and percent-encoded', () => {
    const secrets = new SecretValues();
    secrets.remember('p@ss "word"/ü');
    assert.equal(secrets.redact('raw p@ss "word"/ü end'), `raw ${REDACTED} end`);
    assert.equal(secrets.redact(JSON.stringify({ echo: 'p@ss "word"/ü' })), `{"echo":"${REDACTED}"}`);
    assert.equal(secrets.redact(`/hook?k=${encodeURIComponent('p@ss "word"/ü')}`), `/hook?k=${REDACTED}`);
  });

  it('replaces the longest value first, so a value holding another goes whole', () => {
    const secrets = new SecretValues();
    secrets.remember('token');
    secrets.remember('Bearer token-2');
    assert.equal(secrets.redact('Authorization: Bearer token-2'), `Authorization: ${REDACTED}`);
  });

  it('leaves values under 4 characters alone (not credentials; they would shred the text)', () => {
    const secrets = new SecretValues();
    secrets.remember('abc');
    secrets.remember(' ');
    assert.equal(secrets.redact('abc def'), 'abc def');
  });

  it("remembers a secret URL's path and query and its password, not only the whole URL", () => {
    const secrets = new SecretValues();
    secrets.rememberUrl('https://user:hunter22@hooks.example.com/services/T0/B0/XyZsecret?sig=abc');
    assert.equal(secrets.redact('POST /services/T0/B0/XyZsecret?sig=abc failed'), `POST ${REDACTED} failed`);
    assert.equal(secrets.redact('password hunter22'), `password ${REDACTED}`);
    assert.equal(secrets.redact('host hooks.example.com'), 'host hooks.example.com', 'the host is not the credential');
  });

  it('redactDeep redacts every string of a JSON value, keys too, and keeps the rest', () => {
    const secrets = new SecretValues();
    secrets.remember('s3cr3t-value');
    const value = { a: ['x s3cr3t-value y', 1, null, true], 's3cr3t-value': { b: 's3cr3t-value' } };
    assert.deepEqual(secrets.redactDeep(value), { a: [`x ${REDACTED} y`, 1, null, true], [REDACTED]: { b: REDACTED } });
  });

  it('a log line stays JSON when a value with quotes and backslashes is replaced in it', () => {
    const secrets = new SecretValues();
    secrets.remember('a"b\\c\nd-secret');
    const line = JSON.stringify({ msg: 'x', error: 'HTTP 500: you sent a"b\\c\nd-secret' });
    assert.deepEqual(JSON.parse(secrets.redact(line)), { msg: 'x', error: `HTTP 500: you sent ${REDACTED}` });
    assert.deepEqual(JSON.parse(secrets.redactJson(`${line}\n`)), {
      msg: 'x',
      error: `HTTP 500: you sent ${REDACTED}`,
    });
  });

  it('redactJson keeps a log line JSON when a remembered value looks like JSON itself (an hpa-sender template part)', () => {
    const secrets = new SecretValues();
    secrets.remember('{"name":"HPA Scaling","details":"');
    const line = `${JSON.stringify({ msg: 'sent', body: { name: 'HPA Scaling', details: 'x' }, echo: '{"name":"HPA Scaling","details":"x"}' })}\n`;
    assert.throws(
      () => JSON.parse(secrets.redact(line)),
      'replacing in the serialized text cuts through its structure',
    );
    const redacted = secrets.redactJson(line);
    assert.ok(redacted.endsWith('}\n'));
    assert.deepEqual(JSON.parse(redacted), {
      msg: 'sent',
      body: { name: 'HPA Scaling', details: 'x' },
      echo: `${REDACTED}x"}`,
    });
    assert.equal(secrets.redactJson('{"nothing":"here"}'), '{"nothing":"here"}');
  });

  it("never forgets a value: a namespace past its bound is refused, the platform's values stay hidden", () => {
    const secrets = new SecretValues();
    secrets.remember('platform-webhook-path-secret', 'platform');
    secrets.remember('env-token-secret');
    let added = 0;
    assert.throws(
      () => {
        for (; ; added++) secrets.remember(`team-value-${String(added).padStart(6, '0')}`, 'team-a');
      },
      (err: unknown) => err instanceof ConfigurationError && /namespace team-a: more than/.test(err.message),
    );
    assert.equal(added, MAX_FORMS_PER_SOURCE);
    assert.equal(secrets.redact('platform-webhook-path-secret env-token-secret'), `${REDACTED} ${REDACTED}`);
    secrets.remember('another-namespace-value', 'team-b'); // other namespaces are bounded on their own
    assert.equal(secrets.redact('another-namespace-value'), REDACTED);
  });

  it('a very long value (a whole body template) neither breaks redaction nor escapes it', () => {
    const secrets = new SecretValues();
    const template = Array.from({ length: 20_000 }, (_, i) => `part${i}`).join('_message_');
    secrets.remember(template, 'team-a');
    secrets.remember('short-secret-value');
    const line = JSON.stringify({ msg: `x ${template} short-secret-value` });
    assert.equal(secrets.redactJson(line), JSON.stringify({ msg: `x ${REDACTED} ${REDACTED}` }));
  });

  it("an error excerpt hides this request's own secret URL path and secret body by position, known or not", () => {
    const request = {
      method: 'POST',
      url: 'https://hooks.example/services/T0/B0/unregisteredSecretPath',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ routing_key: 'unregistered-routing-key', text: 'hello' }),
      secretHeaders: [],
      secretUrl: true,
      secretFields: ['routing_key'],
    };
    const excerpt = errorExcerpt(
      'no webhook /services/T0/B0/unregisteredSecretPath; key unregistered-routing-key; hello',
      request,
    );
    assert.equal(excerpt, `no webhook ${REDACTED}; key ${REDACTED}; hello`);
  });
});
