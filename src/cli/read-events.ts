/**
 * Events for `kube-event-rules test`: CloudEvent files as `{headers, body}` (bodyEncoding "raw" sends
 * the body verbatim), raw Event JSON, or `kubectl get events -o json` output (a List) — from files or stdin.
 * Raw Events become the CloudEvent ApiServerSource would send for them (Resource mode, add).
 */
import { readFile } from 'node:fs/promises';
import type { IncomingHttpHeaders } from 'node:http';

export interface EventRequest {
  /** Where it came from, for the report: "file.json", "file.json#3", "stdin#1". */
  label: string;
  headers: IncomingHttpHeaders;
  body: string;
}

type Json = Record<string, unknown>;
/** What the CloudEvent's attributes are made of; String() below keeps a mistyped value readable. */
type EventFields = {
  apiVersion?: string;
  metadata?: { namespace?: string; name?: string; uid?: string; resourceVersion?: string };
};

function asCloudEventRequest(event: Json, label: string): EventRequest {
  const fields = event as EventFields;
  const metadata = fields.metadata ?? {};
  const apiVersion = String(fields.apiVersion ?? 'v1');
  const namespace = String(metadata.namespace ?? '');
  const name = String(metadata.name ?? '');
  return {
    label,
    headers: {
      'ce-specversion': '1.0',
      'ce-id': `test-${String(metadata.uid ?? label)}-${String(metadata.resourceVersion ?? '')}`,
      'ce-source': 'kube-event-rules/test',
      'ce-type': 'dev.knative.apiserver.resource.add',
      'ce-subject': `/apis/${apiVersion}/namespaces/${namespace}/events/${name}`,
      'ce-kind': 'Event',
      'ce-name': name,
      'ce-namespace': namespace,
      'ce-apiversion': apiVersion,
      'content-type': 'application/json',
    },
    body: JSON.stringify(event),
  };
}

/** toRequests turns one parsed input into the requests it stands for. */
export function toRequests(input: unknown, label: string): EventRequest[] {
  if (Array.isArray(input)) return input.flatMap((item, i) => toRequests(item, `${label}#${i + 1}`));
  if (typeof input !== 'object' || input === null) throw new Error(`${label}: not an event (expected a JSON object)`);
  const json = input as Json;
  if (typeof json.headers === 'object' && json.headers !== null && 'body' in json) {
    const headers = json.headers as IncomingHttpHeaders;
    const body = json.bodyEncoding === 'raw' ? String(json.body) : JSON.stringify(json.body);
    return [{ label, headers, body }];
  }
  if (Array.isArray(json.items))
    return (json.items as unknown[]).flatMap((item, i) => toRequests(item, `${label}#${i + 1}`));
  if (json.kind === 'Event' || 'involvedObject' in json || 'regarding' in json)
    return [asCloudEventRequest(json, label)];
  throw new Error(`${label}: not a CloudEvent file ({headers, body}), an Event, or a List of Events`);
}

export async function readEventRequests(paths: string[], stdin: () => Promise<string>): Promise<EventRequest[]> {
  const requests: EventRequest[] = [];
  for (const path of paths.length > 0 ? paths : ['-']) {
    const text = path === '-' ? await stdin() : await readFile(path, 'utf8');
    const label = path === '-' ? 'stdin' : path;
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch (err) {
      throw new Error(`${label}: not JSON: ${(err as Error).message}`);
    }
    requests.push(...toRequests(parsed, label));
  }
  return requests;
}
