/**
 * TEAM_MAX_RULES once counted live rules only: a team loaded any number of `shadow: true` rules, each
 * matched and rendered (a dry run, templates in the sandbox) for every event of its namespace, each with
 * its own metric series. Shadow rules count now; the document that crosses the quota is rejected.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { loadConfig } from '../../src/config.js';
import { startCaptureSink, type CaptureSink } from '../support/capture-sink.js';
import { startFakeKubeApi, type FakeKubeApi } from '../support/fake-kube-api.js';
import { connectionTo, ruleConfigMap, waitUntil } from '../support/kube-fixtures.js';
import { startService, type RunningService } from '../support/running-service.js';

const shadowDoc = (prefix: string, count: number, url: string) => `
destinations:
  hook: { url: ${url}/shadow }
shadow: true
rules:
${Array.from(
  { length: count },
  (_, i) => `  - name: ${prefix}-${i}
    conditions: { all: [ { fact: event, path: $.reason, operator: equal, value: BackOff } ] }
    actions: [ { destination: hook, body: '{"r": reason}' } ]`,
).join('\n')}
`;

describe('shadow rules count against TEAM_MAX_RULES', () => {
  let fake: FakeKubeApi;
  let sink: CaptureSink;
  let svc: RunningService;
  before(async () => {
    fake = await startFakeKubeApi();
    sink = await startCaptureSink();
    const defaults = loadConfig({});
    svc = await startService({
      kube: connectionTo(fake),
      config: {
        kube: { ...defaults.kube, relistAfterMs: 60_000 },
        tenancy: { ...defaults.tenancy, rulesPerNamespace: 10 },
      },
    });
  });
  after(async () => {
    await svc.stop();
    await sink.close();
    await fake.close();
  });

  it('a team with TEAM_MAX_RULES=10 cannot put 600 shadow rules in force; the documents over it say why', async () => {
    const data: Record<string, string> = {};
    for (let k = 0; k < 3; k++) data[`s${k}.yaml`] = shadowDoc(`s${k}`, 200, sink.url);
    fake.apply(ruleConfigMap('aaa', 'shadows', data));
    await waitUntil(
      'loaded',
      () => svc.service.store.status().filter((s) => s.source.startsWith('configmap:aaa/shadows/')).length === 3,
      10_000,
    );
    const inForce = svc.service.store.current.rules.filter((r) => r.scope === 'aaa').length;
    const errors = svc.service.store.status().flatMap((s) => s.errors);
    assert.ok(inForce <= 10, `rules of namespace aaa in force: ${inForce} (TEAM_MAX_RULES=10)`);
    assert.equal(
      errors.filter((e) =>
        /namespace aaa would have 200 rules \(200 of this document's shadow rules included\).*TEAM_MAX_RULES/.test(e),
      ).length,
      3,
      errors.join('\n'),
    );
  });

  it('shadow rules within the quota are in force, twins of live rules included', async () => {
    fake.apply(
      ruleConfigMap('aab', 'small', {
        'live.yaml': shadowDoc('r', 4, sink.url).replace('shadow: true\n', ''),
        'shadow.yaml': shadowDoc('r', 4, sink.url),
      }),
    );
    await waitUntil(
      'loaded',
      () => svc.service.store.current.rules.filter((r) => r.scope === 'aab').length === 8,
      10_000,
    );
    const tooMany = shadowDoc('x', 3, sink.url);
    fake.apply(
      ruleConfigMap('aab', 'small', {
        'live.yaml': shadowDoc('r', 4, sink.url).replace('shadow: true\n', ''),
        'shadow.yaml': shadowDoc('r', 4, sink.url),
        'z.yaml': tooMany,
      }),
    );
    await waitUntil(
      'rejected',
      () =>
        svc.service.store
          .status()
          .some(
            (s) => s.source === 'configmap:aab/small/z.yaml' && s.errors.some((e) => /would have 11 rules/.test(e)),
          ),
      10_000,
    );
  });
});
