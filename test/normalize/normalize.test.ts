import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { CloudEvent } from 'cloudevents';
import { InvalidEventError } from '../../src/errors.js';
import { toCoreV1 } from '../../src/normalize/events-v1.js';
import { normalize } from '../../src/normalize/normalize.js';
import { OccurrenceTracker } from '../../src/normalize/occurrence.js';
import { loadFixture } from '../support/fixtures.js';

function cloudEvent(name: string, type?: string): CloudEvent<unknown> {
  const fixture = loadFixture(name);
  return new CloudEvent({
    specversion: '1.0',
    id: fixture.headers['ce-id'],
    source: fixture.headers['ce-source'],
    type: type ?? fixture.headers['ce-type'],
    data: fixture.body,
  });
}

function inputOf(ce: CloudEvent<unknown>, tracker = new OccurrenceTracker(100)) {
  const normalized = normalize(ce, tracker);
  assert.equal(normalized.kind, 'input');
  return normalized.input;
}

describe('toCoreV1', () => {
  it('maps an events.k8s.io/v1 Event onto core/v1 names, equal to the same Event read through core/v1', () => {
    const viaEvents = toCoreV1(
      loadFixture('events-k8s-io-v1-hpa-successful-rescale-resource-add').body as Record<string, unknown>,
    );
    const viaCore = toCoreV1(loadFixture('hpa-successful-rescale-up-resource-add').body as Record<string, unknown>);
    for (const field of [
      'involvedObject',
      'reason',
      'message',
      'source',
      'type',
      'firstTimestamp',
      'lastTimestamp',
      'count',
      'reportingComponent',
    ] as const) {
      assert.deepEqual(viaEvents[field], viaCore[field], field);
    }
    assert.equal(viaEvents.regarding, undefined);
    assert.equal(viaEvents.note, undefined);
  });

  it('fills times and count of a scheduler-style Event (null legacy fields, eventTime and series set)', () => {
    const event = toCoreV1({
      apiVersion: 'events.k8s.io/v1',
      kind: 'Event',
      metadata: { name: 'web-0.1', namespace: 'shop', uid: 'u1' },
      eventTime: '2024-05-14T09:20:11.482913Z',
      series: { count: 4, lastObservedTime: '2024-05-14T09:25:00.000000Z' },
      reportingController: 'default-scheduler',
      reportingInstance: 'default-scheduler-node1',
      action: 'Scheduling',
      reason: 'FailedScheduling',
      regarding: { kind: 'Pod', namespace: 'shop', name: 'web-0' },
      note: '0/3 nodes are available: 3 Insufficient cpu.',
      type: 'Warning',
      deprecatedFirstTimestamp: null,
      deprecatedLastTimestamp: null,
    });
    assert.equal(event.firstTimestamp, '2024-05-14T09:20:11.482913Z');
    assert.equal(event.lastTimestamp, '2024-05-14T09:25:00.000000Z');
    assert.equal(event.count, 4);
    assert.deepEqual(event.source, { component: 'default-scheduler', host: 'default-scheduler-node1' });
    assert.equal(event.message, '0/3 nodes are available: 3 Insufficient cpu.');
    assert.equal(event.involvedObject.name, 'web-0');
  });

  it('gives count 1 and eventTime as both times to a first events.k8s.io Event without series', () => {
    const event = toCoreV1({
      metadata: { uid: 'u' },
      eventTime: '2024-05-14T09:20:11.482913Z',
      reason: 'Scheduled',
      regarding: {},
    });
    assert.equal(event.count, 1);
    assert.equal(event.firstTimestamp, '2024-05-14T09:20:11.482913Z');
    assert.equal(event.lastTimestamp, '2024-05-14T09:20:11.482913Z');
    assert.deepEqual(event.source, {});
  });
});

