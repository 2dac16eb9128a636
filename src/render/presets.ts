/**
 * Destination presets: the request shape of well-known receivers, built from the normalized Event so a
 * rule only names the preset (`preset: slack`) and, where it wants, overrides fields. Each body follows
 * the contract in destinations.md (test/render/presets.test.ts checks every one).
 * Bodies and header values are JSONata over the normalized Event with the usual bindings.
 */
export interface Preset {
  description: string;
  body: string;
  /** Extra headers (JSONata values), e.g. the ce-* headers of a binary-mode CloudEvent. */
  headers?: Record<string, string>;
}

/** A short human title used by several presets. */
const TITLE = `reason & " " & involvedObject.kind & " " & (involvedObject.namespace ? involvedObject.namespace & "/" : "") & involvedObject.name`;
const SEVERITY = `(type = "Warning" ? "warning" : "info")`;

export const PRESETS: Record<string, Preset> = {
  'wavefront-event': {
    description: 'Wavefront / Operations for Applications event (POST /api/v2/event): name, annotations, startTime/endTime in ms',
    body: `(
      $t := $toMillis(lastTimestamp);
      {
        "name": ${TITLE},
        "annotations": { "severity": type = "Warning" ? "warn" : "info", "type": reason, "details": message },
        "startTime": $t,
        "endTime": $t + 1,
        "tags": ["k8s", "reason:" & reason, "kind:" & involvedObject.kind] ~> $append(involvedObject.namespace ? ["namespace:" & involvedObject.namespace] : [])
      }
    )`,
  },
  'grafana-annotation': {
    description: 'Grafana annotation (POST /api/annotations): text, time/timeEnd in ms, tags; set dashboardUID/panelId with fields',
    body: `{
      "time": $toMillis(firstTimestamp),
      "timeEnd": $toMillis(lastTimestamp),
      "text": ${TITLE} & ": " & message,
      "tags": ["k8s", reason, involvedObject.kind] ~> $append(involvedObject.namespace ? [involvedObject.namespace] : [])
    }`,
  },
  'graphite-event': {
    description: 'Graphite events (POST /events/ of graphite-web; Grafana Graphite annotations): what, tags, when in s, data',
    body: `{
      "what": ${TITLE},
      "tags": ["k8s", reason, involvedObject.kind] ~> $append(involvedObject.namespace ? [involvedObject.namespace] : []),
      "when": $floor($toMillis(lastTimestamp) / 1000),
      "data": message
    }`,
  },
  slack: {
    description: 'Slack incoming webhook: text (the fallback) and Block Kit blocks',
    body: `(
      $title := ${TITLE} & (count > 1 ? " (×" & count & ")" : "");
      {
        "text": $title & ": " & message,
        "blocks": [
          { "type": "section", "text": { "type": "mrkdwn", "text": (type = "Warning" ? ":warning: " : "") & "*" & $title & "*" } },
          { "type": "section", "text": { "type": "plain_text", "text": $substring(message, 0, 2900) } },
          { "type": "context", "elements": [ { "type": "mrkdwn", "text": "source: " & (source.component ? source.component : "?") & " · last seen " & lastTimestamp } ] }
        ]
      }
    )`,
  },
  teams: {
    description: 'Microsoft Teams Workflows webhook: an Adaptive Card (version 1.4) wrapped in a message',
    body: `{
      "type": "message",
      "attachments": [{
        "contentType": "application/vnd.microsoft.card.adaptive",
        "contentUrl": null,
        "content": {
          "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
          "type": "AdaptiveCard",
          "version": "1.4",
          "body": [
            { "type": "TextBlock", "text": ${TITLE}, "weight": "Bolder", "wrap": true },
            { "type": "TextBlock", "text": message, "wrap": true },
            { "type": "FactSet", "facts": [
              { "title": "Type", "value": type },
              { "title": "Count", "value": $string(count) },
              { "title": "Last seen", "value": lastTimestamp }
            ] }
          ]
        }
      }]
    }`,
  },
  pagerduty: {
    description: 'PagerDuty Events API v2 trigger (POST /v2/enqueue); set routing_key with fields; dedup_key is the occurrence',
    body: `{
      "routing_key": "",
      "event_action": "trigger",
      "dedup_key": $occurrence,
      "payload": {
        "summary": $substring(${TITLE} & ": " & message, 0, 1024),
        "source": source.host ? source.host : (source.component ? source.component : "kubernetes"),
        "severity": type = "Warning" ? "warning" : "info",
        "timestamp": lastTimestamp,
        "component": involvedObject.kind & "/" & involvedObject.name,
        "group": involvedObject.namespace,
        "class": reason,
        "custom_details": { "message": message, "count": count, "rule": $rule.name }
      }
    }`,
  },
  alertmanager: {
    description: 'Prometheus Alertmanager API v2 (POST /api/v2/alerts): an array with one alert; ends 5 minutes after the occurrence',
    body: `[{
      "labels": {
        "alertname": "Kubernetes" & reason,
        "severity": ${SEVERITY},
        "reason": reason,
        "kind": involvedObject.kind,
        "namespace": involvedObject.namespace ? involvedObject.namespace : "",
        "name": involvedObject.name,
        "rule": $rule.name
      },
      "annotations": { "summary": ${TITLE}, "description": message },
      "startsAt": $fromMillis($toMillis(lastTimestamp)),
      "endsAt": $fromMillis($toMillis(lastTimestamp) + 300000),
      "generatorURL": "https://kube-event-rules/rules/" & $rule.name
    }]`,
  },
  'datadog-event': {
    description: 'Datadog events v1 (POST /api/v1/events): title, text, date_happened in s, alert_type, tags, aggregation_key',
    body: `{
      "title": $substring(${TITLE}, 0, 100),
      "text": $substring(message, 0, 4000),
      "date_happened": $floor($toMillis(lastTimestamp) / 1000),
      "alert_type": type = "Warning" ? "warning" : "info",
      "source_type_name": "kubernetes",
      "aggregation_key": $substring($occurrence, 0, 100),
      "tags": ["kube_reason:" & reason, "kube_kind:" & involvedObject.kind] ~> $append(involvedObject.namespace ? ["kube_namespace:" & involvedObject.namespace] : [])
    }`,
  },
  loki: {
    description: 'Grafana Loki push (POST /loki/api/v1/push): low-cardinality stream labels, ns timestamps as strings',
    body: `{
      "streams": [{
        "stream": { "job": "kube-event-rules", "namespace": involvedObject.namespace ? involvedObject.namespace : "", "reason": reason, "kind": involvedObject.kind, "type": type },
        "values": [[ $string($toMillis(lastTimestamp)) & "000000", ${TITLE} & ": " & message ]]
      }]
    }`,
  },
  cloudevent: {
    description: 'Generic CloudEvents sink in binary mode: ce-* headers, the normalized Event as the body',
    headers: {
      'ce-specversion': '"1.0"',
      'ce-id': '$occurrence & "/" & $rule.name',
      'ce-source': '"kube-event-rules/" & $rule.name',
      'ce-type': '"dev.kube-event-rules.event." & $lowercase(type ? type : "normal")',
      'ce-subject': 'involvedObject.kind & "/" & (involvedObject.namespace ? involvedObject.namespace & "/" : "") & involvedObject.name',
      'ce-time': 'lastTimestamp',
    },
    body: '$',
  },
  webhook: {
    description: 'Generic JSON webhook: the rule, the occurrence, the change and the normalized Event',
    body: `{ "rule": $rule.name, "occurrence": $occurrence, "change": $change, "event": $ }`,
  },
};

export const PRESET_NAMES = Object.keys(PRESETS);
