/**
 * Change regions through the real service and a real HTTP sink: a start is recorded and sends nothing, its
 * end sends one delivery with both times (the grafana-annotation and wavefront-event presets' region shapes),
 * duplicated starts, ends without a start, a failed end delivery, a missing end (timeout), and what a
 * region rule may not be (at load).
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { startCaptureSink, type CaptureSink } from '../support/capture-sink.js';
import { bodyOf, loadFixture, type EventFixture } from '../support/fixtures.js';
import { startService, type RunningService } from '../support/running-service.js';
import { newStore } from '../../src/cli/validate.js';
import { describe as describeResult, runTests } from '../../src/cli/test-rules.js';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const GUIDE = readFileSync(new URL('../../docs/examples/regions.yaml', import.meta.url), 'utf8');

/**
 * The test's own rule: a Pod in BackOff until it Started, with a short timeout and a body that shows `$region` whole.
 */
const TIMEOUT_RULE = `
destinations:
  sink: { url: { env: SINK_REGION_URL } }
rules:
  - name: backoff-region
    region:
      key: involvedObject.namespace & "/" & involvedObject.name
      start: { all: [ { fact: event, path: $.reason, operator: equal, value: BackOff } ] }
      end: { all: [ { fact: event, path: $.reason, operator: equal, value: Started } ] }
      timeout: 1s
    actions:
      - destination: sink
        body: '{ "region": $region, "reason": reason, "occurrence": $occurrence }'
`;

let uid = 0;
/** An Event of `kind` `name` with `reason` and `message` that happened at `at` (ms), as ApiServerSource posts it. */
function event(
  kind: string,
  name: string,
  reason: string,
  message: string,
  at: number,
  options: { uid?: string; count?: number; namespace?: string } = {},
): EventFixture {
  const fixture = loadFixture('deployment-scaling-replica-set-resource-add');
  const body = fixture.body as Record<string, any>;
  const namespace = options.namespace ?? (kind === 'Node' ? '' : 'shop');
  const time = new Date(at).toISOString().replace(/\.\d+Z$/, 'Z');
  body.metadata = { name: `${name}.${uid}`, namespace: namespace || 'default', uid: options.uid ?? `uid-${++uid}` };
  body.involvedObject = { kind, name, ...(namespace ? { namespace } : {}), uid: `${kind}-${name}` };
  Object.assign(body, {
    reason,
    message,
    firstTimestamp: time,
    lastTimestamp: time,
    count: options.count ?? 1,
    type: 'Normal',
  });
  fixture.headers = {
    ...fixture.headers,
    'ce-id': `ce-${body.metadata.uid}-${body.count}`,
    'ce-namespace': namespace || 'default',
  };
  return fixture;
}

/** Whole seconds (Event timestamps have no more). */
const second = (ms: number) => Math.floor(ms / 1000) * 1000;

