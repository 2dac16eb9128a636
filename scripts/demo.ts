/**
 * npm run demo — replays the example events (examples/events) against the service with the example
 * rules (rules/), its destinations pointed at a local capture server, and prints per event which rules
 * matched, what was sent and the outcome.
 *
 *   npm run demo                  start the service (the real CLI) for the demo, on a free port
 *   npm run demo -- --keep        leave it running afterwards (Ctrl-C to stop)
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fixtureNames, loadFixture, bodyOf } from '../test/support/fixtures.js';
import { startCaptureSink } from '../test/support/capture-sink.js';

const keep = process.argv.includes('--keep');
const sink = await startCaptureSink();
const env = {
  ...process.env,
  PORT: '0',
  HOST: '127.0.0.1',
  LOG_LEVEL: 'info',
  RULES_DIR: 'rules',
  WAVEFRONT_EVENTS_URL: `${sink.url}/wavefront/api/v2/event`,
  WAVEFRONT_TOKEN: 'demo-wavefront-token',
  GRAFANA_ANNOTATIONS_URL: `${sink.url}/grafana/api/annotations`,
  GRAFANA_TOKEN: 'demo-grafana-token',
  SLACK_WEBHOOK_URL: `${sink.url}/slack/services/T000/B000/XXXX`,
};
const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', 'serve'], {
  env,
  stdio: ['ignore', 'pipe', 'inherit'],
});
/** The fields of the service's JSON log lines that the demo prints. */
interface LogRecord {
  msg?: string;
  address?: { port: number };
  ceId?: string;
  rule?: string;
  destination?: string;
  status?: number;
  request?: { body: unknown };
  error?: string;
  detail?: string;
}
type Reference = { kind?: string; namespace?: string; name?: string };
const records: LogRecord[] = [];
let resolvePort: (port: number) => void;
const port = new Promise<number>((resolve) => (resolvePort = resolve));
let rulesLoaded = false;
createInterface({ input: child.stdout }).on('line', (line) => {
  try {
    const record = JSON.parse(line) as LogRecord;
    records.push(record);
    if (record.msg === 'kube-event-rules listening') resolvePort(record.address!.port);
    if (record.msg === 'rules loaded') rulesLoaded = true;
  } catch {
    console.log(line);
  }
});
const base = `http://127.0.0.1:${await port}`;
while (!rulesLoaded) await new Promise((r) => setTimeout(r, 20));
console.log(`service on ${base} with the rules in rules/; destinations point at a capture server on ${sink.url}\n`);

const short = (text: string, max = 160) => (text.length > max ? `${text.slice(0, max)}…` : text);
for (const name of fixtureNames()) {
  const fixture = loadFixture(name);
  const id = fixture.headers['ce-id'];
  const before = { sink: sink.requests.length, records: records.length };
  const event = fixture.body as { involvedObject?: Reference; regarding?: Reference; reason?: string } | null;
  const about = event?.involvedObject ?? event?.regarding;
  console.log(`▶ ${name}`);
  console.log(
    `  ${fixture.headers['ce-type'] ?? '(no ce-type)'}${about ? `  ${about.kind} ${about.namespace}/${about.name}  ${event?.reason}` : ''}`,
  );
  const response = await fetch(`${base}/`, { method: 'POST', headers: fixture.headers, body: bodyOf(fixture) });
  const text = await response.text();
  await new Promise((r) => setTimeout(r, 50)); // let the log lines arrive
  console.log(`  ← HTTP ${response.status}${text ? ` ${short(text)}` : ''}`);
  for (const record of records.slice(before.records)) {
    if (record.ceId !== id) continue;
    if (record.msg === 'delivered')
      console.log(
        `  ✓ rule ${record.rule} → ${record.destination}: delivered${record.status ? ` (HTTP ${record.status})` : ''}`,
      );
    else if (record.msg?.startsWith('already delivered'))
      console.log(`  ↺ rule ${record.rule} → ${record.destination}: ${record.msg}`);
    else if (record.request)
      console.log(
        `  ✎ rule ${record.rule} → ${record.destination} (log): ${short(JSON.stringify(record.request.body))}`,
      );
    else if (record.rule)
      console.log(`  ✗ rule ${record.rule} → ${record.destination}: ${record.msg}: ${record.error}`);
    else if (record.detail) console.log(`  · ${record.msg}: ${record.detail}`);
  }
  for (const request of sink.requests.slice(before.sink))
    console.log(`      sent ${request.method} ${request.path} ${short(request.body)}`);
  if (response.status === 204 && !records.slice(before.records).some((r) => r.ceId === id && r.rule))
    console.log('  · no rule matched');
  console.log();
}

const metrics = await (await fetch(`${base}/metrics`)).text();
console.log('metrics:');
for (const line of metrics.split('\n')) {
  if (/^kube_event_rules_(events_received|rule_matches|deliveries)_total\{/.test(line)) console.log(`  ${line}`);
}
if (keep) {
  console.log(`\nservice still running on ${base} (Ctrl-C to stop)`);
} else {
  child.kill('SIGTERM');
  await sink.close();
}
