/**
 * Value sources for URLs and header values: a literal, a JSONata expression, an environment variable,
 * or a key of a Kubernetes Secret. Compiled at load; resolved per request. Values from env and Secrets
 * are marked secret so every printed form of the request redacts them.
 */
import { ConfigurationError } from '../errors.js';
import type { ValueSource } from '../rules/document.js';
import { TemplateError } from '../errors.js';
import { EMPTY_RESULT, compileTemplate, type Template, type TemplateOptions } from './template.js';
import { knownSecrets } from '../redact.js';
import { resolveUrlTemplate, type UrlTemplate } from './url-template.js';

/** SecretReader reads one key of a Secret; the no-cluster reader fails with a clear ConfigurationError. */
export interface SecretReader {
  read(name: string, key: string, namespace?: string): Promise<string>;
}

export const NO_CLUSTER_SECRETS: SecretReader = {
  async read(name, key) {
    throw new ConfigurationError(
      `secretKeyRef ${name}/${key}: no Kubernetes cluster is configured, so Secrets cannot be read (use {env: NAME} for local runs)`,
    );
  },
};

export type CompiledValue =
  | { kind: 'literal'; value: string | number | boolean }
  | { kind: 'template'; template: Template }
  | { kind: 'env'; name: string; prefix: string }
  | { kind: 'secret'; name: string; key: string; prefix: string }
  | UrlTemplate;

export function compileValue(source: ValueSource, options: TemplateOptions): CompiledValue {
  if (typeof source === 'string' || typeof source === 'number' || typeof source === 'boolean')
    return { kind: 'literal', value: source };
  if ('jsonata' in source) return { kind: 'template', template: compileTemplate(source.jsonata, options) };
  if ('env' in source) return { kind: 'env', name: source.env, prefix: source.prefix ?? '' };
  return { kind: 'secret', ...source.secretKeyRef, prefix: source.prefix ?? '' };
}

export interface ResolveContext {
  input: unknown;
  bindings: Record<string, unknown>;
  /** The request's deadline (ms since the epoch): template evaluations still waiting for a worker then are dropped. */
  deadline?: number;
  secrets: SecretReader;
  env: Record<string, string | undefined>;
  /** ConfigMaps for TLS material (configMapKeyRef); a team's: of its namespace. */
  configMaps?: SecretReader;
  /** Whether TLS material may come from files (cluster documents and local runs; never a team's). */
  files?: boolean;
  /** hpa-sender destinations may read Secrets of these namespaces besides the HPA's own. */
  hpaSenderNamespaces?: readonly string[];
  /** The namespace the Event is recorded in (hpa-sender acts only for Events recorded in the HPA's namespace). */
  eventNamespace?: string;
}

/** resolveValue gives the string value and whether it is a secret; undefined when an expression gives no value. */
export async function resolveValue(
  value: CompiledValue,
  what: string,
  context: ResolveContext,
): Promise<{ value: string; secret: boolean } | undefined> {
  switch (value.kind) {
    case 'literal':
      return { value: String(value.value), secret: false };
    case 'template': {
      let result: unknown;
      try {
        result = await value.template.evaluate(context.input, context.bindings, context.deadline);
      } catch (err) {
        if (err instanceof TemplateError && err.code === EMPTY_RESULT) return undefined;
        throw err;
      }
      if (typeof result !== 'string' && typeof result !== 'number' && typeof result !== 'boolean') {
        throw new ConfigurationError(`${what}: the expression must give a string, got ${JSON.stringify(result)}`);
      }
      return { value: String(result), secret: false };
    }
    case 'env': {
      const found = context.env[value.name];
      if (found === undefined || found === '')
        throw new ConfigurationError(`${what}: environment variable ${value.name} is not set`);
      return { value: value.prefix + knownSecrets.remember(found), secret: true };
    }
    case 'secret':
      return {
        value: value.prefix + knownSecrets.remember(await context.secrets.read(value.name, value.key)).trim(),
        secret: true,
      };
    case 'url': {
      const url = await resolveUrlTemplate(value, what, context.input, context.bindings, context.deadline);
      return url === undefined ? undefined : { value: url, secret: false };
    }
  }
}

/** resolveField is resolveValue for body fields: a JSONata value keeps its JSON type (number, list, object). */
export async function resolveField(
  value: CompiledValue,
  what: string,
  context: ResolveContext,
): Promise<{ value: unknown; secret: boolean } | undefined> {
  if (value.kind === 'literal') return { value: value.value, secret: false }; // a number stays a number
  if (value.kind !== 'template') return resolveValue(value, what, context);
  try {
    return { value: await value.template.evaluate(context.input, context.bindings, context.deadline), secret: false };
  } catch (err) {
    if (err instanceof TemplateError && err.code === EMPTY_RESULT) return undefined;
    throw err;
  }
}
