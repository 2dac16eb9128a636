import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ConfigurationError } from '../../src/errors.js';
import { compileUrlTemplate, literalPrefix, resolveUrlTemplate } from '../../src/render/url-template.js';

const OPTIONS = { timeoutMs: 100 };
const build = (source: string, input: unknown, bindings: Record<string, unknown> = {}) =>
  resolveUrlTemplate(compileUrlTemplate(source, OPTIONS), 'url', input, bindings);

describe('URL templates', () => {
  it('percent-encodes every interpolated value: "../../admin?x#" stays one path segment', async () => {
    const url = await build('"https://hooks.example.com/api/" & name & "/events?pod=" & pod', {
      name: '../../admin?x#',
      pod: 'a&b=c d',
    });
    assert.equal(url, 'https://hooks.example.com/api/..%2F..%2Fadmin%3Fx%23/events?pod=a%26b%3Dc%20d');
    assert.equal(new URL(url).pathname, '/api/..%2F..%2Fadmin%3Fx%23/events');
  });

  it('keeps literal parts as written, `&` inside strings included, and merges adjacent literals', async () => {
    const template = compileUrlTemplate('"https://h.example" & "/x/?a=1&b=" & v', OPTIONS);
    assert.equal(literalPrefix(template), 'https://h.example/x/?a=1&b=');
    assert.equal(await resolveUrlTemplate(template, 'url', { v: '&' }, {}), 'https://h.example/x/?a=1&b=%26');
  });

  it('uses a leading expression as is (the scheme and host: cluster rules only, by policy)', async () => {
    assert.equal(
      await build('$base & "/alerts/" & name', { name: 'a/b' }, { base: 'https://alerts.example.com:8443' }),
      'https://alerts.example.com:8443/alerts/a%2Fb',
    );
    assert.equal(await build('webhook', { webhook: 'https://x.example/hook?t=1' }), 'https://x.example/hook?t=1');
  });

  it('refuses a "." or ".." segment, which would reach another path', async () => {
    for (const name of ['..', '.']) {
      await assert.rejects(
        build('"https://h.example/api/" & name & "/events"', { name }),
        (err: Error) => err instanceof ConfigurationError && /has a "\." or "\.\." path segment/.test(err.message),
      );
    }
    await assert.rejects(build('base', { base: 'https://h.example/a/%2E%2E/admin' }), ConfigurationError);
    assert.equal(await build('"https://h.example/api/" & name', { name: '..x' }), 'https://h.example/api/..x');
  });

  it("a part with no value adds nothing (as JSONata's &); a non-string value is a configuration error", async () => {
    assert.equal(await build('"https://h.example/" & missing & "x"', {}), 'https://h.example/x');
    await assert.rejects(build('"https://h.example/" & obj', { obj: { a: 1 } }), /must give a string/);
  });

  it('an expression whose parse tree is not a plain concatenation is one part', () => {
    const template = compileUrlTemplate('$replace(u, /a&b/, "c")', OPTIONS);
    assert.equal(template.parts.length, 1);
    assert.equal(literalPrefix(template), '');
    assert.equal(compileUrlTemplate('"https://h.example/" & (a & b) & /* & */ c', OPTIONS).parts.length, 3);
  });
});
