/**
 * `kube-event-rules test` with a destination's TLS material: a CA from a ConfigMap of the --objects
 * manifests, a client certificate and key from --secrets and from files — checked as the service would
 * (valid PEM, a key that belongs to its certificate), never printed.
 */
import assert from 'node:assert/strict';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { stringify } from 'yaml';
import { runTests, type TestOptions } from '../../src/cli/test-rules.js';
import { EXAMPLES_DIR } from '../support/fixtures.js';
import { needs } from '../support/needs.js';
import { createTestPki, type Issued, type TestCa, type TestPki } from '../support/test-pki.js';

const EVENT = join(EXAMPLES_DIR, 'pod-backoff-crashloop-resource-update.json');

const rules = (tls: object) =>
  stringify({
    destinations: { grafana: { url: 'https://grafana.internal.example/api/annotations', tls } },
    rules: [
      {
        name: 'backoff',
        conditions: { all: [{ fact: 'event', path: '$.reason', operator: 'equal', value: 'BackOff' }] },
        actions: [{ destination: 'grafana', body: '{ "text": reason }' }],
      },
    ],
  });

describe('kube-event-rules test: TLS material from manifests, --secrets and files', { skip: needs('openssl') }, () => {
  let pki: TestPki;
  let ca: TestCa;
  let client: Issued;
  let dir: string;
  const path = (name: string) => join(dir, name);
  const options = (extra: Partial<TestOptions>): TestOptions => ({
    rules: [path('rules.yaml')],
    secrets: [],
    objects: [],
    cluster: false,
    events: [EVENT],
    json: false,
    updateExpect: false,
    ...extra,
  });

  before(async () => {
    pki = createTestPki();
    ca = pki.createCa('local-ca');
    client = ca.issue('kube-event-rules', { client: true });
    dir = await mkdtemp(join(tmpdir(), 'ker-tls-local-'));
    await writeFile(
      path('ca.yaml'),
      stringify({
        apiVersion: 'v1',
        kind: 'ConfigMap',
        metadata: { name: 'company-ca', namespace: 'observability' },
        data: { 'ca.crt': ca.cert },
      }),
    );
    await writeFile(
      path('client.yaml'),
      stringify({
        apiVersion: 'v1',
        kind: 'Secret',
        metadata: { name: 'grafana-client' },
        stringData: { 'tls.crt': client.cert, 'tls.key': client.key },
      }),
    );
  });
  after(() => pki?.remove());

  it('renders with the CA from a ConfigMap manifest and the client certificate from --secrets; the key is not in the report', async () => {
    await writeFile(
      path('rules.yaml'),
      rules({
        ca: { configMapKeyRef: { name: 'company-ca', key: 'ca.crt' } },
        clientCert: { secretKeyRef: { name: 'grafana-client', key: 'tls.crt' } },
        clientKey: { secretKeyRef: { name: 'grafana-client', key: 'tls.key' } },
      }),
    );
    const { problems, results } = await runTests(
      options({ objects: [path('ca.yaml')], secrets: [path('client.yaml')] }),
      async () => '',
    );
    assert.deepEqual(problems, []);
    const [result] = results;
    assert.ok('outcome' in result);
    assert.equal(result.actions[0].outcome, 'rendered');
    assert.ok(!JSON.stringify(results).includes(client.key.split('\n')[1]), 'no part of the key in the report');
  });

  it('files work for local runs; a ConfigMap that is not in the manifests is an error that names it', async () => {
    await writeFile(
      path('rules.yaml'),
      rules({ ca: { file: ca.certFile }, clientCert: { file: client.certFile }, clientKey: { file: client.keyFile } }),
    );
    const files = await runTests(options({}), async () => '');
    assert.ok('outcome' in files.results[0]);
    assert.equal(files.results[0].actions[0].outcome, 'rendered');

    await writeFile(path('rules.yaml'), rules({ ca: { configMapKeyRef: { name: 'other-ca', key: 'ca.crt' } } }));
    const missing = await runTests(options({ objects: [path('ca.yaml')] }), async () => '');
    assert.ok('outcome' in missing.results[0]);
    assert.equal(missing.results[0].actions[0].outcome, 'error');
    assert.match(
      missing.results[0].actions[0].error!,
      /destination grafana tls\.ca: configMapKeyRef other-ca\/ca\.crt: no ConfigMap "other-ca" in the manifests/,
    );
  });

  it('a client key of another certificate is refused as the service would', async () => {
    const other = ca.issue('other', { client: true });
    await writeFile(
      path('rules.yaml'),
      rules({ clientCert: { file: client.certFile }, clientKey: { file: other.keyFile } }),
    );
    const { results } = await runTests(options({}), async () => '');
    assert.ok('outcome' in results[0]);
    assert.equal(results[0].actions[0].outcome, 'error');
    assert.match(
      results[0].actions[0].error!,
      /destination grafana: tls\.clientCert and tls\.clientKey do not belong together/,
    );
  });
});
