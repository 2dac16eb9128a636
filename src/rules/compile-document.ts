/**
 * compileDocument checks one rule document (JSON Schema, conditions, templates, destination names) and
 * compiles everything an event will need, once. A document with any problem is rejected whole, with
 * every problem named by source, rule and field.
 */
import { createHash } from 'node:crypto';
import { Ajv, type ErrorObject } from 'ajv';
import { DEFAULT_CHANGES } from '../normalize/kube-event.js';
import { compileTemplate, type TemplateOptions } from '../render/template.js';
import { compileValue, type CompiledValue } from '../render/value-source.js';
import { compileUrlTemplate } from '../render/url-template.js';
import { compileTransport } from '../render/transport.js';
import { PRESETS, presetFieldProblems } from '../render/presets.js';
import { OPERATORS, RegexBudget, buildRule } from './conditions.js';
import { DEFAULT_THROTTLE_KEY, parseDuration } from '../match/throttle.js';
import { compileRegion } from './compile-region.js';
import { compileDigest } from '../match/digest-rule.js';
import type { ActionSpec, DestinationSpec, RuleDocument } from './document.js';
import type { CompiledAction, CompiledDestination, CompiledDocument, CompiledRule } from './compiled-rule.js';
import { DEFAULT_KIND, DESTINATION_KINDS, destinationKind } from '../deliver/kinds/registry.js';
import schema from './rule-document.schema.json' with { type: 'json' };

export type { CompiledAction, CompiledDestination, CompiledDocument, CompiledRule };

const OPERATOR_NAMES = OPERATORS.join(', ');

const ajv = new Ajv({ allErrors: true, strict: false });
const validateSchema = ajv.compile(schema);
/** One rule against the schema: a large document is validated rule by rule, between steps. */
const validateRule = ajv.getSchema(`${schema.$id}#/definitions/rule`)!;

export interface CompileResult {
  compiled?: CompiledDocument;
  problems: string[];
}

/** compileDocument returns the compiled document, or the list of problems (each a full sentence with its location). */
export function compileDocument(document: unknown, source: string, options: TemplateOptions): CompileResult {
  return runToEnd(compileDocumentSteps(document, source, options));
}

/** runToEnd runs a step generator without pausing. */
export function runToEnd<T>(steps: Generator<void, T>): T {
  let step = steps.next();
  while (!step.done) step = steps.next();
  return step.value;
}

/**
 * compileDocumentSteps is compileDocument as steps, one per rule, so a loader can let the event loop serve
 * requests between them: a 1 MiB document holds ≈ 2,000 rules, and compiling them cold takes seconds.
 */
