/**
 * Which actions a redelivery skips as already delivered, over real HTTP: the delivered memory is keyed by
 * occurrence, change class (a delete is its own notification), rule and the action's identity (not its
 * position, which an edit of the rule can move), and one request never sends the same action twice.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { loadFixture, withEvent } from '../support/fixtures.js';
import { serviceBehindSink } from '../support/service-behind-sink.js';

const event = (verb: 'add' | 'update' | 'delete', id: string, uid: string) =>
  withEvent(loadFixture('pod-backoff-crashloop-resource-update'), (body, headers) => {
    body.metadata.uid = uid;
    body.count = 1;
    headers['ce-id'] = id;
    headers['ce-type'] = `dev.knative.apiserver.resource.${verb}`;
  });

describe('a delete after the occurrence was delivered', () => {
  const t = serviceBehindSink((sinkUrl) => ({
    'r.yaml': `
destinations:
  lifecycle: { url: "${sinkUrl}/lifecycle" }
rules:
  - name: lifecycle
    on: [add, update, delete]
    conditions: { all: [ { fact: event, path: $.reason, operator: equal, value: BackOff } ] }
    actions: [ { destination: lifecycle, body: '{ "change": $change, "uid": metadata.uid }' } ]
`,
  }));

  it('is delivered too (it carries the same uid/count as the add), and its redelivery is skipped', async () => {
    assert.equal((await t.svc.post(event('add', 'ce-add-1', 'uid-lifecycle'))).status, 204);
    const del = await t.svc.post(event('delete', 'ce-del-1', 'uid-lifecycle'));
    assert.equal(del.status, 204, del.text);
    assert.deepEqual(
      t.sink.received('/lifecycle').map((r) => (r.json() as { change: string }).change),
      ['add', 'delete'],
    );
    assert.equal((await t.svc.post(event('delete', 'ce-del-1', 'uid-lifecycle'))).status, 204);
    assert.equal(t.sink.received('/lifecycle').length, 2, 'a redelivered delete is still a duplicate');
  });
});

describe('an edit of the rule between a failure and the redelivery', () => {
  const doc = (url: string, actions: string[]) => `
destinations:
  a: { url: "${url}/a" }
  b: { url: "${url}/b" }
  c: { url: "${url}/c" }
rules:
  - name: r
    conditions: { all: [ { fact: event, path: $.reason, operator: equal, value: BackOff } ] }
    actions: [ ${actions.map((d) => `{ destination: ${d}, body: '{ "uid": metadata.uid }' }`).join(', ')} ]
`;
  const t = serviceBehindSink((sinkUrl) => ({ 'r.yaml': doc(sinkUrl, ['a', 'b']) }), { deliveryAttempts: 1 });

  it('an action put first is delivered for the occurrence, the one already delivered is not sent again', async () => {
    t.sink.respond('/b', 503);
    const first = await t.svc.post(event('add', 'ce-edit', 'uid-edit'));
    assert.equal(first.status, 503, first.text);
    await t.svc.writeRules('r.yaml', doc(t.sink.url, ['c', 'a', 'b']));
    const again = await t.svc.post(event('add', 'ce-edit', 'uid-edit')); // the Broker's redelivery
    assert.equal(again.status, 204, again.text);
    assert.deepEqual(
      { a: t.sink.received('/a').length, c: t.sink.received('/c').length },
      { a: 1, c: 1 },
      'c was taken for the old first action (skipped) and a was sent again',
    );
  });

  it('two identical actions of one rule are two actions', async () => {
    await t.svc.writeRules('r.yaml', doc(t.sink.url, ['c', 'c']));
    assert.equal((await t.svc.post(event('add', 'ce-twice', 'uid-twice'))).status, 204);
    assert.equal(t.sink.received('/c').filter((r) => (r.json() as { uid: string }).uid === 'uid-twice').length, 2);
  });
});

describe('the same CloudEvent twice in one batch', () => {
  const t = serviceBehindSink(
    (sinkUrl) => ({
      'r.yaml': `
destinations:
  d: { url: "${sinkUrl}/d" }
rules:
  - name: r
    conditions: { all: [ { fact: event, path: $.reason, operator: equal, value: BackOff } ] }
    actions: [ { destination: d, body: '{ "uid": metadata.uid, "count": count }' } ]
`,
    }),
    { deliveryAttempts: 1 },
  );

  const batch = (uid: string) => {
    const data = { ...(loadFixture('pod-backoff-crashloop-resource-update').body as Record<string, any>) };
    data.metadata = { ...data.metadata, uid };
    data.count = 5;
    const entry = {
      specversion: '1.0',
      id: `ce-${uid}`,
      source: 'test',
      type: 'dev.knative.apiserver.resource.update',
      datacontenttype: 'application/json',
      data,
    };
    return JSON.stringify([entry, entry]);
  };

  it('is delivered once', async () => {
    const answer = await t.svc.postRaw({ 'content-type': 'application/cloudevents-batch+json' }, batch('dup-uid'));
    assert.equal(answer.status, 204, answer.text);
    assert.equal(t.sink.received('/d').length, 1, 'one request, one occurrence, delivered twice');
  });

  it('when that delivery fails, both entries ask for a redelivery', async () => {
    t.sink.respond('/d', 503);
    const answer = await t.svc.postRaw({ 'content-type': 'application/cloudevents-batch+json' }, batch('dup-failing'));
    assert.equal(answer.status, 503, answer.text);
    assert.equal(t.sink.received('/d').filter((r) => (r.json() as { uid: string }).uid === 'dup-failing').length, 1);
  });
});
