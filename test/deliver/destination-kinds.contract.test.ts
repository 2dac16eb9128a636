/**
 * The contract every destination kind keeps, run against each kind in the registry: a valid destination
 * compiles, an invalid one is refused with a message that says why, an action renders for an event, and
 * the kind's sender delivers it (to a real HTTP sink on 127.0.0.1, or the log stream) and reports the outcome.
 * A new kind needs its case below; the first test fails until it has one.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, it } from 'node:test';
import { createBulkheads, withBulkhead } from '../../src/deliver/bulkhead.js';
import type { DeliveryResult } from '../../src/deliver/destination.js';
import { DESTINATION_KINDS, createSenders, destinationKind, type Senders } from '../../src/deliver/kinds/registry.js';
import { createHttpSender } from '../../src/deliver/http-sender.js';
import { ConfigurationError } from '../../src/errors.js';
import type { CompiledAction } from '../../src/rules/compile-document.js';
import { compileDocument } from '../../src/rules/compile-document.js';
import type { DestinationSpec } from '../../src/rules/document.js';
import type { ResolveContext, SecretReader } from '../../src/render/value-source.js';
import { startCaptureSink, type CaptureSink } from '../support/capture-sink.js';
import { createMetrics } from '../support/quiet.js';

const event = {
  metadata: { name: 'web.1', namespace: 'shop' },
  reason: 'ScalingLimited',
  message: 'desired replica count is more than the maximum',
  firstTimestamp: '2026-01-01T00:00:00Z',
  involvedObject: { kind: 'HorizontalPodAutoscaler', namespace: 'shop', name: 'web' },
};

interface KindCase {
  /** A destination of this kind that compiles, given the sink's base URL. */
  valid: (sinkUrl: string) => DestinationSpec;
  /** One this kind refuses at load, and what the refusal says. */
  invalid: { spec: DestinationSpec; message: RegExp };
  /** What rendering reads besides the event: the involved object, Secrets by namespace/name/key. */
  object?: (sinkUrl: string) => Record<string, unknown>;
  secrets?: (sinkUrl: string) => Record<string, string>;
  /** What every action of the kind reads besides its templates. */
  reads?: string[];
  /**
   * Where the sent request arrives: the sink's path, the log stream, or the service's metrics (the series it records).
   */
  arrives: { path: string } | 'log' | { series: string };
}

const cases: Record<string, KindCase> = {
  http: {
    valid: (sink) => ({ url: `${sink}/http`, headers: { 'x-team': 'shop' } }),
    invalid: { spec: { kind: 'http' }, message: /must have required property 'url'/ },
    arrives: { path: '/http' },
  },
  log: {
    valid: () => ({ kind: 'log' }),
    invalid: {
      spec: { kind: 'log', proxy: { url: 'http://proxy:3128' } },
      message: /tls and proxy apply to http destinations only \(this one is log\)/,
    },
    arrives: 'log',
  },
  'hpa-sender': {
    valid: () => ({ kind: 'hpa-sender' }),
    invalid: {
      spec: { kind: 'hpa-sender', tls: { serverName: 'x' } },
      message: /tls and proxy apply to http destinations only \(this one is hpa-sender\)/,
    },
    reads: ['object'], // the HPA's annotation names the Secret
    object: () => ({
      kind: 'HorizontalPodAutoscaler',
      metadata: { name: 'web', namespace: 'shop', annotations: { 'hpa-event': 'shop/hook' } },
    }),
    secrets: (sink) => ({
      'shop/hook/url': `${sink}/hpa\n`,
      'shop/hook/headers': '{"X-Token":"t0k3n"}',
      'shop/hook/body': '{"text":"_message_","at":"_time_"}',
    }),
    arrives: { path: '/hpa' },
  },
  metric: {
    valid: () => ({
      kind: 'metric',
      metric: {
        name: 'contract_scaling_total',
        type: 'counter',
        help: 'HPAs at their limit.',
        labels: { hpa: 'involvedObject.name', reason: 'reason' },
      },
    }),
    invalid: {
      spec: {
        kind: 'metric',
        metric: { name: 'limits_total', type: 'counter', help: 'h', labels: { __name__: 'reason' } },
      },
      message: /metric\.labels\.__name__: label names starting with __ are reserved by Prometheus/,
    },
    arrives: { series: 'kube_event_rules_user_contract_scaling_total{hpa="web",reason="ScalingLimited"} 1' },
  },
};

