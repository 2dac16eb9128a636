/**
 * A `matches` regex RE2 accepts can still be costly: re2js spends up to one step per program instruction per
 * character, and each program holds heap. `(?:a|y|ay|ya){1000}b` blocked the event loop for seconds on one
 * 20 kB message; 250 such patterns in a 24.5 kB document filled the heap at start; compiled programs outlived
 * the rules that used them, so a few edits of a harmless document did. Here: a program over
 * REGEX_MAX_PROGRAM_SIZE is refused at load with the repeat that makes it large, one document's patterns
 * share REGEX_PROGRAM_BUDGET, a `matches` reads at most MATCHES_MAX_INPUT_BYTES (longer: false, counted), and
 * a compiled pattern lives only while a rule holds it.
 */
import assert from 'node:assert/strict';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { after, before, describe, it } from 'node:test';
import { compileDocument } from '../../src/rules/compile-document.js';
import { buildRule, compileRegex } from '../../src/rules/conditions.js';
import { RegexSyntaxError } from '../../src/render/linear-regex.js';
import { startCaptureSink, type CaptureSink } from '../support/capture-sink.js';
import { loadFixture, withEvent } from '../support/fixtures.js';
import { startService, type RunningService } from '../support/running-service.js';

const SLOW = '(?:a|y|ay|ya){1000}b';

const event = (message: string, id: string) =>
  withEvent(loadFixture('pod-backoff-crashloop-resource-update'), (body, headers) => {
    body.metadata.uid = `uid-${id}`;
    body.message = message;
    headers['ce-id'] = id;
    headers['ce-type'] = 'dev.knative.apiserver.resource.add';
  });

const matchesRule = (pattern: string) => ({
  all: [{ fact: 'event', path: '$.message', operator: 'matches', value: pattern }],
});

describe('regex cost: program size', () => {
  it('a pattern whose program is over REGEX_MAX_PROGRAM_SIZE is refused, naming the repeat and its position', () => {
    assert.throws(
      () => compileRegex(SLOW),
      (err: RegexSyntaxError) =>
        err.tooLarge &&
        err.position === SLOW.indexOf('{1000}') &&
        /REGEX_MAX_PROGRAM_SIZE/.test(err.message) &&
        /"\{1000\}"/.test(err.message),
    );
    // Just over the cap once compiled (RE2 counts 602 instructions), and inside a /literal/ (positions count the "/").
    assert.throws(() => compileRegex('\\w{600}'), /compiles to 602 RE2 instructions, more than the 500 allowed/);
    assert.throws(
      () => compileRegex('/x(?:ab|cd){300}/i'),
      (err: RegexSyntaxError) => err.position === 11 && /compiles to \d+ RE2/.test(err.message),
    );
    const { problems } = buildRule('slow', matchesRule(SLOW));
    assert.match(
      problems.join('\n'),
      /conditions\.all\[0\]\.value: invalid regex .*REGEX_MAX_PROGRAM_SIZE.*at position 13/,
    );
  });

  it('ordinary patterns stay well inside the cap', () => {
    for (const pattern of [
      '^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$',
      '(?i)error|fail(ed|ure)|crash|oom',
      '^(?:(?:25[0-5]|2[0-4]\\d|1?\\d?\\d)\\.){3}(?:25[0-5]|2[0-4]\\d|1?\\d?\\d)$',
      '(?:a|y|ay|ya){70}b',
    ]) {
      assert.ok(compileRegex(pattern).programSize <= 500, pattern);
    }
  });

  it("a document's patterns together are bounded by REGEX_PROGRAM_BUDGET, and the document is refused by name", () => {
    // 250 distinct patterns of ≈ 400 instructions each: every one under the cap, ≈ 115,000 together.
    const conditions = {
      any: Array.from({ length: 250 }, (_, i) => ({
        fact: 'event',
        path: '$.message',
        operator: 'matches',
        value: `(?:a|y|ay|ya|b${i}){40}c`,
      })),
    };
    const document = {
      destinations: { d: { url: 'http://127.0.0.1:9/x' } },
      rules: [{ name: 'many', conditions, actions: [{ destination: 'd', body: '{ "x": 1 }' }] }],
    };
    const { compiled, problems } = compileDocument(document, 'hostile.yaml', { timeoutMs: 100 });
    assert.equal(compiled, undefined);
    assert.equal(problems.length, 1, problems.join('\n'));
    assert.match(
      problems[0],
      /^rules\[0\] \(many\)\.conditions\.any\[\d+\]\.value: the regexes of this document compile to more than 100000 RE2 instructions together \(REGEX_PROGRAM_BUDGET/,
    );
  });

  it('a pattern shared by many rules of one document is counted once', () => {
    const rules = Array.from({ length: 100 }, (_, i) => ({
      name: `r${i}`,
      conditions: matchesRule('(?:a|y|ay|ya){70}b'),
      actions: [{ destination: 'd', body: '{ "x": 1 }' }],
    }));
    const { compiled, problems } = compileDocument(
      { destinations: { d: { url: 'http://127.0.0.1:9/x' } }, rules },
      'shared.yaml',
      { timeoutMs: 100 },
    );
    assert.deepEqual(problems, []);
    assert.equal(compiled!.rules.length, 100);
  });
});

describe('regex cost: compiled programs live as long as their rules', () => {
  it('a rule dropped takes its compiled pattern with it', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const pattern = '(?:a|y|ay|ya|dropped){20}c';
    let built: ReturnType<typeof buildRule> | undefined = buildRule('held', matchesRule(pattern));
    assert.deepEqual(built.problems, []);
    const compiled = new WeakRef(compileRegex(pattern));
    assert.equal(compileRegex(pattern), compiled.deref(), 'the rule loaded it: the same program is found again');
    await new Promise((resolve) => setImmediate(resolve));
    gc();
    assert.ok(compiled.deref(), 'kept while the rule is held');
    built = undefined;
    for (let i = 0; i < 10 && compiled.deref(); i++) {
      await new Promise((resolve) => setImmediate(resolve));
      gc();
    }
    assert.equal(compiled.deref(), undefined, 'the program outlived its rule');
  });
});

