/**
 * Benchmark workload: real-shaped ApiServerSource CloudEvents (from the example HPA event) with a
 * realistic mix of reasons across 100 namespaces, and N rules of which each matches ≈1 % of events.
 */
import { readFileSync } from 'node:fs';
import { stringify } from 'yaml';

const template = JSON.parse(
  readFileSync(new URL('../examples/events/hpa-successful-rescale-up-resource-add.json', import.meta.url), 'utf8'),
) as {
  headers: Record<string, string>;
  body: { metadata: Record<string, unknown>; involvedObject: Record<string, unknown>; [field: string]: unknown };
};

/** Reason mix roughly as seen in busy clusters: mostly pod lifecycle noise, a few warnings, rare HPA moves. */
const REASONS: [reason: string, type: string, kind: string, weight: number][] = [
  ['Pulled', 'Normal', 'Pod', 20],
  ['Created', 'Normal', 'Pod', 15],
  ['Started', 'Normal', 'Pod', 15],
  ['Scheduled', 'Normal', 'Pod', 10],
  ['Killing', 'Normal', 'Pod', 8],
  ['SuccessfulCreate', 'Normal', 'ReplicaSet', 8],
  ['ScalingReplicaSet', 'Normal', 'Deployment', 6],
  ['Unhealthy', 'Warning', 'Pod', 6],
  ['BackOff', 'Warning', 'Pod', 5],
  ['FailedScheduling', 'Warning', 'Pod', 3],
  ['SuccessfulRescale', 'Normal', 'HorizontalPodAutoscaler', 2],
  ['FailedMount', 'Warning', 'Pod', 1],
  ['OOMKilling', 'Warning', 'Node', 1],
];
const TOTAL_WEIGHT = REASONS.reduce((sum, [, , , w]) => sum + w, 0);
/** Namespaces of the spec workload: rule i matches ns-(i mod 100), i.e. ≈1 % of events. */
export const NAMESPACES = 100;

/** Placeholders in the body template, filled per event by string concatenation (the load generator must stay cheap). */
type Slot = 'UID' | 'NAME' | 'NAMESPACE' | 'KIND' | 'REASON' | 'TYPE' | 'OBJECT';
const slot = (name: string) => `@@${name}@@`;
const BODY_PARTS = JSON.stringify({
  ...template.body,
  metadata: { ...template.body.metadata, uid: slot('UID'), name: slot('NAME'), namespace: slot('NAMESPACE') },
  involvedObject: {
    ...template.body.involvedObject,
    kind: slot('KIND'),
    namespace: slot('NAMESPACE'),
    name: slot('OBJECT'),
  },
  reason: slot('REASON'),
  type: slot('TYPE'),
  message: `${slot('REASON')} for ${slot('OBJECT')}: a message of realistic length with "quotes" and details ${'x'.repeat(60)}`,
}).split(/@@([A-Z]+)@@/);

/** event returns the headers and body of the i-th event (deterministic), spread over `namespaces`. */
export function event(i: number, namespaces = NAMESPACES): { headers: Record<string, string>; body: string } {
  let roll = (i * 7919) % TOTAL_WEIGHT;
  let chosen = REASONS[0];
  for (const entry of REASONS) {
    if (roll < entry[3]) {
      chosen = entry;
      break;
    }
    roll -= entry[3];
  }
  const [reason, type, kind] = chosen;
  const namespace = `ns-${i % namespaces}`;
  const values: Record<Slot, string> = {
    UID: `bench-${i}`,
    NAME: `obj-${i}.17cf4ffb2470c4d5`,
    NAMESPACE: namespace,
    KIND: kind,
    REASON: reason,
    TYPE: type,
    OBJECT: `obj-${i}`,
  };
  let body = '';
  for (let k = 0; k < BODY_PARTS.length; k++) body += k % 2 === 0 ? BODY_PARTS[k] : values[BODY_PARTS[k] as Slot];
  return { headers: { ...template.headers, 'ce-id': `bench-${i}`, 'ce-namespace': namespace }, body };
}

/** The body every benchmark rule renders: a Wavefront-style event. */
export const BODY_TEMPLATE =
  '{ "name": reason & " " & involvedObject.namespace & "/" & involvedObject.name, "annotations": { "severity": type = "Warning" ? "warn" : "info", "details": message }, "startTime": $toMillis(lastTimestamp), "tags": ["k8s", involvedObject.kind] }';

/** Rules per file: rule sets come as one file or ConfigMap per team, not one document of 1,000 rules. */
export const RULES_PER_FILE = 100;

/**
 * ruleFiles: `count` rules in files of RULES_PER_FILE, each with its own `sink` destination (as each
 * team's document has its own); rule i matches the events of namespace ns-(i mod namespaces). With 100
 * namespaces each rule matches ≈1 % of events; with namespaces = count every event matches one rule.
 */
export function ruleFiles(count: number, sinkUrl: string, namespaces = NAMESPACES): Record<string, string> {
  const files: Record<string, string> = {};
  for (let first = 0; first < count; first += RULES_PER_FILE) {
    const rules = Array.from({ length: Math.min(RULES_PER_FILE, count - first) }, (_, k) => {
      const i = first + k;
      return {
        name: `bench-rule-${i}`,
        conditions: {
          all: [
            { fact: 'event', path: '$.involvedObject.namespace', operator: 'equal', value: `ns-${i % namespaces}` },
            { fact: 'event', path: '$.type', operator: 'in', value: ['Normal', 'Warning'] },
            { fact: 'event', path: '$.message', operator: 'matches', value: '^[A-Z]' },
          ],
        },
        actions: [{ destination: 'sink', body: BODY_TEMPLATE }],
      };
    });
    files[`team-${first / RULES_PER_FILE}.yaml`] = stringify({
      destinations: { sink: { url: `${sinkUrl}/sink` } },
      rules,
    });
  }
  return files;
}