export function* compileDocumentSteps(
  document: unknown,
  source: string,
  options: TemplateOptions,
): Generator<void, CompileResult> {
  const manifest = document as { apiVersion?: unknown; kind?: unknown } | null;
  if (manifest && typeof manifest === 'object' && typeof manifest.kind === 'string' && 'apiVersion' in manifest) {
    return {
      problems: [
        `this is a Kubernetes ${manifest.kind} manifest, not a rule document (a rule document has "destinations" and "rules" at the top)`,
      ],
    };
  }
  const rulesList = (document as { rules?: unknown } | null)?.rules;
  const skeleton = Array.isArray(rulesList) ? { ...(document as object), rules: [] } : document;
  if (!validateSchema(skeleton)) return { problems: schemaProblems(validateSchema.errors ?? [], document) };
  const ruleErrors: ErrorObject[] = [];
  for (const [i, rule] of (rulesList as unknown[]).entries()) {
    if (i % 100 === 99) yield;
    if (!validateRule(rule))
      ruleErrors.push(
        ...(validateRule.errors ?? []).map((e) => ({ ...e, instancePath: `/rules/${i}${e.instancePath}` })),
      );
  }
  if (ruleErrors.length > 0) return { problems: schemaProblems(ruleErrors, document) };
  const doc = document as RuleDocument;
  const problems: string[] = [];
  const destinations = new Map<string, CompiledDestination>();
  for (const [name, spec] of Object.entries(doc.destinations ?? {})) {
    const compiled = attempt(problems, `destinations.${name}`, () => compileDestination(name, spec, options));
    if (compiled) destinations.set(name, compiled);
  }
  const rules: CompiledRule[] = [];
  const names = new Set<string>();
  const regexBudget = new RegexBudget();
  for (const [i, spec] of doc.rules.entries()) {
    yield;
    const where = `rules[${i}] (${spec.name})`;
    // A shadow rule may share its name with the live rule it would replace; two of one kind may not.
    const identity = `${(spec.shadow ?? doc.shadow) ? 'shadow:' : ''}${spec.name}`;
    if (names.has(identity)) problems.push(`${where}.name: another rule of this document has the same name`);
    names.add(identity);
    const shadow = (spec.shadow ?? doc.shadow) === true;
    const { region, conditions } = compileRegion(spec, shadow, where, regexBudget, options, problems);
    const {
      rule,
      test,
      problems: conditionProblems,
    } = conditions ? buildRule(spec.name, conditions, regexBudget) : { problems: [] };
    // A region's sides were checked where they are written (region.start, region.end).
    if (!spec.region) problems.push(...conditionProblems.map((p) => `${where}.${p}`));
    const actions: CompiledAction[] = [];
    const identities = new Map<string, number>();
    spec.actions.forEach((action, index) => {
      const destination = destinations.get(action.destination);
      if (!destination) {
        const known = [...Object.keys(doc.destinations ?? {})].join(', ') || 'none defined';
        problems.push(
          `${where}.actions[${index}].destination: "${action.destination}" is not a destination of this document (known: ${known})`,
        );
        return;
      }
      const at = `${where}.actions[${index}]`;
      const actionProblem = destinationKind(destination.kind).checkAction?.(action);
      if (actionProblem) problems.push(`${at}: ${actionProblem}`);
      const preset = action.preset === undefined ? undefined : PRESETS[action.preset];
      if (action.preset !== undefined)
        problems.push(...presetFieldProblems(action.preset, Object.keys(action.fields ?? {})).map((p) => `${at}.${p}`));
      // A digest rule's preset sends its digest form (refused at load where the preset has none).
      if (preset && spec.digest && !preset.digestBody)
        problems.push(
          `${at}.preset: preset ${action.preset} has no digest form (presets with one: ${Object.keys(PRESETS)
            .filter((n) => PRESETS[n].digestBody)
            .join(', ')}); write a body over $digest`,
        );
      const presetBody = spec.digest
        ? preset?.digestBody
        : ((spec.region ? preset?.regionBody : undefined) ?? preset?.body);
      const bodySource = presetBody ?? action.body;
      const body =
        bodySource === undefined
          ? undefined
          : attempt(problems, `${at}.${preset ? `preset ${action.preset}` : 'body'}`, () =>
              compileTemplate(bodySource, options),
            );
      const presetHeaders = Object.entries(preset?.headers ?? {}).map(([name, expression]): [string, CompiledValue] => [
        name,
        { kind: 'template', template: compileTemplate(expression, options) },
      ]);
      const fields = Object.entries(action.fields ?? {}).flatMap(([path, value]): [string, CompiledValue][] => {
        const compiled = attempt(problems, `${at}.fields.${path}`, () => compileValue(value, options));
        return compiled ? [[path, compiled]] : [];
      });
      const valueTemplates = [
        destination.url,
        ...destination.headers.map(([, v]) => v),
        ...presetHeaders.map(([, v]) => v),
        ...fields.map(([, v]) => v),
      ].flatMap((v) =>
        v?.kind === 'template'
          ? [v.template]
          : v?.kind === 'url'
            ? v.parts.flatMap((part) => ('template' in part ? [part.template] : []))
            : [],
      );
      const metricTemplates = destination.metric
        ? [...destination.metric.labels.map(([, t]) => t), destination.metric.value]
        : [];
      const uses = new Set([body, ...valueTemplates, ...metricTemplates].flatMap((t) => (t ? [...t.uses] : [])));
      for (const fact of destinationKind(destination.kind).reads) uses.add(fact);
      const hash = actionHash(action);
      const rank = identities.get(hash) ?? 0;
      identities.set(hash, rank + 1);
      actions.push({
        index,
        identity: rank === 0 ? hash : `${hash}.${rank}`,
        destination,
        body,
        presetHeaders,
        fields,
        uses,
      });
    });
    const throttle = spec.throttle
      ? attempt(problems, `${where}.throttle`, () => ({
          key: compileTemplate(spec.throttle!.key ?? DEFAULT_THROTTLE_KEY, options),
          windowMs: parseDuration(spec.throttle!.window),
          max: spec.throttle!.max ?? 1,
        }))
      : undefined;
    const digest = spec.digest ? compileDigest(spec, Boolean(spec.shadow ?? doc.shadow), actions, options) : undefined;
    if (digest) problems.push(...digest.problems.map((p) => `${where}.${p}`));
    if (rule) {
      rules.push({
        throttle,
        ...(digest?.digest ? { digest: digest.digest } : {}),
        name: spec.name,
        declaredName: spec.name,
        ...(shadow ? { shadow: true } : {}),
        description: spec.description ?? '',
        source,
        on: new Set(spec.on ?? DEFAULT_CHANGES),
        conditions: conditions!,
        rule,
        test,
        actions,
        ...(region ? { region } : {}),
      });
    }
  }
  return problems.length > 0 ? { problems } : { compiled: { source, rules }, problems };
}

/** actionHash: what an action sends where, as a short stable hash (its position in the rule left out). */
function actionHash(action: ActionSpec): string {
  const { destination, body, preset, fields } = action;
  return createHash('sha256')
    .update(JSON.stringify([destination, body ?? null, preset ?? null, fields ?? null]))
    .digest('base64url')
    .slice(0, 16);
}

