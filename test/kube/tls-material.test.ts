/**
 * TLS material from the cluster, end to end: the real service reads a destination's CA from a ConfigMap and
 * its client certificate from a Secret (fake API server, real client-node), delivers to a real HTTPS receiver
 * that requires a client certificate, picks a rotated CA up without a restart, keeps the client key out of
 * every output, and holds a team document to its namespace and to verified certificates.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../src/config.js';
import { startFakeKubeApi, type FakeKubeApi } from '../support/fake-kube-api.js';
import { loadFixture, withEvent } from '../support/fixtures.js';
import { OWN_NAMESPACE, connectionTo, ruleConfigMap, secret, waitUntil } from '../support/kube-fixtures.js';
import { startService, type RunningService } from '../support/running-service.js';
import { needs } from '../support/needs.js';
import { createTestPki, type Issued, type TestCa, type TestPki } from '../support/test-pki.js';
import { startHttpsReceiver, type HttpsReceiver } from '../support/https-receiver.js';

const TEAM = 'shop';

const rules = (name: string, url: string, tls: string) => `
destinations:
  grafana:
    url: ${url}
    tls:
${tls}
rules:
  - name: ${name}
    conditions:
      all:
        - { fact: event, path: $.reason, operator: equal, value: BackOff }
    actions:
      - destination: grafana
        body: '{ "rule": $rule.name }'
`;

let n = 0;
const backoff = (namespace: string) =>
  withEvent(loadFixture('pod-backoff-crashloop-resource-update'), (body, headers) => {
    n++;
    body.metadata.uid = `tls-${namespace}-${n}`;
    body.metadata.namespace = namespace;
    body.involvedObject.namespace = namespace;
    headers['ce-id'] = `ce-tls-${n}`;
  });

const caConfigMap = (namespace: string, pem: string) => ({
  apiVersion: 'v1',
  kind: 'ConfigMap',
  metadata: { name: 'company-ca', namespace },
  data: { 'ca.crt': pem },
});

describe(
  'TLS material from ConfigMaps and Secrets (fake API, real HTTPS receiver with mTLS)',
  { skip: needs('openssl') },
  () => {
    let pki: TestPki;
    let ca: TestCa;
    let nextCa: TestCa;
    let client: Issued;
    let receiver: HttpsReceiver;
    let fake: FakeKubeApi;
    let svc: RunningService;

    before(async () => {
      pki = createTestPki();
      ca = pki.createCa('company-ca');
      nextCa = pki.createCa('company-ca-2026');
      client = ca.issue('kube-event-rules', { client: true });
      receiver = await startHttpsReceiver({ ...ca.issue('grafana'), clientCa: [ca.cert, nextCa.cert].join('\n') });
      fake = await startFakeKubeApi();
      fake.apply(caConfigMap(OWN_NAMESPACE, ca.cert));
      fake.apply(secret(OWN_NAMESPACE, 'grafana-client', { 'tls.crt': client.cert, 'tls.key': client.key }));
      fake.apply(caConfigMap('other', ca.cert));
      const tls = [
        '      ca: { configMapKeyRef: { name: company-ca, key: ca.crt } }',
        '      clientCert: { secretKeyRef: { name: grafana-client, key: tls.crt } }',
        '      clientKey: { secretKeyRef: { name: grafana-client, key: tls.key } }',
      ].join('\n');
      svc = await startService({
        rules: { 'platform.yaml': rules('platform-grafana', `${receiver.url}/platform`, tls) },
        kube: connectionTo(fake),
        config: { kube: { ...loadConfig({}).kube, secretTtlMs: 200, relistAfterMs: 60_000 } },
      });
    });
    after(async () => {
      await svc?.stop();
      await receiver?.close();
      await fake?.close();
      pki?.remove();
    });

    it('delivers with the CA from a ConfigMap and the client certificate from a Secret; the key appears in no output', async () => {
      assert.equal((await svc.post(backoff('default'))).status, 204);
      const got = receiver.received.find((r) => r.path === '/platform');
      assert.ok(got, 'delivered');
      assert.equal(got.clientCn, 'kube-event-rules');
      const keyBody = client.key.split('\n')[1];
      const metrics = await (await fetch(`${svc.url}/metrics`)).text();
      const status = await (await fetch(`${svc.url}/status`)).text();
      for (const [what, text] of [
        ['log', JSON.stringify(svc.logs)],
        ['metrics', metrics],
        ['status', status],
      ]) {
        assert.ok(!text.includes(keyBody), `no part of the client key in the ${what}`);
      }
    });

    it('a rotated CA (receiver and ConfigMap) is picked up without a restart', async () => {
      const rotated = nextCa.issue('grafana');
      receiver.setCertificate(rotated.cert, rotated.key);
      fake.apply(caConfigMap(OWN_NAMESPACE, nextCa.cert));
      await new Promise((r) => setTimeout(r, 300)); // past SECRET_CACHE_SECONDS (200 ms here)
      const before = receiver.received.length;
      assert.equal((await svc.post(backoff('default'))).status, 204);
      assert.equal(receiver.received.length, before + 1, 'delivered over a connection verified with the new CA');
    });

    it('a wrong CA: the action is rejected permanently (204 to the Broker), counted as tls, and logged with why', async () => {
      fake.apply(caConfigMap(OWN_NAMESPACE, ca.cert)); // the receiver now serves the new CA's certificate
      await new Promise((r) => setTimeout(r, 300));
      const tlsBefore = await svc.metric('kube_event_rules_delivery_attempts_total', { result: 'tls' });
      assert.equal((await svc.post(backoff('default'))).status, 204);
      assert.equal((await svc.metric('kube_event_rules_delivery_attempts_total', { result: 'tls' })) - tlsBefore, 1);
      assert.equal(
        await svc.metric('kube_event_rules_deliveries_total', { rule: 'platform-grafana', outcome: 'rejected' }),
        1,
      );
      assert.ok(
        svc.logs.some((l) =>
          /^TLS: the certificate of 127\.0\.0\.1:\d+ is not signed by a trusted CA/.test(String(l.error)),
        ),
        'the log says why',
      );
    });

    it('insecureSkipVerify in a cluster document loads, delivers to an untrusted certificate, and is logged loudly at load', async () => {
      await svc.writeRules(
        'insecure.yaml',
        rules(
          'platform-insecure',
          `${receiver.url}/insecure`,
          '      insecureSkipVerify: true\n      clientCert: { secretKeyRef: { name: grafana-client, key: tls.crt } }\n      clientKey: { secretKeyRef: { name: grafana-client, key: tls.key } }',
        ),
      );
      const warning = svc.logs.find(
        (l) =>
          l.destination === 'grafana' &&
          String(l.source).endsWith('insecure.yaml') &&
          /TLS CERTIFICATE VERIFICATION IS OFF/.test(String(l.msg)),
      );
      assert.ok(warning, 'a warning names the document and the destination');
      assert.equal(warning.level, 40);
      assert.equal((await svc.post(backoff('default'))).status, 204);
      assert.ok(
        receiver.received.some((r) => r.path === '/insecure'),
        'delivered without verifying the certificate',
      );
      await svc.writeRules('insecure.yaml', 'rules: []\n');
    });

    it('a team reads TLS material of its own namespace only, and may not switch verification off or read files', async () => {
      fake.apply(
        ruleConfigMap(TEAM, 'team-rules', {
          'own-ns.yaml': rules(
            'team-grafana',
            `${receiver.url}/team`,
            '      ca: { configMapKeyRef: { name: company-ca, key: ca.crt } }',
          ),
          'insecure.yaml': rules('team-insecure', `${receiver.url}/insecure`, '      insecureSkipVerify: true'),
          'file.yaml': rules('team-file', `${receiver.url}/file`, `      ca: { file: ${ca.certFile} }`),
        }),
      );
      const source = (key: string) => `configmap:${TEAM}/team-rules/${key}`;
      await waitUntil('the team documents judged', () =>
        ['own-ns.yaml', 'insecure.yaml', 'file.yaml'].every((k) =>
          svc.service.store.status().some((s) => s.source === source(k)),
        ),
      );
      const errors = (key: string) =>
        svc.service.store
          .status()
          .find((s) => s.source === source(key))!
          .errors.join(' | ');
      assert.match(
        errors('insecure.yaml'),
        /destinations\.grafana\.tls\.insecureSkipVerify: not allowed in a team's rules/,
      );
      assert.match(
        errors('file.yaml'),
        /destinations\.grafana\.tls\.ca: \{ file \} is not allowed in a team's rules; use a secretKeyRef or configMapKeyRef of namespace shop/,
      );
      assert.equal(errors('own-ns.yaml'), '');
      // company-ca exists in the service's namespace and in "other", not in the team's: it is not found, and the
      // event is redelivered (a rollout may still create it) rather than acknowledged unsent.
      const answer = await svc.post(backoff(TEAM));
      assert.equal(answer.status, 503);
      assert.equal(answer.headers.get('retry-after'), '30');
      assert.ok(!receiver.received.some((r) => r.path === '/team'), 'nothing sent');
      assert.ok(
        svc.logs.some(
          (l) =>
            l.rule === `${TEAM}/team-grafana` &&
            /tls\.ca: configMapKeyRef company-ca\/ca\.crt: ConfigMap shop\/company-ca not found/.test(String(l.error)),
        ),
      );
    });
  },
);

describe("a destination's own proxy is held to the scope's destination hosts", () => {
  it('a team proxy outside DESTINATION_HOSTS_TEAM rejects the document at load; inside, it loads', async () => {
    const { compileTenancyPolicy, DEFAULT_TENANCY } = await import('../../src/rules/tenancy-policy.js');
    const { compileDocument } = await import('../../src/rules/compile-document.js');
    const policy = compileTenancyPolicy({
      ...DEFAULT_TENANCY,
      destinationHosts: { cluster: [], team: ['hooks.example.com', 'proxy.example.com'] },
    });
    const documentWith = (proxyUrl: string) => ({
      destinations: { hook: { url: 'https://hooks.example.com/x', proxy: { url: proxyUrl } } },
      rules: [
        {
          name: 'r',
          conditions: { all: [{ fact: 'event', path: '$.reason', operator: 'equal', value: 'BackOff' }] },
          actions: [{ destination: 'hook' }],
        },
      ],
    });
    const problems = (proxyUrl: string) => {
      const document = documentWith(proxyUrl);
      const { compiled } = compileDocument(document, 'configmap:shop/r/k', { timeoutMs: 100 });
      return policy.checkDocument(document, compiled!, 'shop');
    };
    assert.deepEqual(problems('http://proxy.example.com:3128'), []);
    assert.deepEqual(problems('http://10.0.0.7:8080'), [
      'destinations.hook.proxy.url: "http://10.0.0.7:8080" goes to host 10.0.0.7:8080, which a team\'s rules (namespace shop) may not send to (DESTINATION_HOSTS_TEAM: hooks.example.com, proxy.example.com)',
    ]);
  });
});
