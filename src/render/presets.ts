/**
 * Destination presets: the request shape of well-known receivers, built from the normalized Event so a
 * rule only names the preset (`preset: slack`) and, where it wants, overrides fields. Each body follows
 * the receiver's documented API contract (test/render/presets.test.ts checks every one).
 * Bodies and header values are JSONata over the normalized Event with the usual bindings.
 */
export interface Preset {
  description: string;
  body: string;
  /** Extra headers (JSONata values), e.g. the ce-* headers of a binary-mode CloudEvent. */
  headers?: Record<string, string>;
  /**
   * The body fields a rule may set with `fields` (dotted paths): the receiver's API. `x.*` opens everything
   * under x; `*` is any field. Anything else is a typo the receiver would ignore, so it is refused at load.
   */
  fields: string[];
  /** Fields the receiver cannot do without, with what to put there: checked at load. */
  required?: Record<string, string>;
  /**
   * The body for a region rule (`$region` bound: start and end, README: Regions), for receivers that show a
   * span of time; a region rule with a preset without one gets `body`.
   */
  regionBody?: string;
  /**
   * The body for a digest rule (`$digest`: key, count, first, last, start, end; `$` is the group's latest
   * occurrence). A preset without one cannot serve a digest rule (refused at load).
   */
  digestBody?: string;
}

/** A short human title used by several presets. */
const TITLE = `reason & " " & involvedObject.kind & " " & (involvedObject.namespace ? involvedObject.namespace & "/" : "") & involvedObject.name`;
const SEVERITY = `(type = "Warning" ? "warning" : "info")`;

/**
 * Regions: what the two region bodies share, in a block that binds `$s` (the start's Event), `$e` (the end's,
 * null after a timeout), `$subject` (the involved object, e.g. "Deployment shop/web"), `$what` ("ScalingReplicaSet
 * → ScalingReplicaSet", or "NodeNotReady → no end within the timeout") and `$details` (the end's message, else the
 * start's).
 */
const REGION_BINDINGS = `
      $s := $region.start.event;
      $e := $region.end.event;
      $subject := $s.involvedObject.kind & " " & ($s.involvedObject.namespace ? $s.involvedObject.namespace & "/" : "") & $s.involvedObject.name;
      $what := $s.reason & " → " & ($region.endedBy = "end" ? $e.reason : "no end within the timeout");
      $details := $region.endedBy = "end" ? $e.message : $s.message;`;
/** Written out where used: a list held in a variable leaves the template fast path. */
const REGION_TAGS = `["k8s", "region", "ended-by:" & $region.endedBy, $s.reason, $s.involvedObject.kind] ~> $append($s.involvedObject.namespace ? [$s.involvedObject.namespace] : [])`;

/** A Teams Workflows message: one Adaptive Card (version 1.4) whose body is `elements` (a JSONata array). */
const teamsMessage = (elements: string) => `{
  "type": "message",
  "attachments": [{
    "contentType": "application/vnd.microsoft.card.adaptive",
    "contentUrl": null,
    "content": {
      "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
      "type": "AdaptiveCard",
      "version": "1.4",
      "body": ${elements}
    }
  }]
}`;

/** A digest's title: how many occurrences of what, for which key. */
const DIGEST_TITLE = `$string($digest.count) & " × " & reason & ($digest.key != null ? " — " & ($type($digest.key) = "string" ? $digest.key : $string($digest.key)) : "")`;
/** One line per kept occurrence, "…and N more" between the first and the last few. */
const DIGEST_LINES = `(
  $line := function($o) { $o.lastTimestamp & "  " & $o.involvedObject.kind & " " & ($o.involvedObject.namespace ? $o.involvedObject.namespace & "/" : "") & $o.involvedObject.name & ": " & $substring($o.message, 0, 300) };
  $more := $digest.count - $count($digest.first) - $count($digest.last);
  $append($append([$digest.first.$line($)], $more > 0 ? ["… and " & $more & " more …"] : []), [$digest.last.$line($)])
)`;

