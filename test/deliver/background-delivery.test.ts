/**
 * Background delivery: an action delivered outside any request goes through the real senders (retry,
 * bulkhead) to a real HTTP sink, with its rule's templates and the bindings given, once per key; a
 * failure is reported as `failed` (tried again by the caller), a template error as `error`.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../src/config.js';
import {
  createBackgroundDelivery,
  retryDelayMs,
  type BackgroundDelivery,
} from '../../src/deliver/background-delivery.js';
import { createBulkheads, withBulkhead } from '../../src/deliver/bulkhead.js';
import { createMemoryDeliveredStore } from '../../src/deliver/delivered-store.js';
import { createHttpSender } from '../../src/deliver/http-sender.js';
import { createSenders } from '../../src/deliver/kinds/registry.js';
import { NO_CLUSTER } from '../../src/enrich/cluster.js';
import { createLogger } from '../../src/log.js';
import { compileDocument, type CompiledRule } from '../../src/rules/compile-document.js';
import { compileTenancyPolicy } from '../../src/rules/tenancy-policy.js';
import { startCaptureSink, type CaptureSink } from '../support/capture-sink.js';
import { createMetrics } from '../support/quiet.js';

describe('background delivery', () => {
  let sink: CaptureSink;
  let background: BackgroundDelivery;
  let rule: CompiledRule;
  let broken: CompiledRule;
  const metrics = createMetrics();

  before(async () => {
    sink = await startCaptureSink();
    const config = { ...loadConfig({}), deliveryAttempts: 2, deliveryDeadlineMs: 2000 };
    const { compiled, problems } = compileDocument(
      {
        destinations: { out: { url: `${sink.url}/out` } },
        rules: [
          {
            name: 'summary',
            conditions: { all: [] },
            actions: [
              {
                destination: 'out',
                body: '{ "rule": $rule.name, "n": $digest.count, "first": $.reason, "id": $occurrence }',
              },
            ],
          },
          { name: 'broken', conditions: { all: [] }, actions: [{ destination: 'out', body: '{ "n": $number("x") }' }] },
        ],
      },
      'background.yaml',
      { timeoutMs: 1000 },
    );
    assert.deepEqual(problems, []);
    [rule, broken] = compiled!.rules;
    background = createBackgroundDelivery({
      config,
      cluster: NO_CLUSTER,
      tenancy: compileTenancyPolicy(config.tenancy),
      env: {},
      senders: createSenders({
        network: withBulkhead(
          createHttpSender({ attempts: config.deliveryAttempts, retryAfterMaxMs: 1000, metrics }),
          createBulkheads(config.destinations, metrics),
        ),
        writeLine: () => undefined,
        userMetrics: metrics.userMetrics,
      }),
      delivered: createMemoryDeliveredStore(60_000),
      metrics,
      log: createLogger('silent'),
    });
  });
  after(() => sink.close());

  it('renders with the given input and bindings, sends, and delivers each key once', async () => {
    const job = {
      rule,
      action: rule.actions[0],
      input: { reason: 'BackOff' },
      bindings: { digest: { count: 7 } },
      key: 'k1',
      what: 'test',
      id: 'g1',
    };
    const [first, concurrent] = await Promise.all([background.deliver(job), background.deliver(job)]);
    assert.equal(first.outcome, 'delivered');
    assert.equal(concurrent.outcome, 'delivered', 'a concurrent delivery of the same key shares the first one');
    assert.equal((await background.deliver(job)).outcome, 'skipped_duplicate');
    const received = sink.received('/out');
    assert.equal(received.length, 1);
    assert.deepEqual(received[0].json(), { rule: 'summary', n: 7, first: 'BackOff', id: 'g1' });
  });

  it('a failing destination is `failed` (the caller tries again), and the key stays open until it is delivered', async () => {
    sink.respond('/out', 500, 500);
    const job = {
      rule,
      action: rule.actions[0],
      input: {},
      bindings: { digest: { count: 2 } },
      key: 'k2',
      what: 'test',
      id: 'g2',
    };
    const failed = await background.deliver(job);
    assert.equal(failed.outcome, 'failed');
    assert.equal(failed.status, 500);
    assert.equal((await background.deliver(job)).outcome, 'delivered');
  });

  it('a template error is final (`error`), not retried', async () => {
    const before = sink.requests.length;
    const result = await background.deliver({
      rule: broken,
      action: broken.actions[0],
      input: {},
      bindings: {},
      key: 'k3',
      what: 'test',
      id: 'g3',
    });
    assert.equal(result.outcome, 'error');
    assert.match(result.error ?? '', /number/i);
    assert.equal(sink.requests.length, before);
  });

  it('retry delays grow from 1 s to at most a minute and honour a longer Retry-After', () => {
    assert.deepEqual(
      [1, 2, 3, 7, 20].map((f) => retryDelayMs(f)),
      [1000, 2000, 4000, 60_000, 60_000],
    );
    assert.equal(retryDelayMs(1, 5000), 5000);
  });
});
