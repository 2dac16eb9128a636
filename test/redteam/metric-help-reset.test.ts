/**
 * Red team: two teams may share a metric name when their definitions agree; help is not part of the
 * definition (sameDefinition), but the registered metric takes the FIRST declaration's help (namespace
 * order), and a changed help "starts the metric over" (UserMetrics.declare unregisters it with every
 * series). So team aaa, by editing the help text of its own declaration, wipes team bbb's counters (and
 * bbb's series count) whenever it likes.
 * Run: node --import tsx --test test/redteam/metric-help-reset.test.ts
 */
import assert from 'node:assert/strict';
import { it } from 'node:test';
import { Registry } from 'prom-client';
import { UserMetrics } from '../../src/deliver/user-metrics.js';
import type { CompiledRule } from '../../src/rules/compiled-rule.js';

const rule = (scope: string, help: string) =>
  ({
    name: `${scope}/deploys`,
    scope,
    shadow: false,
    actions: [
      {
        destination: {
          name: `${scope}/m`,
          kind: 'metric',
          scope,
          metric: { name: 'kube_event_rules_user_deploys_total', type: 'counter', help, labels: [['reason', {}]] },
        },
      },
    ],
  }) as unknown as CompiledRule;

it("a team editing its metric's help text does not reset another team's series", async () => {
  const registry = new Registry();
  const metrics = new UserMetrics(registry, 100, 100);
  metrics.declare([rule('aaa', 'Deploys.'), rule('bbb', 'Deploys.')]);
  for (let i = 0; i < 7; i++)
    assert.equal(
      metrics.record({
        metric: 'kube_event_rules_user_deploys_total',
        type: 'counter',
        labels: { reason: 'Scaled', namespace: 'bbb' },
      }),
      undefined,
    );
  const bbb = async () =>
    (await registry.getSingleMetricAsString('kube_event_rules_user_deploys_total'))
      .split('\n')
      .find((l) => l.includes('namespace="bbb"'));
  assert.match((await bbb()) ?? '', / 7$/);
  // Team aaa edits only the help text of its own document.
  metrics.declare([rule('aaa', 'Deploys, counted by aaa.'), rule('bbb', 'Deploys.')]);
  assert.match((await bbb()) ?? 'bbb series gone', / 7$/, "team bbb's counter was reset by team aaa's edit");
});
