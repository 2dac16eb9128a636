/**
 * DESTINATION_HOSTS_TEAM checks the URL; a `Host` header (literal, or chosen by event data through a
 * { jsonata } value) once sent the request to whatever virtual host the attacker named behind an allowed
 * address (a shared ingress, an API gateway). Host and the framing/hop-by-hop headers are refused at load
 * in every scope, and a team's tls.serverName must be the URL's host.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../src/config.js';
import { startCaptureSink, type CaptureSink } from '../support/capture-sink.js';
import { startFakeKubeApi, type FakeKubeApi } from '../support/fake-kube-api.js';
import { loadFixture, withEvent } from '../support/fixtures.js';
import { OWN_NAMESPACE, connectionTo, ruleConfigMap, waitUntil } from '../support/kube-fixtures.js';
import { startService, type RunningService } from '../support/running-service.js';

let n = 0;
const backoff = (namespace: string, podName: string) =>
  withEvent(loadFixture('pod-backoff-crashloop-resource-update'), (body, headers) => {
    n++;
    body.metadata.uid = `backoff-${n}`;
    body.metadata.namespace = namespace;
    body.involvedObject.namespace = namespace;
    body.involvedObject.name = podName; // a Pod author chooses its name
    headers['ce-id'] = `ce-b-${n}`;
  });

const rule = (destinations: string, name = 'vhost') => `
destinations:
${destinations}
rules:
  - name: ${name}
    conditions:
      all:
        - { fact: event, path: $.reason, operator: equal, value: BackOff }
    actions:
      - destination: d
`;

describe("Host and hop-by-hop headers, and a team's tls.serverName", () => {
  let fake: FakeKubeApi;
  let sink: CaptureSink;
  let svc: RunningService;
  const errorsOf = (source: string) => svc.service.store.status().find((s) => s.source === source)?.errors;
  const load = async (namespace: string, name: string, doc: string) => {
    const source = `configmap:${namespace}/${name}/r.yaml`;
    fake.apply(ruleConfigMap(namespace, name, { 'r.yaml': doc }));
    await waitUntil(`${source} loaded`, () => errorsOf(source) !== undefined);
    return errorsOf(source)!;
  };

  before(async () => {
    fake = await startFakeKubeApi();
    sink = await startCaptureSink();
    const defaults = loadConfig({});
    svc = await startService({
      kube: connectionTo(fake),
      config: {
        kube: { ...defaults.kube, relistAfterMs: 60_000 },
        tenancy: { ...defaults.tenancy, destinationHosts: { cluster: [], team: [new URL(sink.url).host] } },
      },
    });
  });
  after(async () => {
    await svc.stop();
    await sink.close();
    await fake.close();
  });

  it('a team document setting Host (literal or from event data) is refused at load; nothing is sent', async () => {
    const literal = await load(
      'aaa',
      'literal',
      rule(`  d:\n    url: ${sink.url}/hook\n    headers:\n      Host: vault.internal.svc.cluster.local`),
    );
    assert.match(literal.join('\n'), /destinations\.d\.headers\.Host: header "Host" is set by the HTTP client/);
    const fromEvent = await load(
      'aab',
      'event',
      rule(`  d:\n    url: ${sink.url}/hook2\n    headers:\n      host: { jsonata: 'involvedObject.name' }`),
    );
    assert.match(fromEvent.join('\n'), /headers\.host: header "host" is set by the HTTP client/);
    await svc.post(backoff('aaa', 'kubernetes.default.svc'));
    await svc.post(backoff('aab', 'kubernetes.default.svc'));
    const allowed = new URL(sink.url).host;
    const hosts = sink.requests.map((r) => r.headers.host);
    assert.deepEqual(
      hosts.filter((h) => h !== allowed),
      [],
      `requests sent with Host outside DESTINATION_HOSTS_TEAM: ${JSON.stringify(hosts)}`,
    );
  });

  it('framing and hop-by-hop headers are refused in cluster documents too', async () => {
    const headers = [
      'Transfer-Encoding: chunked',
      'Content-Length: "0"',
      'Connection: close',
      'Proxy-Authorization: Basic eDp5',
      'TE: trailers',
      'Upgrade: h2c',
    ];
    const errors = await load(
      OWN_NAMESPACE,
      'platform',
      rule(`  d:\n    url: ${sink.url}/platform\n    headers:\n${headers.map((h) => `      ${h}`).join('\n')}`),
    );
    assert.equal(errors.filter((e) => /is set by the HTTP client/.test(e)).length, headers.length, errors.join('\n'));
  });

  it("a team's tls.serverName other than the URL's host is refused; the URL's own host is accepted", async () => {
    const https = `https://${new URL(sink.url).host}/hook`;
    const other = await load('aac', 'sni', rule(`  d:\n    url: ${https}\n    tls:\n      serverName: vault.internal`));
    assert.match(other.join('\n'), /tls\.serverName: "vault\.internal" is not the URL's host/);
    const same = await load(
      'aad',
      'sni',
      rule(`  d:\n    url: ${https}\n    tls:\n      serverName: ${new URL(sink.url).hostname}`),
    );
    assert.deepEqual(
      same.filter((e) => /serverName/.test(e)),
      [],
    );
  });

  it('control: a team document without such headers loads and delivers', async () => {
    const errors = await load(
      'aae',
      'plain',
      rule(`  d:\n    url: ${sink.url}/plain\n    headers:\n      X-Team: aae`),
    );
    assert.deepEqual(errors, []);
    await svc.post(backoff('aae', 'web-1'));
    assert.equal(sink.received('/plain').length, 1);
  });
});
