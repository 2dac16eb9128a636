import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RuleStore } from '../../src/rules/rule-store.js';
import { DEFAULT_TENANCY, compileTenancyPolicy } from '../../src/rules/tenancy-policy.js';
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
      rules: [
        {
          name: 'j',
          conditions: { any: [{ fact: 'event', path: '$.type', operator: 'equal', value: 'Warning' }] },
          actions: [{ destination: 'out' }],
        },
      ],
    });
    assert.equal(problemsOf(json), '');
  });

  it('reads several documents from one file', () => {
    const { rules, problems } = store().store.check(
      'file:multi.yaml',
      `${VALID}\n---\n${VALID.replace('name: hpa', 'name: hpa-2')}`,
    );
    assert.deepEqual(problems, []);
    assert.deepEqual(
      rules.map((r) => r.name),
      ['hpa', 'hpa-2'],
    );
  });

  const cases: { name: string; text: string; want: RegExp }[] = [
    {
      name: 'YAML syntax error with line and column',
      text: 'rules: [\n  { name: x',
      want: /YAML line \d+, column \d+/,
    },
    { name: 'unknown top-level field', text: `${VALID}\nextra: 1`, want: /unknown field "extra"/ },
    {
      name: 'rule without actions',
      text: VALID.replace(/ {4}actions:[\s\S]*$/, ''),
      want: /rules\[0\] \(hpa\): must have required property 'actions'/,
    },
    {
      name: 'unknown destination',
      text: VALID.replace('destination: out', 'destination: nowhere'),
      want: /rules\[0\] \(hpa\)\.actions\[0\]\.destination: "nowhere" is not a destination of this document \(known: out, hook\)/,
    },
    {
      name: 'JSONata syntax error with line, column and caret',
      text: VALID.replace(`'{ "text": message }'`, `'{ "text": message message }'`),
      want: /actions\[0\]\.body: S0202: .* at line 1, column 19\n .*\n +\^/,
    },
    {
      name: 'unknown operator',
      text: VALID.replace('operator: equal', 'operator: equals'),
      want: /conditions\.all\[0\]\.operator: unknown operator "equals"/,
    },
    {
      name: 'unknown fact',
      text: VALID.replace('fact: event', 'fact: evnt'),
      want: /all\[0\]\.fact: "evnt" must be one of "event", "cloudevent", "change", "object", "owner", "namespace"$/,
    },
    {
      name: 'invalid regex',
      text: VALID.replace('operator: equal, value: SuccessfulRescale', 'operator: matches, value: "(unclosed"'),
      want: /invalid regex "\(unclosed"/,
    },
    {
      name: 'a regex with a back-reference',
      text: VALID.replace('operator: equal, value: SuccessfulRescale', 'operator: matches, value: "(a)\\\\1"'),
      want: /invalid regex "\(a\)\\\\1": .*back-references are not supported.* \(at position 3\)/,
    },
    {
      name: 'a template regex with look-ahead',
      text: VALID.replace(`'{ "text": message }'`, `'{ "text": $contains(message, /(?=x)/) }'`),
      want: /actions\[0\]\.body: regex: .*look-ahead .* at line 1, column 31\n .*\n +\^/,
    },
    {
      name: 'unsupported JSONPath filter',
      text: VALID.replace('path: $.reason', 'path: "$.items[?(@.x)]"'),
      want: /path: .*not an index or a quoted name/,
    },
    {
      name: 'bad header template',
      text: VALID.replace('X-Team: platform', 'X-Team: { jsonata: "(" }'),
      want: /destinations\.hook: headers\.X-Team: S0\d+/,
    },
    {
      name: 'literal URL without a scheme',
      text: VALID.replace('http://127.0.0.1:9/hook', '127.0.0.1/hook'),
      want: /destinations\.hook\.url/,
    },
    {
      name: 'duplicate rule name in a document',
      text: VALID.replace(
        /rules:\n/,
        `rules:\n  - { name: hpa, conditions: { all: [] }, actions: [{ destination: out }] }\n`,
      ),
      want: /another rule of this document has the same name/,
    },
    {
      name: 'unknown change type in on:',
      text: VALID.replace('    conditions:', '    on: [add, modified]\n    conditions:'),
      want: /on\[1\]: "modified" must be one of "add", "update"/,
    },
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
    assert.deepEqual(
      rules.current.rules.map((r) => r.name),
      ['hpa'],
    );
    const problems = rules.update('file:a.yaml', VALID.replace('operator: equal', 'operator: nope'));
    assert.equal(problems.length, 1);
    assert.deepEqual(
      rules.current.rules.map((r) => r.name),
      ['hpa'],
      'last good version stays in force',
    );
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

describe('RuleStore with the tenancy policy: rule identity is (scope, name)', () => {
  const named = (name: string) => VALID.replace('name: hpa', `name: ${name}`);

  it('the cluster scope owns its names: a team rule of that name is rejected, whichever arrived first', () => {
    const { store: rules } = store();
    const told: [string, string[]][] = [];
    rules.onProblems((source, problems) => told.push([source, problems]));
    assert.deepEqual(rules.update('configmap:aaa/shadow/r.yaml', named('hpa'), 'aaa'), []);
    assert.deepEqual(
      rules.current.rules.map((r) => r.name),
      ['aaa/hpa'],
      'alone, the team rule is in force',
    );
    assert.deepEqual(rules.update('file:hpa.yaml', VALID), [], 'the cluster rule is never the one rejected');
    assert.deepEqual(
      rules.current.rules.map((r) => r.name),
      ['hpa'],
    );
    const team = rules.status().find((s) => s.source === 'configmap:aaa/shadow/r.yaml')!;
    assert.match(
      team.errors[0],
      /rule "hpa" has the name of a cluster rule \(file:hpa\.yaml\); a team's rule cannot replace it/,
    );
    assert.deepEqual(
      told.map(([source]) => source),
      ['configmap:aaa/shadow/r.yaml'],
      'the offender is told, the victim is not',
    );
  });

  it('two teams may use one name: both in force, named namespace/name', () => {
    const { store: rules } = store();
    rules.update('configmap:team-a/r/r.yaml', named('crash'), 'team-a');
    rules.update('configmap:team-b/r/r.yaml', named('crash'), 'team-b');
    assert.deepEqual(
      rules.current.rules.map((r) => [r.name, r.declaredName, r.scope]),
      [
        ['team-a/crash', 'crash', 'team-a'],
        ['team-b/crash', 'crash', 'team-b'],
      ],
    );
    assert.deepEqual(
      rules.current.rules.map((r) => r.actions[0].destination.name),
      ['team-a/out', 'team-b/out'],
      'destination labels too',
    );
    assert.ok(rules.status().every((s) => s.errors.length === 0));
  });

  it('a clash inside one scope rejects the later source in source order, not in arrival order', () => {
    for (const arrival of [
      ['zzz', 'aaa'],
      ['aaa', 'zzz'],
    ]) {
      const { store: rules } = store();
      for (const cm of arrival) rules.update(`configmap:team-a/${cm}/r.yaml`, named('crash'), 'team-a');
      assert.deepEqual(
        rules.current.rules.map((r) => r.source),
        ['configmap:team-a/aaa/r.yaml'],
        `arrival ${arrival.join(', ')}`,
      );
      assert.match(
        rules.status().find((s) => s.source === 'configmap:team-a/zzz/r.yaml')!.errors[0],
        /already defined in configmap:team-a\/aaa\/r\.yaml, which comes first/,
      );
    }
    const { store: rules } = store();
    rules.update('configmap:observability/a/r.yaml', named('hpa'));
    rules.update('file:z.yaml', named('hpa'));
    assert.deepEqual(
      rules.current.rules.map((r) => r.source),
      ['file:z.yaml'],
      'cluster scope: RULES_DIR files before ConfigMaps',
    );
  });

  it('a rejected document is rejected whole, and comes back when the clash is gone', () => {
    const { store: rules } = store();
    rules.update('file:a.yaml', VALID);
    rules.update(
      'configmap:t/r/r.yaml',
      `${VALID.replace(/rules:\n/, 'rules:\n  - { name: own, conditions: { all: [] }, actions: [{ destination: out }] }\n')}`,
      't',
    );
    assert.deepEqual(
      rules.current.rules.map((r) => r.name),
      ['hpa'],
    );
    rules.remove('file:a.yaml');
    assert.deepEqual(
      rules.current.rules.map((r) => r.name),
      ['t/own', 't/hpa'],
    );
  });

  it('metric series of a team rule carry its namespace and are removed with it', async () => {
    const { store: rules, metrics } = store();
    rules.update('configmap:t/r/r.yaml', VALID, 't');
    rules.update('file:a.yaml', named('other'));
    metrics.ruleMatches.inc({ rule: 't/hpa' });
    metrics.ruleMatches.inc({ rule: 'other' });
    rules.remove('configmap:t/r/r.yaml');
    const text = await metrics.registry.metrics();
    assert.doesNotMatch(text, /rule="t\/hpa"/);
    assert.match(text, /rule="other"/);
  });

  it('a team namespace over TEAM_MAX_RULES: the source that crosses the limit is rejected', () => {
    const metrics = createMetrics();
    const rules = new RuleStore(
      { timeoutMs: 100 },
      metrics,
      recordingLogger().log,
      compileTenancyPolicy({ ...DEFAULT_TENANCY, rulesPerNamespace: 1 }),
    );
    rules.update('configmap:t/b/r.yaml', named('one'), 't');
    rules.update('configmap:t/a/r.yaml', named('two'), 't');
    rules.update('configmap:u/a/r.yaml', named('three'), 'u');
    assert.deepEqual(
      rules.current.rules.map((r) => r.name),
      ['t/two', 'u/three'],
    );
    assert.match(
      rules.status().find((s) => s.source === 'configmap:t/b/r.yaml')!.errors[0],
      /namespace t would have 2 rules; at most 1 are allowed per team namespace \(TEAM_MAX_RULES\)/,
    );
  });
});
