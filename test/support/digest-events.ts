/** Crash-loop Events of one Deployment's pods for the digest suites: each its own occurrence and CloudEvent id. */
import { loadFixture, withEvent, type EventFixture } from './fixtures.js';

const template = loadFixture('pod-backoff-crashloop-resource-update');

/** The i-th pod of Deployment `deployment` in `namespace`, in CrashLoopBackOff. */
export function crashLoop(i: number, deployment = 'payment', namespace = 'shop'): EventFixture {
  return withEvent(template, (body, headers) => {
    body.metadata.uid = `${deployment}-${i}-uid`;
    body.metadata.namespace = namespace;
    body.involvedObject.namespace = namespace;
    body.involvedObject.name = `${deployment}-5c7d9b8f6-p${String(i).padStart(3, '0')}`;
    body.message = `Back-off restarting failed container in pod ${body.involvedObject.name}`;
    headers['ce-id'] = `${deployment}-${i}-ce`;
  });
}

/** A digest rule document: crash loops grouped per Deployment (the pod name without its two hashes). */
export function digestRules(sinkUrl: string, digest: string): string {
  return `
destinations:
  chat: { url: "${sinkUrl}/digest" }
rules:
  - name: crashloops
    conditions: { all: [ { fact: event, path: $.reason, operator: equal, value: BackOff } ] }
    digest: ${digest}
    actions:
      - destination: chat
        body: |
          { "key": $digest.key, "count": $digest.count, "start": $digest.start, "end": $digest.end,
            "first": [$digest.first.involvedObject.name], "last": [$digest.last.involvedObject.name], "latest": involvedObject.name }
`;
}

export const PER_DEPLOYMENT = `'involvedObject.namespace & "/" & $replace(involvedObject.name, /-[a-z0-9]+-[a-z0-9]+$/, "")'`;

/** waitUntil polls `condition` until it holds (bounded): tests wait on what happened, never on a fixed sleep. */
export async function waitUntil(
  what: string,
  condition: () => Promise<boolean> | boolean,
  timeoutMs = 15_000,
): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > end) throw new Error(`waited ${timeoutMs} ms for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}
