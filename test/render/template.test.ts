import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { TemplateError } from '../../src/errors.js';
import { compileTemplate } from '../../src/render/template.js';

const options = { timeoutMs: 100 };

describe('compileTemplate', () => {
  it('builds real JSON: numbers, arrays, nested objects, bindings', async () => {
    const template = compileTemplate(
      '{ "n": count + 1, "tags": ["k8s", reason], "rule": $rule.name, "t": $toMillis(lastTimestamp) }',
      options,
    );
    const result = await template.evaluate(
      { count: 1, reason: 'BackOff', lastTimestamp: '2024-05-14T09:12:03Z' },
      { rule: { name: 'r' } },
    );
    assert.deepEqual(result, { n: 2, tags: ['k8s', 'BackOff'], rule: 'r', t: 1715677923000 });
    assert.equal(Object.getPrototypeOf(result), Object.prototype, 'plain objects, not JSONata null-prototype ones');
  });

  // hpa-sender spliced messages into JSON text; these broke it. Every one must come out intact and valid.
  const messages: [string, string][] = [
    [
      'quotes',
      'unable to get external metric shop/queue/&LabelSelector{MatchLabels:map[string]string{"queue": "orders"}}',
    ],
    ['backslashes', 'path C:\\temp\\x and a regex \\d+\\s*'],
    ['newlines and tabs', 'line one\nline two\r\n\tindented'],
    ['unicode', 'Größe → 4 ✓ 日本語 🚀'],
    ['U+2028 and U+2029', 'before\u2028middle\u2029after'],
    ['hpa-sender placeholders', 'literal _message_ and _time_ stay as they are'],
    ['control characters', 'bell\u0007 and nul\u0000 end'],
    ['50 KB', 'x'.repeat(50 * 1024)],
  ];
  for (const [name, message] of messages) {
    it(`keeps a message with ${name} intact in valid JSON`, async () => {
      const template = compileTemplate('{ "details": message, "name": "HPA " & involvedObject.name }', options);
      const body = JSON.stringify(await template.evaluate({ message, involvedObject: { name: 'web' } }, {}));
      const parsed = JSON.parse(body) as { details: string };
      assert.equal(parsed.details, message);
    });
  }

  it('reports syntax errors with line, column and a caret', () => {
    assert.throws(
      () => compileTemplate('{\n  "a": reason,\n  "b": reason reason\n}', options),
      (err: unknown) =>
        err instanceof TemplateError && /line 3, column 15\n {6}"b": reason reason\n {4} {14}\^/.test(err.message),
    );
  });

  it('stops a template that loops forever within about its timeout', async () => {
    const template = compileTemplate('($f := function($x){ $f($x + 1) }; $f(0))', options);
    const started = Date.now();
    await assert.rejects(
      template.evaluate({}, {}),
      (err: unknown) => err instanceof TemplateError && err.code === 'D1012',
    );
    assert.ok(Date.now() - started < 2000);
  });

  it('stops deep recursion and huge sequences', async () => {
    await assert.rejects(
      compileTemplate('($f := function($x){ 1 + $f($x + 1) }; $f(0))', options).evaluate({}, {}),
      (err: unknown) => (err as TemplateError).code === 'D1011',
    );
    await assert.rejects(
      compileTemplate('[1..10000000]', options).evaluate({}, {}),
      (err: unknown) => (err as TemplateError).code === 'D2015',
    );
  });

  it('rejects results that are not JSON values', async () => {
    await assert.rejects(compileTemplate('nothing.here', options).evaluate({}, {}), /produced no value/);
    await assert.rejects(
      compileTemplate('{ "f": $uppercase }', options).evaluate({}, {}),
      /a function, not a JSON value/,
    );
  });

  it('runtime errors name the code and position', async () => {
    await assert.rejects(compileTemplate('{"a": "x" + 1}', options).evaluate({}, {}), /T2001: .* at line 1, column 11/);
  });

  it('knows which enrichment bindings it reads', () => {
    assert.deepEqual(
      [...compileTemplate('$object.metadata.labels & $namespace.name', options).uses],
      ['object', 'namespace'],
    );
    assert.deepEqual([...compileTemplate('$objectives & $owners', options).uses], []);
    assert.deepEqual([...compileTemplate('$owner.kind', options).uses], ['owner']);
  });
});
