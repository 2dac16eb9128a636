/**
 * kube-event-rules test --rules <files|dirs> [--secrets <files>] [--objects <manifests>] [--cluster]
 *                       [--json] [--expect <golden>]
 *                       [--update-expect] <events…|->
 * Runs events through the rules exactly as the service would, sends nothing, and prints per event the
 * rules that matched, the conditions that decided, and each rendered request (secrets redacted).
 * With --expect the JSON report is compared with a golden file (exit 1 and a diff when it differs).
 */
import { parseOptions } from './parse-options.js';
import { readFile, writeFile } from 'node:fs/promises';
import { loadConfig } from '../config.js';
import { NO_CLUSTER, type Cluster } from '../enrich/cluster.js';
import { manifestCluster, parseManifests } from '../enrich/manifest-cluster.js';
import { connectKube } from '../kube/connect.js';
import { InvalidEventError } from '../errors.js';
import { createLogger } from '../log.js';
import { createMetrics } from '../metrics.js';
import type { EventReport, Pipeline } from '../pipeline.js';
import { parseCloudEvents } from '../receive/parse-cloudevents.js';
import { lineDiff } from './line-diff.js';
import { localSecrets } from './local-secrets.js';
import { readEventRequests, type EventRequest } from './read-events.js';
import { loadRuleFiles } from './rule-files.js';
import { newStore } from './validate.js';
import { knownSecrets } from '../redact.js';
import { createDryRunPipeline } from '../dry-run.js';

export interface TestOptions {
  rules: string[];
  secrets: string[];
  /** Manifests of objects the rules may look up (object, owner, namespace facts). */
  objects?: string[];
  /** Look objects up (read-only) through the kubeconfig. */
  cluster?: boolean;
  events: string[];
  json: boolean;
  expect?: string;
  updateExpect: boolean;
}

export type TestResult =
  ({ source: string } & EventReport) | { source: string; status: number; error: string; detail: string };

export function parseTestArgs(args: string[]): TestOptions {
  const { values, positionals } = parseOptions({
    args,
    allowPositionals: true,
    options: {
      rules: { type: 'string', multiple: true, default: [] },
      secrets: { type: 'string', multiple: true, default: [] },
      objects: { type: 'string', multiple: true, default: [] },
      cluster: { type: 'boolean', default: false },
      expect: { type: 'string' },
      'update-expect': { type: 'boolean', default: false },
      json: { type: 'boolean', default: false },
    },
  });
  if (values.rules.length === 0) throw new Error('--rules <file|dir> is required');
  return {
    rules: values.rules,
    secrets: values.secrets,
    objects: values.objects,
    cluster: values.cluster,
    expect: values.expect,
    updateExpect: values['update-expect'],
    json: values.json,
    events: positionals,
  };
}

/** runTests evaluates the events and returns one result per event (no printing). */
export async function runTests(
  options: TestOptions,
  stdin: () => Promise<string>,
): Promise<{ problems: string[]; results: TestResult[] }> {
  const store = newStore();
  await loadRuleFiles(store, options.rules);
  const problems = store.status().flatMap((s) => s.errors);
  if (problems.length > 0) return { problems, results: [] };
  const cluster = await testCluster(options);
  const pipeline = createDryRunPipeline(() => store.current, cluster);
  const results: TestResult[] = [];
  for (const request of await readEventRequests(options.events, stdin))
    results.push(...(await evaluateRequest(request, pipeline)));
  return { problems, results };
}

/**
 * evaluateRequest gives one result per event of the request (a batch is every one of its entries,
 * "file.json[2]"), through the dry-run pipeline. The playground uses it too, so its golden files are `test`'s.
 */
/** The service's default delivery deadline (a dry run sends nothing; its templates get the same time). */
let deadlineMs: number | undefined;

export async function evaluateRequest(request: EventRequest, pipeline: Pipeline): Promise<TestResult[]> {
  try {
    const events = parseCloudEvents(request.headers, request.body);
    const label = (i: number) => (events.length > 1 ? `${request.label}[${i}]` : request.label);
    // As the service does: the whole batch is checked before any event is evaluated (400 names the entry).
    deadlineMs ??= loadConfig({}).deliveryDeadlineMs;
    const reports = await pipeline.process(events, Date.now() + deadlineMs);
    return reports.map((report, i) => ({ source: label(i), ...report }));
  } catch (err) {
    if (err instanceof InvalidEventError)
      return [{ source: request.label, status: err.status, error: err.error, detail: err.detail }];
    throw err;
  }
}

/**
 * testCluster: what the rules may read — objects from --objects manifests first, then (--cluster) the
 * API server of the kubeconfig, read-only; Secrets from --secrets, else from that cluster.
 */
async function testCluster(options: TestOptions): Promise<Cluster> {
  const secrets = options.secrets.length > 0 ? await localSecrets(options.secrets) : undefined;
  let live: Cluster | undefined;
  if (options.cluster) {
    const connection = await connectKube({ ...process.env, CLUSTER: undefined });
    if (!connection) throw new Error('--cluster: no kubeconfig found (set KUBECONFIG or create ~/.kube/config)');
    const { createKubeCluster } = await import('../kube/cluster-runtime.js');
    live = createKubeCluster(connection, loadConfig({}).kube, createMetrics(), createLogger('silent'));
  }
  const paths = options.objects ?? [];
  if (paths.length === 0)
    return live
      ? { ...live, secrets: secrets ?? live.secrets }
      : { ...NO_CLUSTER, secrets: secrets ?? NO_CLUSTER.secrets };
  const texts = await Promise.all(
    paths.map(async (path) => ({
      label: path,
      text: await readFile(path, 'utf8').catch(() =>
        Promise.reject(new Error(`--objects ${path}: no such file or not readable`)),
      ),
    })),
  );
  const { objects, problems } = parseManifests(texts);
  if (problems.length > 0) throw new Error(`--objects: ${problems.join('; ')}`);
  return manifestCluster(objects, { secrets, fallback: live });
}