export const PRESETS: Record<string, Preset> = {
  'wavefront-event': {
    fields: ['name', 'annotations.*', 'startTime', 'endTime', 'tags', 'hosts', 'isEphemeral'],
    description:
      'Wavefront / Operations for Applications event (POST /api/v2/event): name, annotations, startTime/endTime in ms (a region rule: the start and end times)',
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
    // One event spanning the region; Wavefront reads endTime = startTime + 1 as an instant.
    regionBody: `(${REGION_BINDINGS}
      {
        "name": $subject & ": " & $what,
        "annotations": { "severity": $region.endedBy = "timeout" or $s.type = "Warning" ? "warn" : "info", "type": $s.reason, "details": $details, "endedBy": $region.endedBy },
        "startTime": $region.start.time,
        "endTime": $region.end.time > $region.start.time ? $region.end.time : $region.start.time + 1,
        "tags": ${REGION_TAGS}
      }
    )`,
  },
  'grafana-annotation': {
    fields: ['time', 'timeEnd', 'text', 'tags', 'dashboardUID', 'dashboardId', 'panelId'],
    description:
      'Grafana annotation (POST /api/annotations): text, time/timeEnd in ms, tags (a region rule: a region from start to end); set dashboardUID/panelId with fields',
    body: `{
      "time": $toMillis(firstTimestamp),
      "timeEnd": $toMillis(lastTimestamp),
      "text": ${TITLE} & ": " & message,
      "tags": ["k8s", reason, involvedObject.kind] ~> $append(involvedObject.namespace ? [involvedObject.namespace] : [])
    }`,
    // A region annotation: time and timeEnd are the start's and the end's (or start + timeout).
    regionBody: `(${REGION_BINDINGS}
      {
        "time": $region.start.time,
        "timeEnd": $region.end.time,
        "text": $subject & ": " & $what & ($details ? ": " & $details : ""),
        "tags": ${REGION_TAGS}
      }
    )`,
    digestBody: `{
      "time": $toMillis($digest.start),
      "timeEnd": $toMillis($digest.end),
      "text": ${DIGEST_TITLE} & "\n" & $join(${DIGEST_LINES}, "\n"),
      "tags": ["k8s", "digest", reason, involvedObject.kind] ~> $append(involvedObject.namespace ? [involvedObject.namespace] : [])
    }`,
  },
  'graphite-event': {
    fields: ['what', 'tags', 'when', 'data'],
    description:
      'Graphite events (POST /events/ of graphite-web; Grafana Graphite annotations): what, tags, when in s, data',
    body: `{
      "what": ${TITLE},
      "tags": ["k8s", reason, involvedObject.kind] ~> $append(involvedObject.namespace ? [involvedObject.namespace] : []),
      "when": $floor($toMillis(lastTimestamp) / 1000),
      "data": message
    }`,
  },
  slack: {
    fields: [
      'text',
      'blocks',
      'attachments',
      'username',
      'icon_emoji',
      'icon_url',
      'channel',
      'thread_ts',
      'mrkdwn',
      'unfurl_links',
      'unfurl_media',
    ],
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
    digestBody: `(
      $title := ${DIGEST_TITLE};
      $lines := ${DIGEST_LINES};
      {
        "text": $title & " (" & $digest.start & " – " & $digest.end & ")",
        "blocks": [
          { "type": "section", "text": { "type": "mrkdwn", "text": (type = "Warning" ? ":warning: " : "") & "*" & $title & "*" } },
          { "type": "section", "text": { "type": "plain_text", "text": $substring($join($lines, "\n"), 0, 2900) } },
          { "type": "context", "elements": [ { "type": "mrkdwn", "text": "first " & $digest.start & " · last " & $digest.end & " · rule " & $rule.name } ] }
        ]
      }
    )`,
  },
  teams: {
    fields: ['type', 'attachments', 'attachments.*', 'summary'],
    description: 'Microsoft Teams Workflows webhook: an Adaptive Card (version 1.4) wrapped in a message',
    body: teamsMessage(`[
      { "type": "TextBlock", "text": ${TITLE}, "weight": "Bolder", "wrap": true },
      { "type": "TextBlock", "text": message, "wrap": true },
      { "type": "FactSet", "facts": [
        { "title": "Type", "value": type },
        { "title": "Count", "value": $string(count) },
        { "title": "Last seen", "value": lastTimestamp }
      ] }
    ]`),
    digestBody: `(
      $lines := ${DIGEST_LINES};
      ${teamsMessage(`$append(
        [{ "type": "TextBlock", "text": ${DIGEST_TITLE}, "weight": "Bolder", "wrap": true }],
        $append($lines.{ "type": "TextBlock", "text": $, "wrap": true, "spacing": "None" }, [
          { "type": "FactSet", "facts": [
            { "title": "Type", "value": type },
            { "title": "Count", "value": $string($digest.count) },
            { "title": "First seen", "value": $digest.start },
            { "title": "Last seen", "value": $digest.end }
          ] }
        ])
      )`)}
    )`,
  },
  pagerduty: {
    fields: [
      'routing_key',
      'event_action',
      'dedup_key',
      'payload.summary',
      'payload.source',
      'payload.severity',
      'payload.timestamp',
      'payload.component',
      'payload.group',
      'payload.class',
      'payload.custom_details',
      'payload.custom_details.*',
      'client',
      'client_url',
      'links',
      'images',
    ],
    required: {
      routing_key: "the integration's routing key, e.g. { secretKeyRef: { name: pagerduty, key: routing-key } }",
    },
    description:
      'PagerDuty Events API v2 trigger (POST /v2/enqueue); routing_key from fields (required); dedup_key is the involved object and reason, so repeats update one incident',
    body: `{
      "event_action": "trigger",
      "dedup_key": $substring($join([involvedObject.kind, involvedObject.namespace, involvedObject.name, reason], "/"), 0, 255),
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
    fields: ['labels.*', 'annotations.*', 'startsAt', 'endsAt', 'generatorURL'],
    description:
      'Prometheus Alertmanager API v2 (POST /api/v2/alerts): an array with one alert; ends 5 minutes after the occurrence',
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
    fields: [
      'title',
      'text',
      'date_happened',
      'alert_type',
      'source_type_name',
      'aggregation_key',
      'tags',
      'priority',
      'host',
      'related_event_id',
      'device_name',
    ],
    description:
      'Datadog events v1 (POST /api/v1/events): title, text, date_happened in s, alert_type, tags, aggregation_key',
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
    fields: ['streams', 'streams.*'],
    description: 'Grafana Loki push (POST /loki/api/v1/push): low-cardinality stream labels, ns timestamps as strings',
    body: `{
      "streams": [{
        "stream": { "job": "kube-event-rules", "namespace": involvedObject.namespace ? involvedObject.namespace : "", "reason": reason, "kind": involvedObject.kind, "type": type },
        "values": [[ $string($toMillis(lastTimestamp)) & "000000", ${TITLE} & ": " & message ]]
      }]
    }`,
  },
  cloudevent: {
    fields: ['*'],
    description: 'Generic CloudEvents sink in binary mode: ce-* headers, the normalized Event as the body',
    headers: {
      'ce-specversion': '"1.0"',
      'ce-id': '$occurrence & "/" & $rule.name',
      'ce-source': '"kube-event-rules/" & $rule.name',
      'ce-type': '"dev.kube-event-rules.event." & $lowercase(type ? type : "normal")',
      'ce-subject':
        'involvedObject.kind & "/" & (involvedObject.namespace ? involvedObject.namespace & "/" : "") & involvedObject.name',
      'ce-time': 'lastTimestamp',
    },
    body: '$',
  },
  webhook: {
    fields: ['*'],
    description: 'Generic JSON webhook: the rule, the occurrence, the change and the normalized Event',
    body: `{ "rule": $rule.name, "occurrence": $occurrence, "change": $change, "event": $ }`,
  },
};

export const PRESET_NAMES = Object.keys(PRESETS);

/** A field path of a list body (Alertmanager) may name an element first: "0.labels.team". */
const withoutIndex = (path: string) => path.replace(/^\d+\./, '');

function allowed(preset: Preset, path: string): boolean {
  const field = withoutIndex(path);
  return preset.fields.some((f) => f === '*' || f === field || (f.endsWith('.*') && field.startsWith(f.slice(0, -1))));
}

/** The closest known field within two edits ("payload.sevrity" → "payload.severity"), if any. */
function closest(preset: Preset, path: string): string | undefined {
  let best: { field: string; distance: number } | undefined;
  for (const field of preset.fields.filter((f) => !f.includes('*'))) {
    const distance = editDistance(field, withoutIndex(path));
    if (distance <= 2 && (!best || distance < best.distance)) best = { field, distance };
  }
  return best?.field;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++)
      current[j] = Math.min(previous[j] + 1, current[j - 1] + 1, previous[j - 1] + (a[i - 1] === b[j - 1] ? 0 : 1));
    previous = current;
  }
  return previous[b.length];
}

/**
 * presetFieldProblems checks an action's `fields` against its preset at load: every name must be one of
 * the preset's fields, and every required field must be set. Each problem starts with the field it is about.
 */
export function presetFieldProblems(name: string, fieldNames: string[]): string[] {
  const preset = PRESETS[name];
  if (!preset) return [];
  const problems: string[] = [];
  for (const path of fieldNames) {
    if (allowed(preset, path)) continue;
    const guess = closest(preset, path);
    problems.push(
      `fields.${path}: "${path}" is not a field of preset ${name}${guess ? ` — did you mean "${guess}"?` : ''} (its fields: ${preset.fields.join(', ')})`,
    );
  }
  for (const [field, what] of Object.entries(preset.required ?? {})) {
    if (!fieldNames.includes(field)) problems.push(`fields: preset ${name} needs fields.${field}: ${what}`);
  }
  return problems;
}
