/**
 * Hostile input gets a deterministic answer: a parse failure that will fail again on every redelivery is a
 * 4xx (never a 503 the Broker retries forever), a batch is checked whole before anything is remembered, and
 * a header value that HTTP cannot carry is a permanent, clearly named error of that event.
 */
import assert from 'node:assert/strict';
import { after, before, beforeEach, describe, it } from 'node:test';
import { startCaptureSink, type CaptureSink } from '../support/capture-sink.js';
import { bodyOf, loadFixture, withEvent, type EventFixture } from '../support/fixtures.js';
import { startService, type RunningService } from '../support/running-service.js';

const rules = (sinkUrl: string) => `
destinations:
  hook:
    url: ${sinkUrl}/hook
    headers:
      X-Note: { jsonata: message }
rules:
  - name: rescale
    conditions:
      all:
        - { fact: event, path: $.reason, operator: equal, value: SuccessfulRescale }
    actions:
      - destination: hook
        body: '{ "name": involvedObject.name, "count": count }'
`;

function rescale(
  n: number,
  edit: (body: Record<string, any>, headers: Record<string, string>) => void = () => undefined,
): EventFixture {
  return withEvent(loadFixture('hpa-successful-rescale-up-resource-add'), (body, headers) => {
    body.metadata.uid = `hostile-${n}`;
    body.involvedObject.name = `hpa-${n}`;
    body.message = `New size: ${n}`;
    headers['ce-id'] = `hostile-ce-${n}`;
    edit(body, headers);
  });
}

/** A structured-mode entry of a batch. */
function entry(fixture: EventFixture, data: unknown = fixture.body): Record<string, unknown> {
  const attributes = Object.fromEntries(
    Object.entries(fixture.headers)
      .filter(([k]) => k.startsWith('ce-'))
      .map(([k, v]) => [k.slice(3), v]),
  );
  return { ...attributes, datacontenttype: 'application/json', data };
}

const deeplyNested = (depth: number) => `${'['.repeat(depth)}${']'.repeat(depth)}`;

describe('hostile input', () => {
  let sink: CaptureSink;
  let svc: RunningService;

  before(async () => {
    sink = await startCaptureSink();
    svc = await startService({ rules: { 'rules.yaml': rules(sink.url) } });
  });
  after(async () => {
    await svc.stop();
    await sink.close();
  });
  beforeEach(() => {
    sink.requests.length = 0;
  });

  it('400,000-deep JSON is a 400 (binary, structured and batch mode), not a 503 retried forever', async () => {
    const deep = rescale(1);
    const body = bodyOf(deep).replace(/}$/, `, "deep": ${deeplyNested(400_000)}}`);
    const binary = await svc.postRaw(deep.headers, body);
    assert.equal(binary.status, 400, binary.text);
    assert.match(binary.text, /data too deeply nested.*more than 100 levels/);
    const structured = await svc.postRaw(
      { 'content-type': 'application/cloudevents+json' },
      JSON.stringify(entry(deep)).replace(/}}$/, `, "deep": ${deeplyNested(400_000)}}}`),
    );
    assert.equal(structured.status, 400, structured.text);
    const batch = `[${JSON.stringify(entry(rescale(2)))}, ${JSON.stringify(entry(deep)).replace(/}}$/, `, "deep": ${deeplyNested(1_000)}}}`)}]`;
    const batchAnswer = await svc.postRaw({ 'content-type': 'application/cloudevents-batch+json' }, batch);
    assert.equal(batchAnswer.status, 400);
    assert.match(batchAnswer.text, /batch entry 1: data is nested more than 100 levels deep/);
    assert.equal(sink.requests.length, 0, 'nothing of the rejected batch was sent');
    // Real nesting stays well inside the limit.
    assert.equal(
      (await svc.postRaw(deep.headers, bodyOf(deep).replace(/}$/, `, "deep": ${deeplyNested(90)}}`))).status,
      204,
    );
    assert.equal(sink.received('/hook').length, 1);
  });

  it('a batch with a bad entry is rejected whole, naming the entry, before the occurrence memory changes', async () => {
    const repeat = (ceId: string) =>
      rescale(3, (body, headers) => {
        body.count = 2; // a repeat of the occurrence: new only once
        headers['ce-type'] = 'dev.knative.apiserver.resource.update';
        headers['ce-id'] = ceId;
      });
    const bad = { ...entry(rescale(4)), data: [1, 2] };
    const answer = await svc.postRaw(
      { 'content-type': 'application/cloudevents-batch+json' },
      JSON.stringify([entry(repeat('first')), bad]),
    );
    assert.equal(answer.status, 400);
    assert.match(
      answer.text,
      /batch entry 1: dev\.knative\.apiserver\.resource\.add needs a JSON object as data, got an array/,
    );
    assert.equal(sink.requests.length, 0);
    // The repeat was never remembered: sent again (as the fixed batch would be), it is new and delivered.
    assert.equal((await svc.post(repeat('second'))).status, 204);
    assert.deepEqual(
      sink.received('/hook').map((r) => r.json()),
      [{ name: 'hpa-3', count: 2 }],
    );
  });

  it('a CR/LF from event data in a header value is a permanent error that says so, not "rejected by the destination"', async () => {
    const injected = rescale(5, (body) => (body.message = 'line\r\nX-Injected: yes'));
    const answer = await svc.post(injected);
    assert.equal(answer.status, 204, 'retrying cannot change it: acknowledged, counted, logged');
    assert.equal(sink.requests.length, 0);
    const logged = svc.logs.filter((l) => l.ceId === 'hostile-ce-5');
    assert.ok(
      logged.some(
        (l) =>
          l.msg === 'action not rendered' &&
          /destination hook header X-Note: the value "line\\r\\nX-Injected: yes" holds a carriage return \(CR\) at position 4, which an HTTP header cannot carry/.test(
            String(l.error),
          ),
      ),
      JSON.stringify(logged),
    );
    assert.ok(!svc.logs.some((l) => /rejected by the destination/.test(String(l.msg))));
    // A value beyond Latin-1 is refused the same way, by its code point.
    await svc.post(rescale(6, (body) => (body.message = 'ok ✓')));
    assert.ok(
      svc.logs.some(
        (l) => l.ceId === 'hostile-ce-6' && /holds the character U\+2713 at position 3/.test(String(l.error)),
      ),
    );
  });
});