describe('normalize', () => {
  it('Resource mode add: the core/v1 Event, change add, occurrence uid/count', () => {
    const input = inputOf(cloudEvent('hpa-successful-rescale-up-resource-add'));
    assert.equal(input.change, 'add');
    assert.equal(input.occurrence, '30bb0794-6ac6-4f3f-8bb8-03a49c20486a/1');
    assert.equal(input.event.reason, 'SuccessfulRescale');
    assert.equal(input.cloudevent.type, 'dev.knative.apiserver.resource.add');
  });

  it('Reference mode: a reference to resolve, not an input', () => {
    const normalized = normalize(cloudEvent('hpa-successful-rescale-up-reference-add'), new OccurrenceTracker(10));
    assert.equal(normalized.kind, 'reference');
    assert.deepEqual((normalized as { ref: unknown }).ref, {
      kind: 'Event',
      namespace: 'shop',
      name: 'checkout.17cf4ffb2470c4d5',
      apiVersion: 'v1',
    });
  });

  it('other CloudEvent types: change other, the data as event', () => {
    const ce = new CloudEvent({
      specversion: '1.0',
      id: 'x1',
      source: 'ci',
      type: 'com.example.deploy',
      data: { app: 'web' },
    });
    const input = inputOf(ce);
    assert.equal(input.change, 'other');
    assert.deepEqual(input.event, { app: 'web' });
    assert.equal(input.occurrence, 'ci/x1');
  });

  it('rejects ApiServerSource events whose data is not an object', () => {
    for (const data of ['a string', [1, 2], null, undefined]) {
      const ce = new CloudEvent({
        specversion: '1.0',
        id: 'x',
        source: 's',
        type: 'dev.knative.apiserver.resource.add',
        data,
      });
      assert.throws(
        () => normalize(ce, new OccurrenceTracker(10)),
        (err: unknown) => err instanceof InvalidEventError && err.status === 400,
      );
    }
  });
});