function compileDestination(name: string, spec: DestinationSpec, options: TemplateOptions): CompiledDestination {
  const headers: [string, CompiledValue][] = [];
  for (const [header, value] of Object.entries(spec.headers ?? {})) {
    headers.push([header, prefixed(`headers.${header}`, () => compileValue(value, options))]);
  }
  const kind = spec.kind ?? DEFAULT_KIND;
  if (!Object.hasOwn(DESTINATION_KINDS, kind))
    throw new Error(
      `kind: unknown destination kind ${JSON.stringify(kind)} (known: ${Object.keys(DESTINATION_KINDS).join(', ')})`,
    );
  const problem = destinationKind(kind).check(spec);
  if (problem) throw new Error(problem);
  return {
    ...destinationKind(kind).compile?.(spec, options),
    name,
    kind,
    transport: compileTransport(spec),
    url:
      spec.url === undefined
        ? undefined
        : prefixed('url', () =>
            typeof spec.url === 'object' && 'jsonata' in spec.url
              ? compileUrlTemplate(spec.url.jsonata, options)
              : compileValue(spec.url!, options),
          ),
    method: spec.method ?? 'POST',
    headers,
    timeoutMs: spec.timeoutSeconds === undefined ? undefined : spec.timeoutSeconds * 1000,
  };
}

/** prefixed re-throws a compile error with the field it came from. */
function prefixed<T>(field: string, compile: () => T): T {
  try {
    return compile();
  } catch (err) {
    throw new Error(`${field}: ${(err as Error).message}`);
  }
}

function attempt<T>(problems: string[], where: string, compile: () => T): T | undefined {
  try {
    return compile();
  } catch (err) {
    problems.push(`${where}: ${(err as Error).message}`);
    return undefined;
  }
}

/** schemaProblems turns ajv errors into "rules[0] (name).actions[1]: must have required property 'destination'". */
function schemaProblems(errors: ErrorObject[], document: unknown): string[] {
  // oneOf/if branches produce noise: keep leaf errors, and drop an error when a deeper one explains it.
  const leaves = errors.filter((e) => !['oneOf', 'if', 'anyOf'].includes(e.keyword));
  const candidates = leaves.length > 0 ? leaves : errors;
  const focused = candidates.filter(
    (e, _, all) =>
      !all.some((other) => other.instancePath.startsWith(`${e.instancePath}/`)) && !otherConditionForm(e, document),
  );
  // A top-level leaf condition fails every group form: then say so rather than nothing.
  const chosen = focused.length > 0 ? focused : candidates;
  const seen = new Set<string>();
  for (const error of chosen) {
    const { path, value } = locate(error.instancePath, document);
    let detail = error.message ?? 'is invalid';
    if (error.keyword === 'additionalProperties') detail = `unknown field "${String(error.params.additionalProperty)}"`;
    if (error.keyword === 'pattern' && path.endsWith('.operator'))
      detail = `unknown operator ${JSON.stringify(value)} (known: ${OPERATOR_NAMES})`;
    else if (error.keyword === 'pattern')
      detail = `${JSON.stringify(value)} must match ${String(error.params.pattern)}`;
    if (error.keyword === 'not' && /^rules\[\d+\].*\.actions\[\d+\]$/.test(path)) {
      detail =
        'has both "preset" and "body": a preset builds the body itself — keep "preset" and change what it builds with "fields", or drop "preset" and write the whole "body"';
    }
    if (error.keyword === 'enum') {
      const allowed = (error.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ');
      detail = `${JSON.stringify(value)} must be one of ${allowed}`;
    }
    seen.add(`${path || '(document)'}: ${detail}`);
  }
  return [...seen];
}

/**
 * A condition is a group ({all|any|not}) or a leaf ({fact, operator, value}); report only the form the author wrote.
 */
function otherConditionForm(error: ErrorObject, document: unknown): boolean {
  if (error.keyword !== 'required') return false;
  const { value } = locate(error.instancePath, document);
  if (typeof value !== 'object' || value === null) return false;
  const missing = String(error.params.missingProperty);
  const isLeaf = 'fact' in value || 'operator' in value;
  return isLeaf ? ['all', 'any', 'not'].includes(missing) : ['fact', 'operator', 'value'].includes(missing);
}

/** locate turns a JSON pointer into a readable path that names rules, and finds the value there. */
function locate(pointer: string, document: unknown): { path: string; value: unknown } {
  let node: unknown = document;
  let path = '';
  for (const raw of pointer.split('/').slice(1)) {
    const key = raw.replace(/~1/g, '/').replace(/~0/g, '~');
    if (Array.isArray(node)) {
      const item = node[Number(key)] as { name?: unknown } | undefined;
      path += `[${key}]${item && typeof item.name === 'string' ? ` (${item.name})` : ''}`;
    } else {
      path += path === '' ? key : `.${key}`;
    }
    node = node && typeof node === 'object' ? (node as Record<string, unknown>)[key] : undefined;
  }
  return { path, value: node };
}
