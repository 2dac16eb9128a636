/**
 * Finding the cluster, and the real process against the fake API server as a user would run it.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, it } from 'node:test';
import { connectKube } from '../../src/kube/connect.js';
import { startFakeKubeApi } from '../support/fake-kube-api.js';
import { loadFixture, bodyOf } from '../support/fixtures.js';
import { ruleConfigMap, waitUntil } from '../support/kube-fixtures.js';
import { closedPort } from '../support/ports.js';

const noServiceAccount = mkdtempSync(join(tmpdir(), 'no-sa-'));

describe('connectKube', () => {
  it('uses KUBECONFIG, with the namespace of its context', async () => {
    const fake = await startFakeKubeApi();
    try {
      const connection = await connectKube(
        { KUBECONFIG: await fake.kubeconfigFile(), HOME: noServiceAccount },
        noServiceAccount,
      );
      assert.equal(connection?.namespace, 'observability');
      assert.match(
        connection.description,
        new RegExp(`Kubernetes API ${fake.url.replace(/[.]/g, '\\.')} \\(kubeconfig`),
      );
    } finally {
      await fake.close();
    }
  });

  it('POD_NAMESPACE wins; CLUSTER=off and no configuration at all mean no cluster', async () => {
    const fake = await startFakeKubeApi();
    try {
      const kubeconfig = await fake.kubeconfigFile();
      assert.equal(
        (await connectKube({ KUBECONFIG: kubeconfig, POD_NAMESPACE: 'ker' }, noServiceAccount))?.namespace,
        'ker',
      );
      assert.equal(await connectKube({ KUBECONFIG: kubeconfig, CLUSTER: 'off' }, noServiceAccount), undefined);
    } finally {
      await fake.close();
    }
  });
});

describe('kube-event-rules serve with a kubeconfig (child process)', () => {
  it('connects, says so, loads rule ConfigMaps and delivers through them', async () => {
    const fake = await startFakeKubeApi();
    const { startCaptureSink } = await import('../support/capture-sink.js');
    const sink = await startCaptureSink();
    fake.apply(
      ruleConfigMap('observability', 'rules', {
        'r.yaml': `
destinations: { hook: { url: "${sink.url}/hook" } }
rules:
  - name: from-configmap
    conditions: { all: [ { fact: event, path: $.reason, operator: equal, value: SuccessfulRescale } ] }
    actions: [ { destination: hook, body: '{ "hpa": involvedObject.name }' } ]
`,
      }),
    );
    const port = await closedPort();
    const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', 'serve'], {
      env: {
        ...process.env,
        KUBECONFIG: await fake.kubeconfigFile(),
        PORT: String(port),
        HOST: '127.0.0.1',
        RULES_DIR: noServiceAccount,
        LOG_LEVEL: 'info',
      },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const records: Record<string, any>[] = [];
    createInterface({ input: child.stdout }).on(
      'line',
      (line) => line.startsWith('{') && records.push(JSON.parse(line) as Record<string, any>),
    );
    try {
      await waitUntil(
        'ready',
        () =>
          fetch(`http://127.0.0.1:${port}/readyz`).then(
            (r) => r.ok,
            () => false,
          ),
        15_000,
      );
      await waitUntil(
        'the log says it connected',
        () => records.some((r) => r.msg === 'connected to Kubernetes' && String(r.cluster).includes(fake.url)),
        10_000,
      );
      const fixture = loadFixture('hpa-successful-rescale-up-resource-add');
      const response = await fetch(`http://127.0.0.1:${port}/`, {
        method: 'POST',
        headers: fixture.headers,
        body: bodyOf(fixture),
      });
      assert.equal(response.status, 204);
      assert.deepEqual(
        sink.received('/hook').map((r) => r.json()),
        [{ hpa: 'checkout' }],
      );
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
      await sink.close();
      await fake.close();
    }
  });
});