describe('regex cost: MATCHES_MAX_INPUT_BYTES over real HTTP', () => {
  let sink: CaptureSink;
  let svc: RunningService;
  before(async () => {
    sink = await startCaptureSink();
    svc = await startService({
      config: { regex: { maxProgramSize: 500, programBudget: 100_000, maxInputBytes: 4096 } },
      rules: {
        'ok.yaml': `
destinations:
  d: { url: "${sink.url}/tail" }
rules:
  - name: tail
    conditions: { all: [ { fact: event, path: $.message, operator: matches, value: 'x(?:ab|cd){20}$' } ] }
    actions: [ { destination: d, body: '{ "m": "x" }' } ]
`,
        'slow.yaml': `
destinations:
  d: { url: "${sink.url}/slow" }
rules:
  - name: slow
    conditions: { all: [ { fact: event, path: $.message, operator: matches, value: '${SLOW}' } ] }
    actions: [ { destination: d, body: '{ "m": "x" }' } ]
`,
      },
    });
  });
  after(async () => {
    await svc.stop();
    await sink.close();
  });

  it('the slow pattern is refused at load, the other rule is in force', async () => {
    assert.equal(await svc.metric('kube_event_rules_rule_load_errors'), 1);
    const status = await (await fetch(`${svc.url}/status`)).text();
    assert.match(status, /REGEX_MAX_PROGRAM_SIZE/);
  });

  it('a text within the limit is matched; a longer one is not read, answers false and is counted', async () => {
    const within = await svc.post(event('y'.repeat(4000) + 'x' + 'ab'.repeat(20), 'within'));
    assert.equal(within.status, 204, within.text);
    assert.equal(sink.received('/tail').length, 1);
    const before = await svc.metric('kube_event_rules_matches_input_too_long_total');
    const longer = await svc.post(event('y'.repeat(5000) + 'x' + 'ab'.repeat(20), 'longer'));
    assert.equal(longer.status, 204, longer.text);
    assert.equal(sink.received('/tail').length, 1, 'a text over MATCHES_MAX_INPUT_BYTES matched');
    assert.equal((await svc.metric('kube_event_rules_matches_input_too_long_total')) - before, 1);
    // Multi-byte text is measured in UTF-8 bytes: 1,400 × "é€" is 7,000 bytes in 2,800 characters.
    const wide = await svc.post(event('é€'.repeat(1400) + 'x' + 'ab'.repeat(20), 'wide'));
    assert.equal(wide.status, 204, wide.text);
    assert.equal(sink.received('/tail').length, 1);
    assert.equal((await svc.metric('kube_event_rules_matches_input_too_long_total')) - before, 2);
  });
});
