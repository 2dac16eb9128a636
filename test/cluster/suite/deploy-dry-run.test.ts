/**
 * Every deploy/ variant, as kustomize renders it, is accepted by a real API server in a server-side
 * dry-run apply: schemas, defaulting, admission, and the Knative and Prometheus Operator CRDs (from their
 * own releases' Go modules) installed as a cluster would have them.
 */
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { binDir, startCluster, type TestCluster } from '../support/cluster.js';
import { render, toYaml } from '../support/deploy.js';

const VARIANTS = ['deploy', 'deploy/knative', 'deploy/standalone', 'deploy/examples/knative-with-monitoring'];

/** Where test/cluster/build.sh found the CRDs (crds.env). */
function crdFolders(): { knative: string; prometheusOperator: string } {
  const env = Object.fromEntries(
    readFileSync(join(binDir, 'crds.env'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((line) => line.split('=', 2) as [string, string]),
  );
  return { knative: env.KNATIVE_CRDS, prometheusOperator: env.PROMETHEUS_OPERATOR_CRDS };
}

describe('deploy/ server-side dry-run against a real API server with the CRDs installed', () => {
  let cluster: TestCluster;
  const dryRun = (yaml: string) =>
    cluster.tryKubectl(
      ['apply', '--server-side', '--dry-run=server', '--field-manager=kube-event-rules-test', '-f', '-'],
      { input: yaml },
    );

  before(async () => {
    cluster = await startCluster();
    const { knative, prometheusOperator } = crdFolders();
    const crdFiles = [
      ...readdirSync(knative)
        .filter((f) => f.endsWith('.yaml'))
        .map((f) => join(knative, f)),
      // Only the kinds deploy/ uses; the others are large and add nothing here.
      join(prometheusOperator, 'monitoring.coreos.com_podmonitors.yaml'),
      join(prometheusOperator, 'monitoring.coreos.com_prometheusrules.yaml'),
    ];
    for (const file of crdFiles) cluster.kubectl(['apply', '--server-side', '-f', file]);
    cluster.kubectl(['wait', '--for=condition=Established', '--timeout=60s', 'crd', '--all']);
    // A dry-run creates nothing, so the namespace the namespaced objects go to must exist.
    cluster.kubectl(['create', 'namespace', 'kube-event-rules']);
  });

  after(async () => {
    await cluster?.destroy();
  });

  it('the Knative CRDs of ApiServerSource, Broker and Trigger are served', () => {
    const resources = cluster.kubectl(['api-resources', '-o', 'name']);
    for (const name of [
      'apiserversources.sources.knative.dev',
      'brokers.eventing.knative.dev',
      'triggers.eventing.knative.dev',
      'podmonitors.monitoring.coreos.com',
      'prometheusrules.monitoring.coreos.com',
    ]) {
      assert.match(resources, new RegExp(`^${name.replace(/\./g, '\\.')}$`, 'm'), name);
    }
  });

  for (const variant of VARIANTS) {
    it(`${variant}: every object is accepted`, () => {
      const objects = render(variant);
      const result = dryRun(toYaml(objects));
      assert.equal(result.status, 0, result.stderr);
      for (const object of objects) {
        const kind = object.kind.toLowerCase();
        assert.match(
          result.stdout,
          new RegExp(`^${kind}(\\.[a-z0-9.]+)?/${object.metadata.name} serverside-applied \\(server dry run\\)$`, 'm'),
          `${object.kind} ${object.metadata.name}`,
        );
      }
    });
  }

  it('the dry-run does reject what the schemas forbid (an ApiServerSource without resources, a PodMonitor with a malformed endpoint list)', () => {
    const objects = render('deploy/examples/knative-with-monitoring');
    const source = structuredClone(objects.find((o) => o.kind === 'ApiServerSource')!);
    delete source.spec.resources;
    const podMonitor = structuredClone(objects.find((o) => o.kind === 'PodMonitor')!);
    podMonitor.spec.podMetricsEndpoints = 'metrics';
    for (const [object, why] of [
      [podMonitor, /podMetricsEndpoints/],
      [source, /spec\.resources: Required value/],
    ] as const) {
      const result = dryRun(toYaml([object]));
      assert.notEqual(result.status, 0, `${object.kind} is rejected`);
      assert.match(result.stderr, why);
    }
  });
});
