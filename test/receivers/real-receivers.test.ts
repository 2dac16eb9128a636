/**
 * Real receivers, as users run them (Debian's packages on 127.0.0.1): Alertmanager stores the alert of
 * the `alertmanager` preset and returns it from its API; graphite-web stores the chart events of the
 * `graphite-event` preset and returns them from its events query; Prometheus scrapes the service's
 * /metrics and a PromQL query returns the match and delivery counts of this test.
 */
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { loadFixture, withEvent } from '../support/fixtures.js';
import { waitUntil } from '../support/kube-fixtures.js';
import { startAlertmanager, startGraphiteWeb, startPrometheus, type Receiver } from '../support/real-receivers.js';
import { needs } from '../support/needs.js';
import { startService, type RunningService } from '../support/running-service.js';

const now = () => new Date().toISOString().replace(/\.\d+Z$/, 'Z');

describe('real receivers', { skip: needs('prometheus', 'prometheus-alertmanager', 'graphite-web') }, () => {
  let alertmanager: Receiver;
  let graphite: Receiver;
  let prometheus: Receiver;
  let svc: RunningService;

  before(async () => {
    [alertmanager, graphite] = await Promise.all([startAlertmanager(), startGraphiteWeb()]);
    svc = await startService({
      rules: {
        'receivers.yaml': `
destinations:
  alertmanager: { url: "${alertmanager.url}/api/v2/alerts" }
  graphite: { url: "${graphite.url}/events/" }
rules:
  - name: crashloop-alerts
    conditions: { all: [ { fact: event, path: $.reason, operator: equal, value: BackOff } ] }
    actions: [ { destination: alertmanager, preset: alertmanager, fields: { labels.team: payments } } ]
  - name: hpa-chart-events
    conditions: { all: [ { fact: event, path: $.reason, operator: equal, value: SuccessfulRescale } ] }
    actions: [ { destination: graphite, preset: graphite-event } ]
`,
      },
    });
    prometheus = await startPrometheus(new URL(svc.url).host);
  });
  after(async () => {
    await Promise.all([alertmanager?.stop(), graphite?.stop(), prometheus?.stop()]);
    await svc?.stop();
  });

  it('Alertmanager receives the alert and returns it from GET /api/v2/alerts', async () => {
    const crash = withEvent(loadFixture('pod-backoff-crashloop-resource-update'), (body) => {
      body.lastTimestamp = now(); // an active alert: endsAt is 5 minutes after the occurrence
    });
    assert.equal((await svc.post(crash)).status, 204);
    const response = await fetch(
      `${alertmanager.url}/api/v2/alerts?filter=${encodeURIComponent('alertname="KubernetesBackOff"')}`,
    );
    const alerts = (await response.json()) as {
      labels: Record<string, string>;
      annotations: Record<string, string>;
      status: { state: string };
    }[];
    assert.equal(alerts.length, 1);
    assert.equal(alerts[0].labels.namespace, 'shop');
    assert.equal(alerts[0].labels.team, 'payments');
    assert.equal(alerts[0].labels.rule, 'crashloop-alerts');
    assert.equal(alerts[0].status.state, 'active');
    assert.match(alerts[0].annotations.description, /^Back-off restarting failed container payment/);
  });

  it('graphite-web stores the chart events and returns them from its events query', async () => {
    for (const name of ['hpa-successful-rescale-up-resource-add', 'hpa-successful-rescale-down-resource-add']) {
      assert.equal((await svc.post(loadFixture(name))).status, 204);
    }
    const events = (await (await fetch(`${graphite.url}/events/get_data?tags=SuccessfulRescale&from=-10y`)).json()) as {
      what: string;
      when: number;
      data: string;
      tags: string[];
    }[];
    assert.deepEqual(events.map((e) => e.when).sort(), [
      Date.parse('2024-05-14T09:12:03Z') / 1000,
      Date.parse('2024-05-14T09:27:33Z') / 1000,
    ]);
    assert.ok(
      events.every(
        (e) => e.what === 'SuccessfulRescale HorizontalPodAutoscaler shop/checkout' && e.tags.includes('k8s'),
      ),
    );
    assert.ok(events.some((e) => e.data === 'New size: 2; reason: All metrics below target'));
  });

  it('Prometheus scrapes /metrics and PromQL returns the match and delivery counts of this test', async () => {
    const query = async (promql: string) => {
      const body = (await (
        await fetch(`${prometheus.url}/api/v1/query?query=${encodeURIComponent(promql)}`)
      ).json()) as { data: { result: { value: [number, string] }[] } };
      return body.data.result.length > 0 ? Number(body.data.result[0].value[1]) : undefined;
    };
    await waitUntil(
      'Prometheus has scraped the counts',
      async () => (await query('sum(kube_event_rules_deliveries_total{outcome="delivered"})')) === 3,
      30_000,
    );
    assert.equal(await query('kube_event_rules_rule_matches_total{rule="crashloop-alerts"}'), 1);
    assert.equal(await query('kube_event_rules_rule_matches_total{rule="hpa-chart-events"}'), 2);
    assert.equal(await query('sum(kube_event_rules_events_received_total{outcome="matched"})'), 3);
  });
});