const documentWith = (destination: DestinationSpec) => ({
  destinations: { out: destination },
  rules: [
    {
      name: 'r',
      conditions: { all: [{ fact: 'event', path: '$.reason', operator: 'equal', value: 'ScalingLimited' }] },
      actions: [{ destination: 'out' }],
    },
  ],
});
const compile = (destination: DestinationSpec) =>
  compileDocument(documentWith(destination), 'contract.yaml', { timeoutMs: 1000 });

describe('destination kinds: the contract every registered kind keeps', () => {
  let sink: CaptureSink;
  let senders: Senders;
  let metrics: ReturnType<typeof createMetrics>;
  const lines: string[] = [];

  before(async () => {
    sink = await startCaptureSink();
    metrics = createMetrics();
    const bulkheads = createBulkheads({ maxConcurrent: 4, maxQueued: 4, failureThreshold: 5, openMs: 1000 }, metrics);
    senders = createSenders({
      network: withBulkhead(createHttpSender({ attempts: 2, retryAfterMaxMs: 1000, metrics }), bulkheads),
      writeLine: (line) => lines.push(line),
      userMetrics: metrics.userMetrics,
    });
  });
  after(() => sink.close());

  it('every registered kind has a contract case, and the schema offers exactly the registered kinds', () => {
    assert.deepEqual(Object.keys(cases).sort(), Object.keys(DESTINATION_KINDS).sort());
    const schema = JSON.parse(
      readFileSync(new URL('../../src/rules/rule-document.schema.json', import.meta.url), 'utf8'),
    ) as { definitions: Record<string, any> };
    assert.deepEqual(
      [...schema.definitions.destination.properties.kind.enum].sort(),
      Object.keys(DESTINATION_KINDS).sort(),
    );
  });

  it('an unknown kind is refused at load, naming the known ones', () => {
    // The schema refuses it first; the registry check guards documents compiled without it.
    const { problems } = compile({ kind: 'pager' });
    assert.ok(
      problems.some((p) =>
        /destinations\.out\.kind: "pager" must be one of "http", "log", "hpa-sender", "metric"/.test(p),
      ),
      problems.join('\n'),
    );
    assert.throws(
      () => destinationKind('pager'),
      /unknown destination kind "pager" \(known: http, log, hpa-sender, metric\)/,
    );
  });

  for (const [name, kindCase] of Object.entries(cases)) {
    describe(`kind ${name}`, () => {
      it('compiles a valid destination, with what it reads', () => {
        const { compiled, problems } = compile(kindCase.valid(sink.url));
        assert.deepEqual(problems, []);
        const action = compiled!.rules[0].actions[0];
        assert.equal(action.destination.kind, name);
        assert.deepEqual([...action.uses].sort(), (kindCase.reads ?? []).sort());
      });

      it('refuses an invalid destination with a message that says why', () => {
        const { compiled, problems } = compile(kindCase.invalid.spec);
        assert.equal(compiled, undefined);
        assert.ok(
          problems.some((p) => p.startsWith('destinations.out') && kindCase.invalid.message.test(p)),
          problems.join('\n'),
        );
      });

      it('renders an action for an event and delivers it, reporting the outcome', async () => {
        const { rules } = compile(kindCase.valid(sink.url)).compiled!;
        const action: CompiledAction = rules[0].actions[0];
        metrics.userMetrics.declare(rules); // what the rule store does with the rules in force
        const secrets = kindCase.secrets?.(sink.url) ?? {};
        const reader: SecretReader = {
          async read(secret, key, namespace) {
            const value = secrets[`${namespace}/${secret}/${key}`];
            if (value === undefined) throw new ConfigurationError(`Secret ${namespace}/${secret} has no key ${key}`);
            return value;
          },
        };
        const context: ResolveContext = {
          input: event,
          bindings: { object: kindCase.object?.(sink.url) ?? null },
          secrets: reader,
          env: {},
        };
        const kind = destinationKind(name);
        const request = await kind.render(action, context);
        assert.equal(typeof request.body, 'string');
        assert.equal(kind.network, typeof kindCase.arrives === 'object' && 'path' in kindCase.arrives);

        const before = lines.length;
        const result: DeliveryResult = await senders[name].send(request, {
          timeoutMs: 2000,
          deadline: Date.now() + 5000,
          destination: 'out',
          lane: `contract.yaml#out-${name}`,
          context: { rule: 'r', ceId: 'ce-1', occurrence: 'o-1' },
        });
        assert.equal(result.outcome, 'delivered');
        assert.equal(result.attempts, 1);
        if (kindCase.arrives === 'log') {
          assert.equal(lines.length, before + 1);
          const line = JSON.parse(lines[before]) as { destination: string; rule: string; request: { body: unknown } };
          assert.equal(line.destination, 'out');
          assert.equal(line.rule, 'r');
          assert.deepEqual(line.request.body, event);
        } else if ('series' in kindCase.arrives) {
          assert.ok(
            (await metrics.registry.metrics()).split('\n').includes(kindCase.arrives.series),
            await metrics.registry.metrics(),
          );
        } else {
          const [arrived] = sink.received(kindCase.arrives.path);
          assert.ok(arrived, `a request arrived at ${kindCase.arrives.path}`);
          assert.equal(arrived.method, request.method);
          assert.deepEqual(arrived.json(), JSON.parse(request.body));
        }
      });

      it('reports a refusal of the destination as its outcome', async () => {
        if (kindCase.arrives === 'log') return; // nothing outside the process can refuse a log line
        const action = compile(kindCase.valid(sink.url)).compiled!.rules[0].actions[0];
        if ('series' in kindCase.arrives) {
          // The metrics refuse an observation of a metric no rule in force declares (its document was removed
          // meanwhile).
          const request = await destinationKind(name).render(action, {
            input: event,
            bindings: {},
            secrets: { read: async () => '' },
            env: {},
          });
          metrics.userMetrics.declare([]);
          const result = await senders[name].send(request, {
            timeoutMs: 2000,
            deadline: Date.now() + 5000,
            destination: 'out',
            context: { rule: 'r', ceId: 'ce-2', occurrence: 'o-2' },
          });
          assert.equal(result.outcome, 'rejected');
          assert.match(
            result.error ?? '',
            /metric kube_event_rules_user_contract_scaling_total is no longer declared by any rule in force/,
          );
          return;
        }
        const secrets = kindCase.secrets?.(sink.url) ?? {};
        const reader: SecretReader = {
          read: async (secret, key, namespace) => secrets[`${namespace}/${secret}/${key}`] ?? '{}',
        };
        const request = await destinationKind(name).render(action, {
          input: event,
          bindings: { object: kindCase.object?.(sink.url) ?? null },
          secrets: reader,
          env: {},
        });
        sink.respond(kindCase.arrives.path, { status: 404, body: 'no such hook' });
        const result = await senders[name].send(request, {
          timeoutMs: 2000,
          deadline: Date.now() + 5000,
          destination: 'out',
          context: { rule: 'r', ceId: 'ce-2', occurrence: 'o-2' },
        });
        assert.equal(result.outcome, 'rejected');
        assert.equal(result.status, 404);
        assert.match(result.error ?? '', /HTTP 404: no such hook/);
      });
    });
  }
});