describe('OccurrenceTracker (through normalize)', () => {
  const name = 'hpa-successful-rescale-down-resource-add';
  const withCount = (count: number, id: string, type = 'dev.knative.apiserver.resource.update') => {
    const ce = cloudEvent(name, type);
    return ce.cloneWith({ id, data: { ...(ce.data as object), count } }, false);
  };

  it('add, then a grown count is a new occurrence; the same count again is unchanged', () => {
    const tracker = new OccurrenceTracker(100);
    assert.equal(inputOf(withCount(1, 'a', 'dev.knative.apiserver.resource.add'), tracker).change, 'add');
    assert.equal(inputOf(withCount(2, 'b'), tracker).change, 'update');
    assert.equal(inputOf(withCount(2, 'c'), tracker).change, 'unchanged');
    assert.equal(inputOf(withCount(1, 'd'), tracker).change, 'unchanged', 'count 1 was seen in the add');
    assert.equal(inputOf(withCount(3, 'e'), tracker).change, 'update');
  });

  it('a late count never seen here is a new occurrence: the Broker delivered 6 before 5', () => {
    const tracker = new OccurrenceTracker(100);
    assert.equal(inputOf(withCount(6, 'a'), tracker).change, 'update');
    assert.equal(inputOf(withCount(5, 'b'), tracker).change, 'update', 'count 5 arrived late, it was never seen');
    assert.equal(inputOf(withCount(5, 'c'), tracker).change, 'unchanged', 'count 5 again, in a new CloudEvent: seen');
    assert.equal(inputOf(withCount(6, 'd'), tracker).change, 'unchanged');
    assert.equal(inputOf(withCount(2, 'e', 'dev.knative.apiserver.resource.add'), tracker).change, 'add');
    assert.equal(inputOf(withCount(2, 'f'), tracker).change, 'unchanged', 'the add saw count 2');
  });

  it('two replicas: count 3 failed on A, B delivered count 4, then the Broker redelivers count 3 to B', () => {
    const [a, b] = [new OccurrenceTracker(100), new OccurrenceTracker(100)];
    assert.equal(inputOf(withCount(3, 'c3'), a).change, 'update');
    assert.equal(inputOf(withCount(4, 'c4'), b).change, 'update');
    assert.equal(
      inputOf(withCount(3, 'c3'), b).change,
      'update',
      'never seen by B: delivered, not "older than what I saw"',
    );
    assert.equal(inputOf(withCount(3, 'c3'), a).change, 'update', 'and A classifies its redelivery as before');
  });

  it('a Broker redelivery (same CloudEvent id) is classified as it was the first time', () => {
    const tracker = new OccurrenceTracker(100);
    inputOf(withCount(1, 'a', 'dev.knative.apiserver.resource.add'), tracker);
    assert.equal(inputOf(withCount(2, 'b'), tracker).change, 'update');
    assert.equal(inputOf(withCount(2, 'b'), tracker).change, 'update');
  });

  it('a redelivery of an older occurrence still fires after newer occurrences arrived', () => {
    const tracker = new OccurrenceTracker(100);
    assert.equal(inputOf(withCount(2, 'b'), tracker).change, 'update');
    assert.equal(inputOf(withCount(3, 'c'), tracker).change, 'update');
    assert.equal(inputOf(withCount(2, 'b'), tracker).change, 'update', 'the Broker redelivers b after c');
    assert.equal(inputOf(withCount(2, 'x'), tracker).change, 'unchanged', 'a new CloudEvent for the old count is not');
  });

  it('an update of an Event never seen: a repeat (count > 1) is new, count 1 is a metadata-only change', () => {
    assert.equal(inputOf(withCount(7, 'x'), new OccurrenceTracker(10)).change, 'update');
    assert.equal(inputOf(withCount(1, 'y'), new OccurrenceTracker(10)).change, 'unchanged');
  });

  it('delete is delete, whatever the count', () => {
    assert.equal(inputOf(withCount(5, 'z', 'dev.knative.apiserver.resource.delete')).change, 'delete');
  });

  it('forgets the oldest Events beyond its capacity', () => {
    const tracker = new OccurrenceTracker(2);
    const event = (uid: string, count: number, id: string, verb = 'update') =>
      new CloudEvent({
        specversion: '1.0',
        id,
        source: 's',
        type: `dev.knative.apiserver.resource.${verb}`,
        data: { kind: 'Event', metadata: { uid }, count },
      });
    inputOf(event('u1', 5, '1', 'add'), tracker);
    inputOf(event('u2', 5, '2', 'add'), tracker);
    inputOf(event('u3', 5, '3', 'add'), tracker);
    // u3's count 5 is remembered (an update of it is a no-op); u1's was evicted, so it is judged as never seen.
    assert.equal(inputOf(event('u3', 5, '4'), tracker).change, 'unchanged');
    assert.equal(inputOf(event('u1', 5, '5'), tracker).change, 'update');
  });

  it('events.k8s.io: a first Event without series, then series.count 2, is a repeat', () => {
    const tracker = new OccurrenceTracker(10);
    const first = {
      apiVersion: 'events.k8s.io/v1',
      kind: 'Event',
      metadata: { uid: 's1' },
      eventTime: '2024-05-14T09:00:00.000000Z',
      reason: 'FailedScheduling',
      regarding: {},
    };
    const add = new CloudEvent({
      specversion: '1.0',
      id: '1',
      source: 's',
      type: 'dev.knative.apiserver.resource.add',
      data: first,
    });
    assert.equal(inputOf(add, tracker).change, 'add');
    const repeated = { ...first, series: { count: 2, lastObservedTime: '2024-05-14T09:01:00.000000Z' } };
    const update = add.cloneWith({ id: '2', type: 'dev.knative.apiserver.resource.update', data: repeated }, false);
    const input = inputOf(update, tracker);
    assert.equal(input.change, 'update');
    assert.equal(input.occurrence, 's1/2');
    assert.equal(input.event.lastTimestamp, '2024-05-14T09:01:00.000000Z');
  });

  it('uses lastTimestamp as the occurrence when there is no count', () => {
    const data = { kind: 'Event', metadata: { uid: 'u9' }, lastTimestamp: '2024-05-14T09:00:00Z' };
    const ce = new CloudEvent({
      specversion: '1.0',
      id: '1',
      source: 's',
      type: 'dev.knative.apiserver.resource.add',
      data,
    });
    const tracker = new OccurrenceTracker(10);
    assert.equal(inputOf(ce, tracker).occurrence, 'u9/2024-05-14T09:00:00Z');
    const later = ce.cloneWith(
      {
        id: '2',
        type: 'dev.knative.apiserver.resource.update',
        data: { ...data, lastTimestamp: '2024-05-14T09:05:00Z' },
      },
      false,
    );
    assert.equal(inputOf(later, tracker).change, 'update');
    const same = ce.cloneWith(
      {
        id: '3',
        type: 'dev.knative.apiserver.resource.update',
        data: { ...data, lastTimestamp: '2024-05-14T09:05:00Z' },
      },
      false,
    );
    assert.equal(inputOf(same, tracker).change, 'unchanged');
  });

  it('a lastTimestamp far in the future suppresses nothing but itself', () => {
    const data = { kind: 'Event', metadata: { uid: 'u2099' }, lastTimestamp: '2099-01-01T00:00:00Z' };
    const ce = new CloudEvent({
      specversion: '1.0',
      id: '1',
      source: 's',
      type: 'dev.knative.apiserver.resource.update',
      data,
    });
    const tracker = new OccurrenceTracker(10);
    assert.equal(inputOf(ce, tracker).change, 'update');
    for (const [id, time] of [
      ['2', '2024-05-14T09:05:00Z'],
      ['3', '2024-05-14T09:06:00Z'],
    ]) {
      const real = ce.cloneWith({ id, data: { ...data, lastTimestamp: time } }, false);
      assert.equal(inputOf(real, tracker).change, 'update', `the real update at ${time}`);
    }
    assert.equal(
      inputOf(ce.cloneWith({ id: '4' }, false), tracker).change,
      'unchanged',
      'the 2099 occurrence itself, again',
    );
  });
});
