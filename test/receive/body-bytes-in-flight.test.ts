/**
 * Request bytes in flight are bounded (MAX_BODY_BYTES_IN_FLIGHT): each request holds its body several times
 * over until it is answered, and 200 concurrent 0.9 MB events (each under MAX_BODY_BYTES, their actions far
 * under the action caps) took the process with the Deployment's heap flags past its memory. A request whose
 * body would pass the bound is answered 429 + Retry-After before its body is read, and counted; room is the
 * declared Content-Length, or MAX_BODY_BYTES for a body of undeclared length. Real HTTP, a real destination
 * that holds its answer.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { bytesToReserve, createBodyBytesInFlight } from '../../src/receive/body-bytes-in-flight.js';
import { startCaptureSink, type CaptureSink } from '../support/capture-sink.js';
import { loadFixture, withEvent } from '../support/fixtures.js';
import { startService, type RunningService } from '../support/running-service.js';

const event = (reason: string, message: string, id: string) =>
  withEvent(loadFixture('pod-backoff-crashloop-resource-update'), (body, headers) => {
    body.metadata.uid = `uid-${id}`;
    body.reason = reason;
    body.message = message;
    headers['ce-id'] = id;
    headers['ce-type'] = 'dev.knative.apiserver.resource.add';
  });

describe('request bytes in flight', () => {
  it('room is the declared length (at most MAX_BODY_BYTES), else MAX_BODY_BYTES; an idle process takes any request', () => {
    assert.equal(bytesToReserve('600000', 1_048_576), 600_000);
    assert.equal(bytesToReserve('5000000', 1_048_576), 1_048_576); // refused unread with 413 anyway
    assert.equal(bytesToReserve('', 1_048_576), 1_048_576);
    assert.equal(bytesToReserve('12abc', 1_048_576), 1_048_576);
    const bytes = createBodyBytesInFlight(1000);
    const first = bytes.reserve(2000);
    assert.ok(first, 'an idle process takes a request of any accepted size');
    assert.equal(bytes.reserve(1), undefined);
    first();
    first(); // released once
    assert.equal(bytes.inFlight, 0);
    const a = bytes.reserve(600)!;
    assert.equal(bytes.reserve(500), undefined);
    assert.ok(bytes.reserve(400));
    a();
  });

  describe('over real HTTP', () => {
    let sink: CaptureSink;
    let svc: RunningService;
    before(async () => {
      sink = await startCaptureSink();
      sink.always('/held', 'hang');
      svc = await startService({
        config: { maxBodyBytesInFlight: 1_000_000, deliveryDeadlineMs: 20_000, deliveryTimeoutMs: 20_000 },
        rules: {
          'r.yaml': `
destinations:
  held: { url: "${sink.url}/held" }
rules:
  - name: held
    conditions: { all: [ { fact: event, path: $.reason, operator: equal, value: BackOff } ] }
    actions: [ { destination: held, body: '{ "r": reason }' } ]
`,
        },
      });
    });
    after(async () => {
      sink.release('/held');
      await svc.stop();
      await sink.close();
    });

    it('a body that would pass MAX_BODY_BYTES_IN_FLIGHT is refused unread with 429 + Retry-After and counted; smaller ones go on', async () => {
      const large = 'x'.repeat(600_000);
      const first = svc.post(event('BackOff', large, 'first'));
      await sink.waitFor('/held', 1); // the first request holds its 600 kB until the destination answers
      const overCapacity = { type: 'dev.knative.apiserver.resource.add', outcome: 'over_capacity' };
      const refusedBefore = await svc.metric('kube_event_rules_events_received_total', overCapacity);

      const second = await svc.post(event('BackOff', large, 'second'));
      assert.equal(second.status, 429, second.text);
      assert.equal(second.headers.get('retry-after'), '1');
      assert.match(JSON.parse(second.text).detail, /MAX_BODY_BYTES_IN_FLIGHT \(1000000\)/);
      assert.equal((await svc.metric('kube_event_rules_events_received_total', overCapacity)) - refusedBefore, 1);

      // A body of undeclared length (chunked) may be MAX_BODY_BYTES long: that is the room it needs.
      const { headers, body } = event('Pulled', 'small', 'chunked');
      const stream = new ReadableStream({
        start(controller) {
          controller.enqueue(new TextEncoder().encode(JSON.stringify(body)));
          controller.close();
        },
      });
      const chunked = await fetch(`${svc.url}/`, { method: 'POST', headers, body: stream, duplex: 'half' });
      assert.equal(chunked.status, 429, await chunked.text());

      const small = await svc.post(event('Pulled', 'small', 'small'));
      assert.equal(small.status, 204, small.text);
      assert.equal(sink.received('/held').length, 1, 'the refused request reached the destination');

      sink.release('/held');
      sink.always('/held', 200);
      assert.equal((await first).status, 204);
      const again = await svc.post(event('BackOff', large, 'second'));
      assert.equal(again.status, 204, again.text);
      assert.equal(sink.received('/held').length, 2);
    });
  });
});
