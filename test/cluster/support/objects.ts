/** Objects the cluster tests create through the API: an HPA, a Pod, and Events about them. */
export const NAMESPACE = 'shop';

export function shopObjects(): string {
  return JSON.stringify({
    apiVersion: 'v1',
    kind: 'List',
    items: [
      // No controller-manager runs: the ServiceAccount that Pod admission looks up is created by hand.
      { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: 'default', namespace: NAMESPACE } },
      {
        apiVersion: 'autoscaling/v2',
        kind: 'HorizontalPodAutoscaler',
        metadata: { name: 'web', namespace: NAMESPACE },
        spec: {
          scaleTargetRef: { apiVersion: 'apps/v1', kind: 'Deployment', name: 'web' },
          minReplicas: 2,
          maxReplicas: 7,
          metrics: [
            { type: 'Resource', resource: { name: 'cpu', target: { type: 'Utilization', averageUtilization: 60 } } },
          ],
        },
      },
      {
        apiVersion: 'v1',
        kind: 'Pod',
        metadata: { name: 'web-1', namespace: NAMESPACE, labels: { app: 'web', team: 'storefront' } },
        spec: { containers: [{ name: 'web', image: 'registry.invalid/web:1' }] },
      },
    ],
  });
}

/** A core/v1 Event as the HPA controller records it. */
export function hpaRescaleEvent(name: string, message: string): Record<string, any> {
  const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  return {
    apiVersion: 'v1',
    kind: 'Event',
    metadata: { name, namespace: NAMESPACE },
    involvedObject: {
      apiVersion: 'autoscaling/v2',
      kind: 'HorizontalPodAutoscaler',
      name: 'web',
      namespace: NAMESPACE,
    },
    reason: 'SuccessfulRescale',
    message,
    type: 'Normal',
    source: { component: 'horizontal-pod-autoscaler' },
    firstTimestamp: now,
    lastTimestamp: now,
    count: 1,
  };
}

/** An events.k8s.io/v1 Event as the kubelet's back-off records it; `count` > 1 is a repeat (series). */
export function podBackOffEvent(name: string, count: number): Record<string, any> {
  const now = new Date().toISOString().replace('Z', '000Z'); // MicroTime
  return {
    apiVersion: 'events.k8s.io/v1',
    kind: 'Event',
    metadata: { name, namespace: NAMESPACE },
    regarding: {
      apiVersion: 'v1',
      kind: 'Pod',
      name: 'web-1',
      namespace: NAMESPACE,
      fieldPath: 'spec.containers{web}',
    },
    reason: 'BackOff',
    note: 'Back-off restarting failed container web in pod web-1_shop',
    type: 'Warning',
    action: 'Restarting',
    reportingController: 'kubelet',
    reportingInstance: 'node-1',
    eventTime: now,
    ...(count > 1 ? { series: { count, lastObservedTime: now } } : {}),
  };
}

/** A Normal Event no rule matches. */
export function podScheduledEvent(name: string): Record<string, any> {
  const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  return {
    apiVersion: 'v1',
    kind: 'Event',
    metadata: { name, namespace: NAMESPACE },
    involvedObject: { apiVersion: 'v1', kind: 'Pod', name: 'web-1', namespace: NAMESPACE },
    reason: 'Scheduled',
    message: 'Successfully assigned shop/web-1 to node-1',
    type: 'Normal',
    source: { component: 'default-scheduler' },
    firstTimestamp: now,
    lastTimestamp: now,
    count: 1,
  };
}

/** Cluster-wide rules (in the service's own namespace) that send to a capture sink, reading the live objects. */
export function deliveryRules(sinkUrl: string): string {
  return `
destinations:
  sink: { url: "${sinkUrl}/hpa" }
  pods: { url: "${sinkUrl}/pods" }
rules:
  - name: hpa-rescale
    conditions:
      all:
        - { fact: event, path: $.involvedObject.kind, operator: equal, value: HorizontalPodAutoscaler }
        - { fact: event, path: $.reason, operator: equal, value: SuccessfulRescale }
    actions:
      - destination: sink
        body: '{ "hpa": involvedObject.namespace & "/" & involvedObject.name, "message": message, "maxReplicas": $object.spec.maxReplicas, "change": $change }'
  - name: pod-backoff
    conditions:
      all:
        - { fact: event, path: $.involvedObject.kind, operator: equal, value: Pod }
        - { fact: event, path: $.reason, operator: equal, value: BackOff }
        - { fact: object, path: $.metadata.labels.team, operator: equal, value: storefront }
    actions:
      - destination: pods
        body: '{ "pod": involvedObject.name, "count": count, "message": message, "change": $change }'
`;
}

/** A core/v1 Event as the kubelet records a repeated back-off: the same object, `count` raised. */
export function podBackOffCoreEvent(name: string, count: number): Record<string, any> {
  const now = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  return {
    apiVersion: 'v1',
    kind: 'Event',
    metadata: { name, namespace: NAMESPACE },
    involvedObject: {
      apiVersion: 'v1',
      kind: 'Pod',
      name: 'web-1',
      namespace: NAMESPACE,
      fieldPath: 'spec.containers{web}',
    },
    reason: 'BackOff',
    message: 'Back-off restarting failed container web in pod web-1_shop',
    type: 'Warning',
    source: { component: 'kubelet', host: 'node-1' },
    firstTimestamp: now,
    lastTimestamp: now,
    count,
  };
}

/** A core/v1 FailedMount Event about the Pod (no cluster-wide rule matches it). */
export function podFailedMountEvent(name: string): Record<string, any> {
  return {
    ...podScheduledEvent(name),
    reason: 'FailedMount',
    type: 'Warning',
    message: 'MountVolume.SetUp failed for volume "config"',
    source: { component: 'kubelet', host: 'node-1' },
  };
}

/** A team's rule document (namespace shop): its webhook token comes from a Secret of its namespace. */
export function teamSecretRules(sinkUrl: string): string {
  return `
destinations:
  team-hook:
    url: "${sinkUrl}/team"
    headers:
      Authorization: { secretKeyRef: { name: hook-token, key: token }, prefix: "Bearer " }
rules:
  - name: failed-mount
    conditions: { all: [ { fact: event, path: $.reason, operator: equal, value: FailedMount } ] }
    actions: [ { destination: team-hook, body: '{ "event": metadata.name }' } ]
`;
}
