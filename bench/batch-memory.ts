/**
 * Memory of big batches: the built service (dist/main.js) with the image's Node flags and the Deployment's
 * NODE_OPTIONS, one rule with 50 actions (50 destinations on a local sink), then
 *   - a 1,000-event batch (50,000 actions) twice,
 *   - batches at MAX_ACTIONS_PER_REQUEST (100 events × 50 actions), 5 one after another and 2 at once,
 * printing each answer and the service's peak RSS (VmHWM) against the Deployment's 384 Mi limit.
 * Set BATCH_CAPS=off to run without the action caps (as before them). Run `npm run build` first.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import { closedPort } from '../test/support/ports.js';
import { loadFixture } from '../test/support/fixtures.js';

/** What the bench reads of deploy/base/deployment.yaml. */
type Manifest = {
  kind?: string;
  spec?: { template?: { spec?: { containers?: { env?: { name: string; value?: string }[] }[] } } };
};

const ACTIONS = 50;
const sink = createServer((req, res) => {
  req.resume();
  req.on('end', () => res.writeHead(200).end('{}'));
});
await new Promise<void>((resolve) => sink.listen(0, '127.0.0.1', resolve));
const sinkUrl = `http://127.0.0.1:${(sink.address() as AddressInfo).port}`;

const rulesDir = await mkdtemp(join(tmpdir(), 'batch-memory-'));
const destinations = Array.from({ length: ACTIONS }, (_, i) => `  d${i}: { url: "${sinkUrl}/d${i}" }`).join('\n');
const actions = Array.from(
  { length: ACTIONS },
  (_, i) =>
    `      - { destination: d${i}, body: '{ "uid": metadata.uid, "reason": reason, "message": message, "action": ${i} }' }`,
).join('\n');
await writeFile(
  join(rulesDir, 'fan-out.yaml'),
  `destinations:\n${destinations}\nrules:\n  - name: fan-out\n    conditions: { all: [ { fact: event, path: $.reason, operator: equal, value: BackOff } ] }\n    actions:\n${actions}\n`,
);

const dockerfile = await readFile(new URL('../Dockerfile', import.meta.url), 'utf8');
const entrypoint = JSON.parse(/^ENTRYPOINT\s+(\[.*\])\s*$/m.exec(dockerfile)![1]) as string[];
const nodeArgs = entrypoint.slice(1, entrypoint.indexOf('dist/main.js'));
const manifest = await readFile(new URL('../deploy/base/deployment.yaml', import.meta.url), 'utf8');
const deployment = parseAllDocuments(manifest)
  .map((d) => d.toJS() as Manifest | null)
  .find((d) => d?.kind === 'Deployment');
const env = (deployment?.spec?.template?.spec?.containers?.[0]?.env ?? []) as { name: string; value?: string }[];
const nodeOptions = env.find((e) => e.name === 'NODE_OPTIONS')?.value ?? '';

const port = await closedPort();
const caps =
  process.env.BATCH_CAPS === 'off' ? { MAX_ACTIONS_PER_REQUEST: '100000000', MAX_ACTIONS_IN_FLIGHT: '100000000' } : {};
const service = spawn(process.execPath, [...nodeArgs, 'dist/main.js', 'serve'], {
  env: {
    ...process.env,
    PORT: String(port),
    HOST: '127.0.0.1',
    LOG_LEVEL: 'fatal',
    CLUSTER: 'off',
    RULES_DIR: rulesDir,
    NODE_OPTIONS: nodeOptions,
    MAX_BODY_BYTES: String(8 * 1024 * 1024),
    ...caps,
  },
  stdio: ['ignore', 'ignore', 'inherit'],
});
let exit = '';
service.on('exit', (code, signal) => (exit = `exited (${signal ?? code})`));
const url = `http://127.0.0.1:${port}`;
for (
  let i = 0;
  !(await fetch(`${url}/readyz`).then(
    (r) => r.ok,
    () => false,
  ));
  i++
) {
  if (exit || i > 600) throw new Error(`service not ready: ${exit}`);
  await new Promise((r) => setTimeout(r, 50));
}

const peakMb = async () =>
  Number(/VmHWM:\s+(\d+) kB/.exec(await readFile(`/proc/${service.pid}/status`, 'utf8'))![1]) / 1024;
const template = loadFixture('pod-backoff-crashloop-resource-update');
const attributes = Object.fromEntries(
  Object.entries(template.headers)
    .filter(([k]) => k.startsWith('ce-'))
    .map(([k, v]) => [k.slice(3), v]),
);
let uid = 0;
const batch = (events: number) =>
  JSON.stringify(
    Array.from({ length: events }, () => {
      const n = uid++;
      const data = {
        ...(template.body as Record<string, unknown>),
        metadata: { ...(template.body as { metadata: object }).metadata, uid: `batch-${n}` },
      };
      return {
        ...attributes,
        id: `batch-${n}`,
        type: 'dev.knative.apiserver.resource.add',
        datacontenttype: 'application/json',
        data,
      };
    }),
  );
const post = async (events: number) => {
  const started = performance.now();
  const status = await fetch(`${url}/`, {
    method: 'POST',
    headers: { 'content-type': 'application/cloudevents-batch+json' },
    body: batch(events),
  }).then(
    (r) => r.status,
    (err: Error) => `no answer (${err.message})`,
  );
  return `${status} in ${((performance.now() - started) / 1000).toFixed(1)} s`;
};

console.log(
  `caps: ${process.env.BATCH_CAPS === 'off' ? 'off' : 'defaults'}; Node ${nodeArgs.join(' ')} NODE_OPTIONS="${nodeOptions}"; start-up peak RSS ${(await peakMb()).toFixed(0)} MB`,
);
for (const round of [1, 2]) {
  console.log(
    `1,000 events × ${ACTIONS} actions, batch ${round}: ${await post(1000)}; peak RSS ${exit || `${(await peakMb()).toFixed(0)} MB`}`,
  );
  if (exit) break;
}
if (!exit) {
  for (let i = 1; i <= 5; i++)
    console.log(
      `100 events × ${ACTIONS} actions, batch ${i}: ${await post(100)}; peak RSS ${(await peakMb()).toFixed(0)} MB`,
    );
  const both = await Promise.all([post(100), post(100)]);
  console.log(
    `2 × (100 × ${ACTIONS}) at once: ${both.join(', ')}; peak RSS ${exit || `${(await peakMb()).toFixed(0)} MB`} (limit 384 Mi = 403 MB)`,
  );
}
service.kill('SIGKILL');
sink.close();