export async function testCommand(
  args: string[],
  printLine: (line: string) => void,
  stdin: () => Promise<string>,
): Promise<number> {
  // Reports are redacted where they are built; this catches what an error message carries.
  const print = (line: string) => printLine(knownSecrets.redact(line));
  let options: TestOptions;
  try {
    options = parseTestArgs(args);
  } catch (err) {
    print(
      `kube-event-rules test: ${(err as Error).message}\nusage: kube-event-rules test --rules <file|dir> [--secrets <file>] [--objects <manifests>] [--cluster] [--json] [--expect <golden.json>] [--update-expect] <event.json…|->`,
    );
    return 2;
  }
  const { problems, results } = await runTests(options, stdin);
  if (problems.length > 0) {
    for (const problem of problems) print(`✗ ${problem}`);
    return 1;
  }
  const json = `${JSON.stringify(knownSecrets.redactDeep(results), null, 2)}\n`;
  if (options.expect && options.updateExpect) {
    await writeFile(options.expect, json);
    print(`wrote ${options.expect} (${results.length} events)`);
    return 0;
  }
  if (options.json)
    printLine(json.trimEnd()); // redacted value by value: JSON stays JSON
  else for (const result of results) print(describe(result));
  if (options.expect) {
    const expected = await readFile(options.expect, 'utf8').catch(() => undefined);
    if (expected === undefined) {
      print(`✗ ${options.expect} does not exist (create it with --update-expect)`);
      return 1;
    }
    if (expected.trimEnd() !== json.trimEnd()) {
      print(
        `✗ the report differs from ${options.expect} (- expected, + actual):\n${lineDiff(expected.trimEnd(), json.trimEnd())}`,
      );
      return 1;
    }
    print(`✓ matches ${options.expect} (${results.length} events)`);
  }
  return 0;
}

const show = (value: unknown) => JSON.stringify(value);

/** describe renders one result for people. */
export function describe(result: TestResult): string {
  if ('status' in result)
    return `▶ ${result.source}\n  ✗ rejected with HTTP ${result.status}: ${result.error}: ${result.detail}\n`;
  const lines = [
    `▶ ${result.source}  ${result.type}${result.change ? `  change ${result.change}` : ''}${result.occurrence ? `  occurrence ${result.occurrence}` : ''}`,
  ];
  if (result.outcome === 'unresolved') lines.push(`  · not resolved: ${result.detail}`);
  if (result.outcome === 'retry')
    lines.push(`  · not decided now (the service answers 503/429 and the Broker redelivers): ${result.detail}`);
  for (const evaluation of result.evaluated ?? []) {
    lines.push(
      `  ${evaluation.matched ? '✓' : '✗'} rule ${evaluation.rule}${evaluation.shadow ? ' (shadow, never sends)' : ''}${evaluation.matched ? ' matched' : ' did not match'}`,
    );
    for (const c of evaluation.conditions) {
      if (c.result === undefined) continue; // not evaluated (short-circuited)
      const compared = c.operator === 'exists' || c.operator === 'absent' ? '' : ` ${show(c.value)}`; // presence operators take no value
      lines.push(
        `      ${c.result ? '✓' : '✗'} ${c.fact}${c.path ? ` ${c.path}` : ''} ${c.operator}${compared}  (was ${show(c.factValue)})`,
      );
    }
  }
  if ((result.evaluated ?? []).length === 0 && result.outcome !== 'unresolved' && result.outcome !== 'retry')
    lines.push('  · no rule applies to this event');
  for (const action of result.actions) {
    if (action.outcome === 'error' || action.outcome === 'failed') {
      lines.push(`    → ${action.destination}: ✗ ${action.error}`);
      continue;
    }
    if (action.outcome === 'region_started') {
      lines.push(
        `    ◧ ${action.destination} (rule ${action.rule}): a region starts — sent at its end or timeout (an end among these events shows it)`,
      );
      continue;
    }
    if (action.outcome === 'region_unmatched') {
      lines.push(`    ◧ ${action.destination} (rule ${action.rule}): a region's end, not sent: ${action.error}`);
      continue;
    }
    const request = action.request!;
    const { digest } = action;
    if (digest)
      lines.push(
        `    ⧉ digest ${show(digest.key)}: ${digest.group === 'open' ? 'joins the open group' : 'opens a new group'}, ${digest.count} with this event; when sent:`,
      );
    lines.push(
      `    → ${action.destination} (rule ${action.rule}): ${request.url ? `${request.method} ${request.url}` : 'log'}`,
    );
    for (const [name, value] of Object.entries(request.headers)) lines.push(`        ${name}: ${value}`);
    lines.push(
      ...JSON.stringify(request.body, null, 2)
        .split('\n')
        .map((l) => `        ${l}`),
    );
  }
  for (const shadow of result.shadow ?? []) {
    const live =
      shadow.live === 'none'
        ? 'no live rule of this name'
        : `live rule ${shadow.live === 'matched' ? 'matched' : 'did not match'}`;
    lines.push(
      `  ◐ shadow ${shadow.rule}: ${shadow.matched ? 'matched' : 'did not match'}, ${live}${shadow.differences.length === 0 ? ', no difference' : ''}`,
    );
    for (const difference of shadow.differences) lines.push(`      ≠ ${difference}`);
  }
  return `${lines.join('\n')}\n`;
}
