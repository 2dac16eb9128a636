import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RuleStore } from '../../src/rules/rule-store.js';
import { createMetrics, recordingLogger } from '../support/quiet.js';

const VALID = `
destinations:
  out: { kind: log }
  hook:
    url: http://127.0.0.1:9/hook
    headers: { X-Team: platform }
rules:
  - name: hpa
    conditions:
      all:
        - { fact: event, path: $.reason, operator: equal, value: SuccessfulRescale }
    actions:
      - destination: out
        body: '{ "text": message }'
`;

function store() {
  const metrics = createMetrics();
  const { log, records } = recordingLogger();
  return { store: new RuleStore({ timeoutMs: 100 }, metrics, log), metrics, records };
}

/** problemsOf compiles one document and returns its problems as one string. */
function problemsOf(text: string): string {
  return store().store.check('file:test.yaml', text).problems.join('\n');
}

describe('rule documents', () => {
  it('loads a valid YAML document and the same document as JSON', () => {
    assert.equal(problemsOf(VALID), '');
    const json = JSON.stringify({
      destinations: { out: { kind: 'log' } },
      rules: [{ name: 'j', conditions: { any: [{ fact: 'event', path: '$.type', operator: 'equal', value: 'Warning' }] }, actions: [{ destination: 'out' }] }],
    });
    assert.equal(problemsOf(json), '');
  });

  it('reads several documents from one file', () => {
    const { rules, problems } = store().store.check('file:multi.yaml', `${VALID}\n---\n${VALID.replace('name: hpa', 'name: hpa-2')}`);
    assert.deepEqual(problems, []);
    assert.deepEqual(rules.map((r) => r.name), ['hpa', 'hpa-2']);
  });

  const cases: { name: string; text: string; want: RegExp }[] = [
    { name: 'YAML syntax error with line and column', text: 'rules: [\n  { name: x', want: /YAML line \d+, column \d+/ },
    { name: 'unknown top-level field', text: `${VALID}\nextra: 1`, want: /unknown field "extra"/ },
    { name: 'rule without actions', text: VALID.replace(/    actions:[\s\S]*$/, ''), want: /rules\[0\] \(hpa\): must have required property 'actions'/ },
    { name: 'unknown destination', text: VALID.replace('destination: out', 'destination: nowhere'), want: /rules\[0\] \(hpa\)\.actions\[0\]\.destination: "nowhere" is not a destination of this document \(known: out, hook\)/ },
    { name: 'JSONata syntax error with line, column and caret', text: VALID.replace(`'{ "text": message }'`, `'{ "text": message message }'`), want: /actions\[0\]\.body: S0202: .* at line 1, column 19\n .*\n +\^/ },
    { name: 'unknown operator', text: VALID.replace('operator: equal', 'operator: equals'), want: /conditions\.all\[0\]\.operator: unknown operator "equals"/ },
    { name: 'unknown fact', text: VALID.replace('fact: event', 'fact: evnt'), want: /all\[0\]\.fact: "evnt" must be one of "event", "cloudevent", "change", "object", "owner", "namespace"$/ },
    { name: 'invalid regex', text: VALID.replace('operator: equal, value: SuccessfulRescale', 'operator: matches, value: "(unclosed"'), want: /invalid regex "\(unclosed"/ },
    { name: 'a regex with a back-reference', text: VALID.replace('operator: equal, value: SuccessfulRescale', 'operator: matches, value: "(a)\\\\1"'), want: /invalid regex "\(a\)\\\\1": .*back-references are not supported.* \(at position 3\)/ },
    { name: 'a template regex with look-ahead', text: VALID.replace(`'{ "text": message }'`, `'{ "text": $contains(message, /(?=x)/) }'`), want: /actions\[0\]\.body: regex: .*look-ahead .* at line 1, column 31\n .*\n +\^/ },
    { name: 'unsupported JSONPath filter', text: VALID.replace('path: $.reason', 'path: "$.items[?(@.x)]"'), want: /path: .*not an index or a quoted name/ },
    { name: 'bad header template', text: VALID.replace('X-Team: platform', 'X-Team: { jsonata: "(" }'), want: /destinations\.hook: headers\.X-Team: S0\d+/ },
    { name: 'literal URL without a scheme', text: VALID.replace('http://127.0.0.1:9/hook', '127.0.0.1/hook'), want: /destinations\.hook\.url/ },
    { name: 'duplicate rule name in a document', text: VALID.replace(/rules:\n/, `rules:\n  - { name: hpa, conditions: { all: [] }, actions: [{ destination: out }] }\n`), want: /another rule of this document has the same name/ },
    { name: 'unknown change type in on:', text: VALID.replace('    conditions:', '    on: [add, modified]\n    conditions:'), want: /on\[1\]: "modified" must be one of "add", "update"/ },
    { name: 'empty file', text: '# nothing\n', want: /no rule document found/ },
  ];
  for (const { name, text, want } of cases) {
    it(`rejects: ${name}`, () => assert.match(problemsOf(text), want));
  }
});

describe('RuleStore', () => {
  it('keeps the last good version of a source that became invalid, and reports the error', () => {
    const { store: rules, metrics } = store();
    assert.deepEqual(rules.update('file:a.yaml', VALID), []);
    assert.deepEqual(rules.current.rules.map((r) => r.name), ['hpa']);
    const problems = rules.update('file:a.yaml', VALID.replace('operator: equal', 'operator: nope'));
    assert.equal(problems.length, 1);
    assert.deepEqual(rules.current.rules.map((r) => r.name), ['hpa'], 'last good version stays in force');
    assert.match(rules.status()[0].errors[0], /unknown operator "nope"/);
    return metrics.registry.getSingleMetricAsString('kube_event_rules_rule_load_errors').then((text) => {
      assert.match(text, /kube_event_rules_rule_load_errors\{source="file:a.yaml"\} 1/);
    });
  });

  it('a fixed source clears its error; a removed source removes its rules', () => {
    const { store: rules } = store();
    rules.update('file:a.yaml', 'rules: 3');
    assert.equal(rules.current.rules.length, 0);
    rules.update('file:a.yaml', VALID);
    assert.deepEqual(rules.status()[0].errors, []);
    assert.equal(rules.current.rules.length, 1);
    rules.remove('file:a.yaml');
    assert.equal(rules.current.rules.length, 0);
  });

  it('a rule name already defined by another source is reported on the later source and ignored there', () => {
    const { store: rules } = store();
    rules.update('file:a.yaml', VALID);
    const problems = rules.update('file:b.yaml', VALID);
    assert.match(problems[0], /rule "hpa" is already defined in file:a.yaml/);
    assert.equal(rules.current.rules.length, 1);
    assert.equal(rules.current.rules[0].source, 'file:a.yaml');
  });

  it('removes the metric series of rules that are gone', async () => {
    const { store: rules, metrics } = store();
    rules.update('file:a.yaml', VALID);
    metrics.ruleMatches.inc({ rule: 'hpa' });
    metrics.deliveries.inc({ rule: 'hpa', destination: 'out', outcome: 'delivered' });
    rules.remove('file:a.yaml');
    const text = await metrics.registry.metrics();
    assert.doesNotMatch(text, /rule="hpa"/);
  });
});
