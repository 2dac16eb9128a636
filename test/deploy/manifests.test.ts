/**
 * deploy/ offline: every variant renders with the real kubectl (kustomize), every object validates
 * against the Kubernetes, Knative and Prometheus Operator schemas (kubernetes-models), and the
 * invariants hold: non-root and locked down, probes that exist, a Trigger that reaches the Service,
 * RBAC within the documented list, image tag = package version.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { validateCommand } from '../../src/cli/validate.js';
import { loadConfig } from '../../src/config.js';
import { needs } from '../support/needs.js';
import { startService } from '../support/running-service.js';

type Obj = Record<string, any>;
const VARIANTS = [
  'deploy',
  'deploy/knative',
  'deploy/standalone',
  'deploy/examples/knative-with-monitoring',
  'deploy/examples/knative-without-oidc',
  'deploy/examples/watch-namespaces',
];
const root = new URL('../../', import.meta.url).pathname;

function render(variant: string): Obj[] {
  const yaml = execFileSync('kubectl', ['kustomize', variant], { cwd: root, encoding: 'utf8' });
  return parseAllDocuments(yaml)
    .map((d) => d.toJS() as Obj)
    .filter(Boolean);
}

/** schemaModule maps an apiVersion to the kubernetes-models module that holds its classes. */
function schemaModule(apiVersion: string): string {
  if (/knative\.dev\//.test(apiVersion)) return `@kubernetes-models/knative/${apiVersion}`;
  if (apiVersion.startsWith('monitoring.coreos.com/')) return `@kubernetes-models/prometheus-operator/${apiVersion}`;
  return `kubernetes-models/${apiVersion}`;
}

/** What the service's ServiceAccount may do, and nothing more (README: RBAC). */
const ALLOWED = new Set([
  'core/configmaps/list',
  'core/configmaps/watch',
  'core/configmaps/get',
  'core/events/get',
  'core/events/create',
  'core/pods/get',
  'core/nodes/get',
  'core/namespaces/get',
  'core/services/get',
  'core/persistentvolumeclaims/get',
  'apps/deployments/get',
  'apps/replicasets/get',
  'apps/statefulsets/get',
  'apps/daemonsets/get',
  'batch/jobs/get',
  'batch/cronjobs/get',
  'autoscaling/horizontalpodautoscalers/get',
  'core/secrets/get (own namespace only)',
  // with WATCH_NAMESPACES (deploy/components/namespaced-rule-configmaps), instead of the cluster-wide grant:
  'core/configmaps/list (Role)',
  'core/configmaps/watch (Role)',
  'core/configmaps/get (Role)',
  // standalone only:
  'core/events/list',
  'core/events/watch',
  'events.k8s.io/events/list',
  'events.k8s.io/events/watch',
]);

function grantsOf(objects: Obj[], serviceAccount: string): string[] {
  const grants: string[] = [];
  for (const binding of objects.filter((o) => o.kind === 'RoleBinding' || o.kind === 'ClusterRoleBinding')) {
    if (!binding.subjects?.some((s: Obj) => s.kind === 'ServiceAccount' && s.name === serviceAccount)) continue;
    const role = objects.find(
      (o) =>
        o.kind === binding.roleRef.kind &&
        o.metadata.name === binding.roleRef.name &&
        (o.kind !== 'Role' || o.metadata.namespace === binding.metadata.namespace),
    );
    assert.ok(role, `${binding.metadata.name} refers to ${binding.roleRef.kind} ${binding.roleRef.name}, which exists`);
    for (const rule of role.rules) {
      for (const group of rule.apiGroups) {
        for (const resource of rule.resources) {
          for (const verb of rule.verbs) {
            const grant = `${group || 'core'}/${resource}/${verb}`;
            if (role.kind !== 'Role') grants.push(grant);
            else grants.push(resource === 'secrets' ? `${grant} (own namespace only)` : `${grant} (Role)`);
          }
        }
      }
    }
  }
  return grants;
}

/**
 * ingressTo lists who may reach the service's pods over the network — "<namespace> → <container port>" —
 * from every NetworkPolicy that selects them, and fails on any rule that admits more than a namespace to a port.
 */
function ingressTo(objects: Obj[]): string[] {
  const deployment = objects.find((o) => o.kind === 'Deployment' && o.metadata.name === 'kube-event-rules')!;
  const podLabels = deployment.spec.template.metadata.labels as Record<string, string>;
  const containerPorts = Object.fromEntries(
    (deployment.spec.template.spec.containers[0].ports as Obj[]).map((p) => [p.name, p.containerPort]),
  );
  const selecting = objects.filter(
    (o) =>
      o.kind === 'NetworkPolicy' &&
      !o.spec.podSelector.matchExpressions &&
      Object.entries(o.spec.podSelector.matchLabels ?? {}).every(([k, v]) => podLabels[k] === v),
  );
  assert.ok(selecting.length > 0, 'a NetworkPolicy selects the pods (else every source reaches every port)');
  const allowed: string[] = [];
  for (const policy of selecting) {
    assert.deepEqual(policy.spec.policyTypes, ['Ingress'], policy.metadata.name);
    for (const rule of policy.spec.ingress ?? []) {
      assert.ok(rule.from?.length > 0, `${policy.metadata.name}: a rule without "from" admits every source`);
      assert.ok(rule.ports?.length > 0, `${policy.metadata.name}: a rule without "ports" admits every port`);
      for (const peer of rule.from as Obj[]) {
        assert.deepEqual(
          Object.keys(peer),
          ['namespaceSelector'],
          `${policy.metadata.name}: peers are whole namespaces, no ipBlock`,
        );
        const selector = peer.namespaceSelector;
        assert.deepEqual(
          Object.keys(selector.matchLabels ?? {}),
          ['kubernetes.io/metadata.name'],
          `${policy.metadata.name}: one namespace by name`,
        );
        for (const port of rule.ports as Obj[]) {
          const number = typeof port.port === 'number' ? port.port : containerPorts[port.port];
          assert.ok(number, `${policy.metadata.name}: port ${port.port} is a container port`);
          allowed.push(`${selector.matchLabels['kubernetes.io/metadata.name']} → ${number}`);
        }
      }
    }
  }
  return allowed.sort();
}

/** The settings the Deployment gives the service, read as the service reads them. */
function deployedConfig(objects: Obj[]) {
  const container = objects.find((o) => o.kind === 'Deployment' && o.metadata.name === 'kube-event-rules')!.spec
    .template.spec.containers[0];
  return loadConfig(
    Object.fromEntries((container.env as Obj[]).filter((e) => 'value' in e).map((e) => [e.name, e.value])),
  );
}

describe('deploy/ manifests', { skip: needs('kubectl') }, () => {
  const rendered = new Map(VARIANTS.map((v) => [v, render(v)]));

  for (const variant of VARIANTS) {
    it(`${variant}: every object validates against its schema`, async () => {
      for (const object of rendered.get(variant)!) {
        const module = (await import(schemaModule(object.apiVersion))) as Record<
          string,
          new (o: Obj) => { validate(): void }
        >;
        const Model = module[object.kind];
        assert.ok(Model, `a schema for ${object.apiVersion} ${object.kind}`);
        assert.doesNotThrow(() => new Model(object).validate(), `${variant}: ${object.kind} ${object.metadata.name}`);
      }
    });
  }

  it('the default variant is Knative: Broker, ApiServerSource, Trigger with retries and a dead-letter sink', () => {
    const objects = rendered.get('deploy')!;
    const kinds = objects.map((o) => o.kind);
    for (const kind of [
      'Namespace',
      'Broker',
      'ApiServerSource',
      'Trigger',
      'Deployment',
      'Service',
      'PodDisruptionBudget',
      'ServiceAccount',
    ])
      assert.ok(kinds.includes(kind), kind);
    const trigger = objects.find((o) => o.kind === 'Trigger')!;
    assert.equal(trigger.spec.delivery.retry, 10);
    assert.equal(trigger.spec.delivery.backoffPolicy, 'exponential');
    const dls = trigger.spec.delivery.deadLetterSink.ref;
    assert.ok(
      objects.some((o) => o.kind === dls.kind && o.metadata.name === dls.name),
      'the dead-letter sink exists',
    );
    const source = objects.find((o) => o.kind === 'ApiServerSource')!;
    assert.equal(source.spec.mode, 'Resource');
    assert.ok(
      objects.some((o) => o.kind === 'ServiceAccount' && o.metadata.name === source.spec.serviceAccountName),
      "the ApiServerSource's ServiceAccount exists",
    );
    assert.deepEqual(grantsOf(objects, source.spec.serviceAccountName).sort(), [
      'core/events/get',
      'core/events/list',
      'core/events/watch',
    ]);
    assert.equal(
      objects.find((o) => o.kind === 'Broker')!.metadata.name,
      source.spec.sink.ref.name,
      'the source sends to the Broker',
    );
    assert.equal(trigger.spec.broker, source.spec.sink.ref.name);
  });

  it("the Trigger's subscriber resolves to the Service, its port and the receiving route", () => {
    const objects = rendered.get('deploy')!;
    const trigger = objects.find((o) => o.kind === 'Trigger')!;
    const service = objects.find((o) => o.kind === 'Service' && o.metadata.name === trigger.spec.subscriber.ref.name);
    assert.ok(service, 'subscriber Service exists');
    const deployment = objects.find((o) => o.kind === 'Deployment' && o.metadata.name === 'kube-event-rules')!;
    const selects = Object.entries(service.spec.selector).every(
      ([k, v]) => deployment.spec.template.metadata.labels[k] === v,
    );
    assert.ok(selects, 'the Service selects the Deployment');
    const port = service.spec.ports[0].targetPort;
    assert.ok(
      deployment.spec.template.spec.containers[0].ports.some((p: Obj) => p.name === port || p.containerPort === port),
      'targetPort is a container port',
    );
    assert.equal(trigger.spec.subscriber.uri, '/');
  });

  for (const variant of ['deploy', 'deploy/standalone']) {
    it(`${variant}: the Deployment runs locked down (non-root, read-only root, no privilege escalation, no capabilities, RuntimeDefault seccomp, resources)`, () => {
      const deployment = rendered
        .get(variant)!
        .find((o) => o.kind === 'Deployment' && o.metadata.name === 'kube-event-rules')!;
      const pod = deployment.spec.template.spec;
      assert.equal(pod.securityContext.runAsNonRoot, true);
      assert.equal(typeof pod.securityContext.runAsUser, 'number');
      assert.equal(pod.securityContext.seccompProfile.type, 'RuntimeDefault');
      for (const container of pod.containers) {
        assert.equal(container.securityContext.allowPrivilegeEscalation, false);
        assert.equal(container.securityContext.readOnlyRootFilesystem, true);
        assert.deepEqual(container.securityContext.capabilities.drop, ['ALL']);
        assert.ok(
          container.resources.requests.cpu && container.resources.requests.memory && container.resources.limits.memory,
        );
      }
    });

    it(`${variant}: RBAC grants the service nothing beyond the documented list`, () => {
      const grants = grantsOf(rendered.get(variant)!, 'kube-event-rules');
      const extra = grants.filter((g) => !ALLOWED.has(g));
      assert.deepEqual(extra, []);
      assert.ok(!grants.includes('core/secrets/get'), 'no cluster-wide Secret access');
    });
  }

  it('watch-namespaces: no cluster-wide ConfigMap grant; a Role and RoleBinding in exactly the WATCH_NAMESPACES', () => {
    const objects = rendered.get('deploy/examples/watch-namespaces')!;
    const grants = grantsOf(objects, 'kube-event-rules');
    assert.ok(
      !grants.includes('core/configmaps/list') && !grants.includes('core/configmaps/watch'),
      'no ClusterRole lists ConfigMaps',
    );
    const env = objects.find((o) => o.kind === 'Deployment')!.spec.template.spec.containers[0].env as Obj[];
    const watched = String(env.find((e) => e.name === 'WATCH_NAMESPACES')?.value)
      .split(',')
      .sort();
    const bound = objects
      .filter((o) => o.kind === 'RoleBinding' && o.subjects.some((s: Obj) => s.name === 'kube-event-rules'))
      .filter((b) =>
        objects
          .find(
            (r) =>
              r.kind === 'Role' && r.metadata.name === b.roleRef.name && r.metadata.namespace === b.metadata.namespace,
          )
          ?.rules.some((r: Obj) => r.resources.includes('configmaps') && r.verbs.includes('watch')),
      )
      .map((b) => b.metadata.namespace as string)
      .sort();
    assert.deepEqual(bound, watched);
    assert.deepEqual(watched, ['kube-event-rules', 'team-a', 'team-b']);
  });

  it('standalone adds only the Event watch and runs STANDALONE=true', () => {
    const objects = rendered.get('deploy/standalone')!;
    assert.ok(!objects.some((o) => /knative/.test(o.apiVersion)));
    const env = objects.find((o) => o.kind === 'Deployment')!.spec.template.spec.containers[0].env as Obj[];
    assert.ok(env.some((e) => e.name === 'STANDALONE' && e.value === 'true'));
    assert.ok(grantsOf(objects, 'kube-event-rules').includes('events.k8s.io/events/watch'));
  });

  it('standalone runs one watcher even during a rollout (Recreate) and nothing blocks a node drain', () => {
    const objects = rendered.get('deploy/standalone')!;
    const deployment = objects.find((o) => o.kind === 'Deployment')!;
    assert.equal(deployment.spec.replicas, 1);
    assert.deepEqual(
      deployment.spec.strategy,
      { type: 'Recreate' },
      'a RollingUpdate with maxSurge runs two watchers that both send',
    );
    const blocking = objects.filter(
      (o) => o.kind === 'PodDisruptionBudget' && (o.spec.minAvailable === 1 || o.spec.maxUnavailable === 0),
    );
    assert.deepEqual(blocking, [], 'a PDB with minAvailable: 1 on one replica blocks every drain');
  });

  it('the monitoring example adds a PodMonitor on the metrics port and alerts on failures, load errors, refused events, a stuck informer, 429s and Redis errors', () => {
    const objects = rendered.get('deploy/examples/knative-with-monitoring')!;
    const monitor = objects.find((o) => o.kind === 'PodMonitor')!;
    assert.equal(monitor.spec.podMetricsEndpoints[0].path, '/metrics');
    const rules = objects.find((o) => o.kind === 'PrometheusRule')!.spec.groups[0].rules as Obj[];
    const text = JSON.stringify(rules);
    for (const metric of [
      'kube_event_rules_deliveries_total',
      'kube_event_rules_rule_load_errors',
      'kube_event_rules_informer_last_sync_timestamp_seconds',
      'kube_event_rules_requests_refused_total',
      'kube_event_rules_store_errors_total',
      'over_capacity',
    ])
      assert.match(text, new RegExp(metric));
  });

  it('the probe paths exist in the app, and every env var the Deployment sets is a documented setting', async () => {
    const deployment = rendered
      .get('deploy')!
      .find((o) => o.kind === 'Deployment' && o.metadata.name === 'kube-event-rules')!;
    const container = deployment.spec.template.spec.containers[0];
    const svc = await startService();
    try {
      for (const probe of [container.readinessProbe, container.livenessProbe]) {
        assert.equal((await fetch(`${svc.url}${probe.httpGet.path}`)).status, 200, probe.httpGet.path);
      }
    } finally {
      await svc.stop();
    }
    const readme = readFileSync(new URL('../../README.md', import.meta.url), 'utf8');
    const undocumented = (container.env as Obj[])
      .map((e) => e.name as string)
      .filter((name) => !readme.includes(`| \`${name}\` |`));
    assert.deepEqual(undocumented, [], 'every env var the Deployment sets is in the README configuration table');
  });

  it('every setting the service reads (src/config.ts) is in the README configuration table', () => {
    const config = readFileSync(new URL('../../src/config.ts', import.meta.url), 'utf8');
    const names = new Set([...config.matchAll(/env, '([A-Z_]+)'|env\.([A-Z][A-Z_]+)/g)].map((m) => m[1] ?? m[2]));
    assert.ok(names.size > 25, `found the settings (${names.size})`);
    const rows = readFileSync(new URL('../../README.md', import.meta.url), 'utf8')
      .split('\n')
      .filter((line) => line.startsWith('| `'));
    const undocumented = [...names].filter((name) => !rows.some((row) => row.split('|')[1].includes(`\`${name}\``)));
    assert.deepEqual(undocumented, []);
  });

  it('Node accepts the NODE_OPTIONS the Deployment sets (many V8 flags are refused there, and the pod would crash-loop)', () => {
    const deployment = rendered
      .get('deploy')!
      .find((o) => o.kind === 'Deployment' && o.metadata.name === 'kube-event-rules')!;
    const nodeOptions = (deployment.spec.template.spec.containers[0].env as Obj[]).find(
      (e) => e.name === 'NODE_OPTIONS',
    )?.value as string;
    assert.ok(nodeOptions, 'the Deployment sets NODE_OPTIONS');
    const heapLimit = execFileSync(process.execPath, ['-p', "require('v8').getHeapStatistics().heap_size_limit"], {
      env: { ...process.env, NODE_OPTIONS: nodeOptions },
      encoding: 'utf8',
    });
    assert.ok(
      Number(heapLimit) < 400 * 1024 * 1024,
      `the heap limit (${heapLimit.trim()} bytes) is below the pod's memory limit`,
    );
  });

  for (const variant of ['deploy', 'deploy/examples/knative-with-monitoring', 'deploy/examples/knative-without-oidc']) {
    it(`${variant}: NetworkPolicies admit the Broker's namespace to the event port and the monitoring namespace to the metrics port, nothing else`, () => {
      const config = deployedConfig(rendered.get(variant)!);
      assert.equal(config.metricsPort, 9090);
      assert.deepEqual(ingressTo(rendered.get(variant)!), [
        `knative-eventing → ${config.port}`,
        `monitoring → ${config.metricsPort}`,
      ]);
    });
  }

  it('deploy/standalone: no Broker, so only the monitoring namespace reaches the pods (the metrics port)', () => {
    const config = deployedConfig(rendered.get('deploy/standalone')!);
    assert.deepEqual(ingressTo(rendered.get('deploy/standalone')!), [`monitoring → ${config.metricsPort}`]);
  });

  it("the base wires authentication: the OIDC audience is the Trigger's, the admin token comes from a Secret, the probes and the PodMonitor need none", () => {
    const objects = rendered.get('deploy/examples/knative-with-monitoring')!;
    const config = deployedConfig(objects);
    const trigger = objects.find((o) => o.kind === 'Trigger')!;
    assert.ok(config.auth.oidc, 'OIDC sender identity is on');
    assert.equal(
      config.auth.oidc.audience,
      trigger.spec.subscriber.audience,
      "AUTH_OIDC_AUDIENCE is the Trigger's subscriber.audience",
    );
    assert.match(
      config.auth.oidc.subjects[0],
      new RegExp(`^system:serviceaccount:${trigger.metadata.namespace}:${trigger.metadata.name}-oidc-`),
      "the Trigger's OIDC identity",
    );
    const pod = objects.find((o) => o.kind === 'Deployment' && o.metadata.name === 'kube-event-rules')!.spec.template
      .spec;
    const mount = (pod.containers[0].volumeMounts as Obj[]).find((m) =>
      config.auth.adminTokenFile.startsWith(`${m.mountPath}/`),
    )!;
    assert.ok(mount, 'ADMIN_TOKEN_FILE is inside a mounted volume');
    assert.ok((pod.volumes as Obj[]).find((v) => v.name === mount.name)?.secret?.secretName, 'that volume is a Secret');
    const ports = Object.fromEntries((pod.containers[0].ports as Obj[]).map((p) => [p.name, p.containerPort]));
    assert.equal(
      ports[objects.find((o) => o.kind === 'PodMonitor')!.spec.podMetricsEndpoints[0].port],
      config.metricsPort,
      'Prometheus scrapes the metrics port',
    );
    assert.equal(
      ports[pod.containers[0].readinessProbe.httpGet.port],
      config.port,
      'the kubelet probes the event port (probes take no credential)',
    );
    assert.equal(
      deployedConfig(rendered.get('deploy/examples/knative-without-oidc')!).auth.oidc,
      undefined,
      'the without-oidc variant turns it off',
    );
  });

  it('the image tag is the package version', () => {
    const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
      version: string;
    };
    const image = rendered
      .get('deploy')!
      .find((o) => o.kind === 'Deployment' && o.metadata.name === 'kube-event-rules')!.spec.template.spec.containers[0]
      .image;
    assert.equal(image, `ghcr.io/kube-event-rules/kube-event-rules:${version}`);
  });

  it('the example rule ConfigMaps are valid rules', async () => {
    const lines: string[] = [];
    assert.equal(
      await validateCommand([`${root}deploy/base/example-rules.yaml`], (l) => lines.push(l)),
      0,
      lines.join('\n'),
    );
  });
});
