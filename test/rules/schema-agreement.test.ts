/**
 * The JSON Schema that editors use and the service's validator agree: on a corpus of documents, the
 * schema accepts exactly what the validator accepts — except for the checks a schema cannot express
 * (JSONata syntax, regexes, paths, destination names, duplicate names), which are listed here.
 */
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import { Ajv } from 'ajv';
import { stringify } from 'yaml';
import { newStore } from '../../src/cli/validate.js';

const schema = JSON.parse(
  readFileSync(new URL('../../src/rules/rule-document.schema.json', import.meta.url), 'utf8'),
) as object;
const validate = new Ajv({ allErrors: true, strict: false }).compile(schema);

const leaf = { fact: 'event', path: '$.reason', operator: 'equal', value: 'BackOff' };
const base = () =>
  structuredClone({
    destinations: { out: { kind: 'log' }, hook: { url: 'https://example.com/x', headers: { A: 'b' } } },
    rules: [{ name: 'r', conditions: { all: [leaf] }, actions: [{ destination: 'out' }] }],
  });
type Doc = ReturnType<typeof base> & Record<string, any>;
const edit = (change: (doc: Doc) => void): Doc => {
  const doc = base();
  change(doc);
  return doc;
};

const corpus: { name: string; doc: unknown; valid: boolean; semanticOnly?: boolean }[] = [
  { name: 'minimal', doc: base(), valid: true },
  {
    name: 'every value source',
    doc: edit(
      (d) =>
        (d.destinations.hook.headers = {
          A: 'b',
          B: { jsonata: 'reason' },
          C: { env: 'X', prefix: 'Bearer ' },
          D: { secretKeyRef: { name: 's', key: 'k' } },
        } as never),
    ),
    valid: true,
  },
  {
    name: 'tls from a ConfigMap, a Secret and a file; a proxy with credentials from a Secret',
    doc: edit((d) =>
      Object.assign(d.destinations.hook, {
        tls: {
          ca: { configMapKeyRef: { name: 'ca', key: 'ca.crt' } },
          clientCert: { file: '/etc/tls/tls.crt' },
          clientKey: { secretKeyRef: { name: 'c', key: 'tls.key' } },
          serverName: 'grafana.internal',
          insecureSkipVerify: false,
        },
        proxy: {
          url: 'http://proxy.corp:3128',
          username: { secretKeyRef: { name: 'p', key: 'user' } },
          password: { secretKeyRef: { name: 'p', key: 'password' } },
        },
      }),
    ),
    valid: true,
  },
  {
    name: 'tls clientCert without clientKey',
    doc: edit((d) => Object.assign(d.destinations.hook, { tls: { clientCert: { file: '/c' } } })),
    valid: false,
  },
  {
    name: 'tls ca as an inline string',
    doc: edit((d) => Object.assign(d.destinations.hook, { tls: { ca: '-----BEGIN CERTIFICATE-----' } })),
    valid: false,
  },
  {
    name: 'proxy url with credentials in it',
    doc: edit((d) => Object.assign(d.destinations.hook, { proxy: { url: 'http://user:pass@proxy:3128' } })),
    valid: false,
  },
  {
    name: 'url from env and jsonata',
    doc: edit(
      (d) => (
        ((d.destinations as any).e = { url: { env: 'U' } }),
        ((d.destinations as any).j = { url: { jsonata: '"https://x/" & reason' } })
      ),
    ),
    valid: true,
  },
  {
    name: 'any / not / nested groups, decorators',
    doc: edit(
      (d) =>
        (d.rules[0].conditions = {
          any: [{ not: leaf }, { all: [{ ...leaf, operator: 'not:in', value: ['a'] }] }],
        } as never),
    ),
    valid: true,
  },
  { name: 'on: delete', doc: edit((d) => ((d.rules[0] as any).on = ['delete'])), valid: true },
  {
    name: 'exists / absent without a value',
    doc: edit(
      (d) =>
        (d.rules[0].conditions.all = [
          { fact: 'object', operator: 'absent' },
          { fact: 'event', path: '$.a', operator: 'exists', value: true },
        ] as never),
    ),
    valid: true,
  },
  {
    name: 'exists with value false',
    doc: edit((d) => (d.rules[0].conditions.all[0] = { fact: 'object', operator: 'exists', value: false } as never)),
    valid: false,
  },
  {
    name: 'not:exists',
    doc: edit((d) => (d.rules[0].conditions.all[0] = { fact: 'object', operator: 'not:exists' } as never)),
    valid: false,
  },
  { name: 'no rules key', doc: { destinations: {} }, valid: false },
  { name: 'unknown top-level key', doc: edit((d) => (d.extra = 1)), valid: false },
  { name: 'rule without name', doc: edit((d) => delete (d.rules[0] as any).name), valid: false },
  { name: 'rule name with spaces', doc: edit((d) => (d.rules[0].name = 'my rule')), valid: false },
  { name: 'empty actions', doc: edit((d) => (d.rules[0].actions = [])), valid: false },
  { name: 'unknown fact', doc: edit((d) => (d.rules[0].conditions.all[0] = { ...leaf, fact: 'evnt' })), valid: false },
  {
    name: 'unknown operator',
    doc: edit((d) => (d.rules[0].conditions.all[0] = { ...leaf, operator: 'equals' })),
    valid: false,
  },
  {
    name: 'unknown decorator',
    doc: edit((d) => (d.rules[0].conditions.all[0] = { ...leaf, operator: 'never:equal' })),
    valid: false,
  },
  {
    name: 'condition without value',
    doc: edit((d) => delete (d.rules[0].conditions.all[0] as any).value),
    valid: false,
  },
  { name: 'top-level leaf condition', doc: edit((d) => (d.rules[0].conditions = leaf as never)), valid: false },
  {
    name: 'http destination without url',
    doc: edit((d) => ((d.destinations as any).nourl = { method: 'POST' })),
    valid: false,
  },
  { name: 'literal url without scheme', doc: edit((d) => (d.destinations.hook.url = 'example.com/x')), valid: false },
  { name: 'GET method', doc: edit((d) => ((d.destinations.hook as any).method = 'GET')), valid: false },
  { name: 'header value a number', doc: edit((d) => (d.destinations.hook.headers = { A: 1 } as never)), valid: false },
  { name: 'on: unknown change', doc: edit((d) => ((d.rules[0] as any).on = ['modified'])), valid: false },
  { name: 'timeout zero', doc: edit((d) => ((d.destinations.hook as any).timeoutSeconds = 0)), valid: false },
  {
    name: 'unknown destination',
    doc: edit((d) => (d.rules[0].actions[0].destination = 'nope')),
    valid: false,
    semanticOnly: true,
  },
  {
    name: 'JSONata syntax error',
    doc: edit((d) => ((d.rules[0].actions[0] as any).body = '{ "a": }')),
    valid: false,
    semanticOnly: true,
  },
  {
    name: 'invalid regex',
    doc: edit((d) => (d.rules[0].conditions.all[0] = { ...leaf, operator: 'matches', value: '(' })),
    valid: false,
    semanticOnly: true,
  },
  {
    name: 'JSONPath filter',
    doc: edit((d) => (d.rules[0].conditions.all[0] = { ...leaf, path: '$.x[?(@.a)]' })),
    valid: false,
    semanticOnly: true,
  },
  {
    name: 'comparison with null',
    doc: edit((d) => (d.rules[0].conditions.all[0] = { ...leaf, value: null } as never)),
    valid: false,
    semanticOnly: true,
  },
  { name: 'duplicate rule names', doc: edit((d) => d.rules.push({ ...d.rules[0] })), valid: false, semanticOnly: true },
];

describe('JSON Schema and validator', () => {
  for (const entry of corpus) {
    it(`agree on: ${entry.name}`, () => {
      const byValidator = newStore().check('doc', stringify(entry.doc)).problems;
      assert.equal(byValidator.length === 0, entry.valid, `validator: ${byValidator.join('; ')}`);
      const bySchema = validate(entry.doc);
      assert.equal(
        bySchema,
        entry.semanticOnly ? true : entry.valid,
        `schema: ${JSON.stringify(validate.errors?.slice(0, 2))}`,
      );
    });
  }

  it('the example rules carry the yaml-language-server modeline pointing at the schema', () => {
    for (const file of [
      'hpa-wavefront.yaml',
      'hpa-grafana.yaml',
      'pod-trouble-slack.yaml',
      'warnings-log.yaml',
      'hpa-sender-compat.yaml',
    ]) {
      const text = readFileSync(new URL(`../../rules/${file}`, import.meta.url), 'utf8');
      assert.match(
        text.split('\n')[0],
        /^# yaml-language-server: \$schema=\.\.\/src\/rules\/rule-document\.schema\.json$/,
        file,
      );
    }
  });
});
