/**
 * evaluateDraft: the playground's answer to one edit — the rule document compiled as the service loads
 * it (problems with their place in the file), and the event run through those rules by the dry-run
 * pipeline (the code of POST /dry-run): rules evaluated, conditions with the fact values that decided,
 * each rendered request with its secrets redacted. Also the golden file `kube-event-rules test --expect`
 * would compare with, for the same event saved under `eventLabel`.
 */
import { buildRuleIndex } from '../match/rule-index.js';
import { createDryRunPipeline } from '../dry-run.js';
import { toRequests } from '../cli/read-events.js';
import { evaluateRequest, type TestResult } from '../cli/test-rules.js';
import type { Cluster } from '../enrich/cluster.js';
import { manifestCluster, parseManifests } from '../enrich/manifest-cluster.js';
import { describeError } from '../errors.js';
import { knownSecrets } from '../redact.js';
import { checkRuleText, type LocatedProblem } from '../rules/locate-problems.js';
import type { TemplateOptions } from '../render/template.js';

export interface DraftInput {
  /** The rule document's text (YAML or JSON, one or more documents). */
  document: string;
  /** A CloudEvent file ({headers, body}), an Event, or `kubectl get events -o json` output. */
  event: string;
  /** The file name the event would be saved under (the golden file's `source`). */
  eventLabel?: string;
  /** Manifests of the objects the rules may look up (object, owner, namespace facts). */
  objects?: string;
}

export interface DraftResult {
  problems: LocatedProblem[];
  eventProblems: string[];
  objectProblems: string[];
  rules: string[];
  results: TestResult[];
  /** What `kube-event-rules test --json` prints for this event (the --expect golden file). */
  golden: string;
}

export interface DraftContext {
  /** How templates are compiled and where they run: in the service, its sandbox (a runaway draft cannot stall it). */
  templates: TemplateOptions;
  /** Lookups (and Secrets) beyond the objects the author gives: the service's cluster, or none. */
  cluster: Cluster;
  env: Record<string, string | undefined>;
}

/** The playground is for one document at a time; larger ones would hold the service's event loop while parsed. */
export const MAX_DOCUMENT_BYTES = 256 * 1024;

/** A file name for the event: letters, digits, dot, dash, underscore. */
const SAFE_LABEL = /^[\w.-]{1,100}$/;

export async function evaluateDraft(input: DraftInput, context: DraftContext): Promise<DraftResult> {
  const bytes = Buffer.byteLength(input.document);
  if (bytes > MAX_DOCUMENT_BYTES) {
    const problem = {
      message: `the document has ${bytes} bytes; the playground takes one of at most ${MAX_DOCUMENT_BYTES} (validate checks larger ones)`,
      from: 0,
      to: 1,
      line: 1,
      column: 1,
    };
    return { problems: [problem], eventProblems: [], objectProblems: [], rules: [], results: [], golden: '' };
  }
  const { rules, problems } = await checkRuleText(input.document, context.templates);
  const label = input.eventLabel && SAFE_LABEL.test(input.eventLabel) ? input.eventLabel : 'event.json';
  const eventProblems: string[] = [];
  const { objects, problems: objectProblems } = parseManifests(
    input.objects?.trim() ? [{ label: 'objects', text: input.objects }] : [],
  );
  const cluster = objects.length > 0 ? manifestCluster(objects, { fallback: context.cluster }) : context.cluster;
  const ruleSet = { rules, index: buildRuleIndex(rules) };
  const pipeline = createDryRunPipeline(() => ruleSet, cluster, { env: context.env, occurrences: 1000 });
  const results: TestResult[] = [];
  let requests: ReturnType<typeof toRequests> = [];
  try {
    requests = input.event.trim() ? toRequests(JSON.parse(input.event) as unknown, label) : [];
    if (requests.length === 0)
      eventProblems.push('no event: pick one or paste a CloudEvent, an Event or `kubectl get events -o json` output');
  } catch (err) {
    eventProblems.push(err instanceof SyntaxError ? `the event is not JSON: ${err.message}` : describeError(err));
  }
  for (const request of requests) results.push(...(await evaluateRequest(request, pipeline)));
  return {
    problems,
    eventProblems,
    objectProblems,
    rules: rules.map((r) => r.name),
    results: knownSecrets.redactDeep(results),
    golden: knownSecrets.redact(`${JSON.stringify(results, null, 2)}\n`),
  };
}