async function waitUntil(what: string, condition: () => Promise<boolean> | boolean, timeoutMs = 10_000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > end) throw new Error(`waited ${timeoutMs} ms for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

describe('change regions', () => {
  let sink: CaptureSink;
  let svc: RunningService;
  before(async () => {
    sink = await startCaptureSink();
    svc = await startService({
      rules: { 'regions.yaml': GUIDE, 'timeout.yaml': TIMEOUT_RULE },
      env: {
        GRAFANA_ANNOTATIONS_URL: `${sink.url}/grafana`,
        GRAFANA_TOKEN: 'g',
        WAVEFRONT_EVENTS_URL: `${sink.url}/wavefront`,
        WAVEFRONT_TOKEN: 'w',
        SINK_REGION_URL: `${sink.url}/region`,
      },
    });
  });
  after(async () => {
    await svc?.stop();
    await sink?.close();
  });

  it('a rollout arrives once, when it completes, as a Grafana region with both times', async () => {
    const started = second(Date.now() - 120_000);
    const ended = started + 95_000;
    const start = event(
      'Deployment',
      'web',
      'ScalingReplicaSet',
      'Scaled up replica set web-7d9c5 from 0 to 1',
      started,
    );
    assert.equal((await svc.post(start)).status, 204);
    assert.equal(
      (
        await svc.post(
          event(
            'Deployment',
            'web',
            'ScalingReplicaSet',
            'Scaled up replica set web-7d9c5 from 1 to 2',
            started + 20_000,
          ),
        )
      ).status,
      204,
      'neither side: no match',
    );
    assert.equal(sink.received('/grafana').length, 0, 'a start sends nothing');
    assert.equal(await svc.metric('kube_event_rules_regions_open'), 1);

    assert.equal(
      (
        await svc.post(
          event('Deployment', 'web', 'ScalingReplicaSet', 'Scaled down replica set web-6b8f4 from 1 to 0', ended),
        )
      ).status,
      204,
    );
    const [annotation] = sink.received('/grafana');
    assert.equal(sink.received('/grafana').length, 1);
    assert.equal(annotation.headers.authorization, 'Bearer g');
    assert.deepEqual(annotation.json(), {
      time: started,
      timeEnd: ended,
      text: 'Deployment shop/web: ScalingReplicaSet → ScalingReplicaSet: Scaled down replica set web-6b8f4 from 1 to 0',
      tags: ['k8s', 'region', 'ended-by:end', 'ScalingReplicaSet', 'Deployment', 'shop'],
      dashboardUID: 'rollouts',
    });
    assert.equal(await svc.metric('kube_event_rules_regions_closed_total', { rule: 'rollout-region', how: 'end' }), 1);
    assert.equal(await svc.metric('kube_event_rules_regions_open'), 0);

    // The end again (a Broker redelivery or a second replica's copy): the region is closed, nothing more is sent.
    assert.equal(
      (
        await svc.post(
          event('Deployment', 'web', 'ScalingReplicaSet', 'Scaled down replica set web-6b8f4 from 1 to 0', ended),
        )
      ).status,
      204,
    );
    assert.equal(sink.received('/grafana').length, 1);
    assert.equal(await svc.metric('kube_event_rules_region_unmatched_ends_total', { rule: 'rollout-region' }), 1);
  });

  it('a Node NotReady then Ready arrives once as a Wavefront event from startTime to endTime; the first start wins', async () => {
    const notReady = second(Date.now() - 600_000);
    const again = notReady + 60_000;
    const ready = notReady + 300_000;
    assert.equal(
      (await svc.post(event('Node', 'node-7', 'NodeNotReady', 'Node node-7 status is now: NodeNotReady', notReady)))
        .status,
      204,
    );
    assert.equal(
      (await svc.post(event('Node', 'node-7', 'NodeNotReady', 'Node node-7 status is now: NodeNotReady', again)))
        .status,
      204,
      'a second start',
    );
    assert.equal(
      (await svc.post(event('Node', 'node-7', 'NodeReady', 'Node node-7 status is now: NodeReady', ready))).status,
      204,
    );
    const received = sink.received('/wavefront');
    assert.equal(received.length, 1);
    const body = received[0].json() as Record<string, any>;
    assert.deepEqual(body, {
      name: 'Node node-7: NodeNotReady → NodeReady',
      annotations: {
        severity: 'info',
        type: 'NodeNotReady',
        details: 'Node node-7 status is now: NodeReady',
        endedBy: 'end',
      },
      startTime: notReady, // the first start, not the second
      endTime: ready,
      tags: ['k8s', 'node-readiness', 'node-7'],
    });
  });

  it('a batch holding a start, its end and the end again sends the region once', async () => {
    const at = second(Date.now() - 200_000);
    const structured = (fixture: EventFixture) => ({
      specversion: '1.0',
      id: fixture.headers['ce-id'],
      source: fixture.headers['ce-source'],
      type: fixture.headers['ce-type'],
      datacontenttype: 'application/json',
      data: fixture.body,
    });
    const end = event('Node', 'node-12', 'NodeReady', 'Node node-12 status is now: NodeReady', at + 9000);
    const batch = [event('Node', 'node-12', 'NodeNotReady', 'Node node-12 status is now: NodeNotReady', at), end, end];
    const answer = await svc.postRaw(
      { 'content-type': 'application/cloudevents-batch+json' },
      JSON.stringify(batch.map(structured)),
    );
    assert.equal(answer.status, 204, answer.text);
    const sent = sink.received('/wavefront').filter((r) => (r.json() as { name: string }).name.includes('node-12'));
    assert.equal(sent.length, 1);
    assert.deepEqual([(sent[0].json() as any).startTime, (sent[0].json() as any).endTime], [at, at + 9000]);
  });

  it('an end with no start is not sent (counted); the start after it opens a region', async () => {
    const at = second(Date.now() - 60_000);
    const before = await svc.metric('kube_event_rules_region_unmatched_ends_total', { rule: 'node-not-ready-region' });
    assert.equal(
      (await svc.post(event('Node', 'node-8', 'NodeReady', 'Node node-8 status is now: NodeReady', at))).status,
      204,
    );
    assert.equal(
      await svc.metric('kube_event_rules_region_unmatched_ends_total', { rule: 'node-not-ready-region' }),
      before + 1,
    );
    assert.equal(
      sink.received('/wavefront').filter((r) => (r.json() as { name: string }).name.includes('node-8')).length,
      0,
    );
    const open = await svc.metric('kube_event_rules_regions_open');
    assert.equal(
      (await svc.post(event('Node', 'node-8', 'NodeNotReady', 'Node node-8 status is now: NodeNotReady', at + 5000)))
        .status,
      204,
    );
    assert.equal(await svc.metric('kube_event_rules_regions_open'), open + 1);
    // An end older than the open start does not close it either.
    assert.equal(
      (await svc.post(event('Node', 'node-8', 'NodeReady', 'Node node-8 status is now: NodeReady', at + 1000))).status,
      204,
    );
    assert.equal(await svc.metric('kube_event_rules_regions_open'), open + 1);
    assert.equal(
      await svc.metric('kube_event_rules_region_unmatched_ends_total', { rule: 'node-not-ready-region' }),
      before + 2,
    );
  });

  it('an end whose delivery fails is answered 503 and keeps the region; its redelivery sends it once', async () => {
    const at = second(Date.now() - 300_000);
    await svc.post(event('Node', 'node-9', 'NodeNotReady', 'Node node-9 status is now: NodeNotReady', at));
    const end = event('Node', 'node-9', 'NodeReady', 'Node node-9 status is now: NodeReady', at + 30_000);
    const sent = () =>
      sink.received('/wavefront').filter((r) => (r.json() as { name: string }).name.includes('node-9'));
    sink.always('/wavefront', 500);
    try {
      assert.equal((await svc.post(end)).status, 503);
    } finally {
      sink.always('/wavefront', undefined);
    }
    assert.ok(sent().length >= 1, 'attempted');
    const attempts = sent().length;
    assert.equal((await svc.post(end)).status, 204, 'the redelivery closes the region');
    assert.equal(sent().length, attempts + 1);
    const body = sent().at(-1)!.json() as Record<string, any>;
    assert.deepEqual([body.startTime, body.endTime], [at, at + 30_000]);
    assert.equal((await svc.post(end)).status, 204);
    assert.equal(sent().length, attempts + 1, 'closed: never sent again');
  });

  it('a region whose end never comes is sent once at its timeout: endedBy timeout, end = start + timeout', async () => {
    const at = second(Date.now());
    const start = event('Pod', 'api-1', 'BackOff', 'Back-off restarting failed container api', at);
    assert.equal((await svc.post(start)).status, 204);
    assert.equal((await svc.post(start)).status, 204, 'a redelivered start');
    const [request] = await sink.waitFor('/region', 1, 10_000);
    const body = request.json() as Record<string, any>;
    assert.deepEqual(body.region, {
      key: 'shop/api-1',
      start: {
        time: at,
        event: {
          reason: 'BackOff',
          message: 'Back-off restarting failed container api',
          type: 'Normal',
          count: 1,
          firstTimestamp: new Date(at).toISOString().replace('.000Z', 'Z'),
          lastTimestamp: new Date(at).toISOString().replace('.000Z', 'Z'),
          reportingComponent: 'deployment-controller',
          reportingInstance: '',
          metadata: {
            name: body.region.start.event.metadata.name,
            namespace: 'shop',
            uid: body.region.start.event.metadata.uid,
          },
          involvedObject: { kind: 'Pod', namespace: 'shop', name: 'api-1', uid: 'Pod-api-1' },
          source: { component: 'deployment-controller' },
        },
      },
      end: { time: at + 1000, event: null },
      endedBy: 'timeout',
    });
    assert.equal(body.reason, 'BackOff', 'the template input is the start');
    await waitUntil(
      'the closed-by-timeout count',
      async () =>
        (await svc.metric('kube_event_rules_regions_closed_total', { rule: 'backoff-region', how: 'timeout' })) === 1,
    );
    // The end after the timeout: nothing more.
    assert.equal((await svc.post(event('Pod', 'api-1', 'Started', 'Started container api', at + 3000))).status, 204);
    await new Promise((r) => setTimeout(r, 1500)); // a sweep or more
    assert.equal(sink.received('/region').length, 1);
  });

  it('a region timeout whose delivery fails is tried again by a later sweep', async () => {
    const closed = () =>
      svc.metric('kube_event_rules_regions_closed_total', { rule: 'backoff-region', how: 'timeout' });
    const before = await closed();
    const received = () => sink.received('/region').filter((r) => (r.json() as any).region.key === 'shop/api-2');
    sink.always('/region', 503);
    const at = second(Date.now());
    try {
      assert.equal(
        (await svc.post(event('Pod', 'api-2', 'BackOff', 'Back-off restarting failed container api', at))).status,
        204,
      );
      await waitUntil("one sweep's failed delivery (its in-request attempts)", () => received().length >= 3, 20_000);
      assert.equal(await closed(), before, 'not closed while it fails');
    } finally {
      sink.always('/region', undefined);
    }
    await waitUntil('the timeout delivered by a later sweep', async () => (await closed()) === before + 1, 20_000);
    const last = received().at(-1)!.json() as any;
    assert.deepEqual(
      [last.region.end.time, last.region.endedBy],
      [at + 1000, 'timeout'],
      'the end stays start + timeout',
    );
  });

  it('dry run: a start would open a region, an end shows the region it would send', async () => {
    const at = second(Date.now() - 100_000);
    await svc.post(event('Node', 'node-11', 'NodeNotReady', 'Node node-11 status is now: NodeNotReady', at));
    const end = event('Node', 'node-11', 'NodeReady', 'Node node-11 status is now: NodeReady', at + 7000);
    const response = await fetch(`${svc.url}/dry-run`, { method: 'POST', headers: end.headers, body: bodyOf(end) });
    const report = (await response.json()) as any;
    const action = report.events?.[0]?.actions?.[0] ?? report.actions?.[0];
    assert.equal(action.outcome, 'rendered');
    const body = typeof action.request.body === 'string' ? JSON.parse(action.request.body) : action.request.body;
    assert.deepEqual([body.startTime, body.endTime], [at, at + 7000]);
    assert.equal(
      sink.received('/wavefront').filter((r) => (r.json() as { name: string }).name.includes('node-11')).length,
      0,
      'nothing sent',
    );
    assert.equal((await svc.post(end)).status, 204);
    assert.equal(
      sink.received('/wavefront').filter((r) => (r.json() as { name: string }).name.includes('node-11')).length,
      1,
      'the dry run claimed nothing',
    );
  });
});

describe('kube-event-rules test with region rules', () => {
  it('pairs a start and its end among the events of one run; prints a start and an unmatched end', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'ker-regions-'));
    const rules = join(dir, 'regions.yaml');
    writeFileSync(rules, GUIDE);
    const at = Date.parse('2024-05-14T09:00:00Z');
    const events = join(dir, 'events.json');
    const [notReady, ready] = [
      event('Node', 'n-1', 'NodeNotReady', 'Node n-1 status is now: NodeNotReady', at),
      event('Node', 'n-1', 'NodeReady', 'Node n-1 status is now: NodeReady', at + 42_000),
    ];
    writeFileSync(events, JSON.stringify([notReady.body, ready.body, ready.body]));
    Object.assign(process.env, {
      WAVEFRONT_EVENTS_URL: 'https://wavefront.example.com/api/v2/event',
      WAVEFRONT_TOKEN: 'w',
      GRAFANA_ANNOTATIONS_URL: 'https://grafana.example.com/api/annotations',
      GRAFANA_TOKEN: 'g',
    });
    const { problems, results } = await runTests(
      { rules: [rules], secrets: [], events: [events], json: true, updateExpect: false },
      async () => '',
    );
    assert.deepEqual(problems, []);
    const outcomes = results.map((r) => ('actions' in r ? r.actions.map((a) => a.outcome) : []));
    assert.deepEqual(outcomes, [['region_started'], ['rendered'], ['region_unmatched']]);
    const body = (results[1] as { actions: { request?: { body: any } }[] }).actions[0].request!.body;
    assert.deepEqual([body.startTime, body.endTime, body.annotations.endedBy], [at, at + 42_000, 'end']);
    const printed = results.map(describeResult).join('');
    assert.match(printed, /a region starts — sent at its end or timeout/);
    assert.match(printed, /a region's end, not sent: no open region for its key/);
  });
});

describe('region rules at load', () => {
  const problems = (rule: string) =>
    newStore()
      .check('r.yaml', `destinations: { d: { url: "https://x.example.com/" } }\nrules:\n${rule}`)
      .problems.map((p) => p.replace(/^r\.yaml: /, ''));

  it('names what is wrong and where', () => {
    const base = `  - name: r\n    actions: [ { destination: d } ]\n`;
    assert.deepEqual(problems(base), ["rules[0] (r): must have required property 'conditions'"]);
    assert.deepEqual(
      problems(
        `${base}    region: { start: { all: [ { fact: event, path: $.reason, operator: equal, value: A } ] }, timeout: 10m }\n`,
      ),
      ["rules[0] (r).region: must have required property 'end'"],
    );
    const sides = `start: { all: [ { fact: event, path: $.reason, operator: equal, value: A } ] }, end: { all: [ { fact: event, path: $.reason, operator: equal, value: B } ] }`;
    assert.deepEqual(problems(`${base}    region: { ${sides}, timeout: 2d }\n`), [
      'rules[0] (r).region.timeout: "2d" must be more than 0 and at most 24h',
    ]);
    assert.deepEqual(problems(`${base}    region: { ${sides}, timeout: 10m, key: "involvedObject.(" }\n`).length, 1);
    assert.match(
      problems(`${base}    region: { ${sides}, timeout: 10m, key: "involvedObject.(" }\n`)[0],
      /^rules\[0\] \(r\)\.region\.key: /,
    );
    assert.deepEqual(problems(`${base}    throttle: { window: 1m }\n    region: { ${sides}, timeout: 10m }\n`), [
      'rules[0] (r).throttle: a region rule sends once per start and end already; remove throttle (or the region)',
    ]);
    assert.deepEqual(problems(`${base}    digest: { window: 10m }\n    region: { ${sides}, timeout: 10m }\n`), [
      'rules[0] (r).digest: a rule cannot have both digest and region (a region already sends one delivery per start and end); keep one',
    ]);
    assert.deepEqual(problems(`${base}    shadow: true\n    region: { ${sides}, timeout: 10m }\n`), [
      'rules[0] (r).region: a shadow rule cannot have a region (a shadow rule records nothing, so it could never pair a start with its end)',
    ]);
    assert.deepEqual(problems(`${base}    region: { ${sides}, timeout: 10m }\n`), []);
  });

  it('a side is checked like conditions, at the place it is written', () => {
    const found = problems(
      `  - name: r\n    actions: [ { destination: d } ]\n    region: { start: { all: [ { fact: event, path: "$.items[*].name", operator: equal, value: A } ] }, end: { all: [ { fact: event, path: $.reason, operator: matches, value: "(a)\\\\1" } ] }, timeout: 10m }\n`,
    );
    assert.equal(found.length, 2, found.join('\n'));
    assert.match(found[0], /^rules\[0\] \(r\)\.region\.start\.all\[0\]\.path: /);
    assert.match(found[1], /^rules\[0\] \(r\)\.region\.end\.all\[0\]\.value: invalid regex/);
  });
});
