/**
 * Loading never takes the service down: a missing rules directory makes it not ready (and it recovers when
 * the directory appears); an alias bomb, an oversized or non-UTF-8 file and a subfolder are each a rejected
 * source of their own beside the good rules; a large document loads without stopping the event loop.
 */
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rename, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { RuleStore } from '../../src/rules/rule-store.js';
import { parseRuleTextOffThread } from '../../src/rules/parse-off-thread.js';
import { createMetrics, recordingLogger } from '../support/quiet.js';
import { loadFixture, withEvent } from '../support/fixtures.js';
import { waitUntil } from '../support/kube-fixtures.js';
import { startService } from '../support/running-service.js';

const GOOD = (name: string) => `
destinations:
  out: { kind: log }
rules:
  - name: ${name}
    conditions:
      all:
        - { fact: event, path: $.reason, operator: equal, value: BackOff }
    actions:
      - destination: out
        body: '{ "rule": $rule.name }'
`;

const ALIAS_BOMB = [
  'a: &a [lol, lol, lol, lol, lol, lol, lol, lol, lol]',
  ...'bcdefghi'.split('').map((k, i) => `${k}: &${k} [${Array(9).fill(`*${'abcdefghi'[i]}`).join(', ')}]`),
].join('\n');

const backoff = (n: number) =>
  withEvent(loadFixture('pod-backoff-crashloop-resource-update'), (body, headers) => {
    body.metadata.uid = `loading-${n}`;
    headers['ce-id'] = `loading-${n}`;
  });

type Status = { ready: boolean; sources: { source: string; rules: string[]; errors: string[] }[] };

/** A document of about `bytes` bytes, with unique rules (nothing cached). */
function largeDocument(bytes: number, tag: string): string {
  let out = 'destinations:\n  out: { kind: log }\nrules:\n';
  for (let i = 0; out.length < bytes; i++) {
    out += `  - name: ${tag}-${i}\n    conditions:\n      all:\n        - { fact: event, path: $.reason, operator: equal, value: Reason${i % 50} }\n        - { fact: event, path: $.message, operator: matches, value: "^Back-off ${tag} ${i}" }\n    actions:\n      - destination: out\n        body: '{ "text": message, "n": ${i}, "tag": "${tag}", "kind": involvedObject.kind }'\n`;
  }
  return out;
}

describe('loading rules', () => {
  it('a missing RULES_DIR: not ready, reported in /status, the metric and the log; ready once it appears', async () => {
    const parent = await mkdtemp(join(tmpdir(), 'ker-missing-'));
    const rulesDir = join(parent, 'rules');
    const svc = await startService({ config: { rulesDir, rulesRetryMs: 50 }, awaitReady: false });
    try {
      await waitUntil(
        'reported',
        async () => (await svc.metric('kube_event_rules_rule_load_errors', { source: `dir:${rulesDir}` })) === 1,
      );
      assert.equal((await fetch(`${svc.url}/readyz`)).status, 503);
      const status = (await (await fetch(`${svc.url}/status`)).json()) as Status;
      assert.equal(status.ready, false);
      assert.match(
        status.sources.find((s) => s.source === `dir:${rulesDir}`)!.errors[0],
        /RULES_DIR does not exist; not ready until it can be read/,
      );
      assert.ok(
        svc.logs.some(
          (l) =>
            l.level === 50 &&
            /RULES_DIR .* does not exist: not ready until it can be read; trying again/.test(String(l.msg)),
        ),
        'a clear error line',
      );
      assert.equal((await svc.post(backoff(1))).status, 503, 'events are not answered 2xx while no rules are loaded');

      // The directory appears whole (as a volume does): written aside, then renamed into place.
      await mkdir(`${rulesDir}.new`);
      await writeFile(join(`${rulesDir}.new`, 'good.yaml'), GOOD('appeared'));
      await rename(`${rulesDir}.new`, rulesDir);
      await svc.service.ready;
      assert.equal((await fetch(`${svc.url}/readyz`)).status, 200);
      const recovered = (await (await fetch(`${svc.url}/status`)).json()) as Status;
      assert.deepEqual(
        recovered.sources.map((s) => [s.source, s.errors]),
        [['file:good.yaml', []]],
      );
      assert.equal(await svc.metric('kube_event_rules_rule_load_errors', { source: `dir:${rulesDir}` }), 0);
      assert.equal((await svc.post(backoff(2))).status, 204);
      assert.deepEqual(
        svc.lines.map((l) => l.rule),
        ['appeared'],
      );
    } finally {
      await svc.stop();
    }
  });

  it('RULES_DIR="" means no directory: ready on the ConfigMaps (here: none), nothing reported', async () => {
    const svc = await startService({ config: { rulesDir: '' } });
    try {
      assert.equal((await fetch(`${svc.url}/readyz`)).status, 200);
      assert.deepEqual(svc.service.store.status(), []);
    } finally {
      await svc.stop();
    }
  });

  it('an alias bomb, an oversized file, too-deep JSON, a non-UTF-8 file and a subfolder are rejected sources beside a good rule', async () => {
    const nonUtf8 = Buffer.concat([Buffer.from(GOOD('latin1').replace('BackOff', 'Back')), Buffer.from([0xe9, 0x0a])]);
    const svc = await startService({
      rules: {
        'good.yaml': GOOD('good'),
        'bomb.yaml': ALIAS_BOMB,
        'huge.yaml': `# ${'x'.repeat(300_000)}\n${GOOD('huge')}`,
        'deep.json': `${'['.repeat(100_000)}${']'.repeat(100_000)}`,
      },
      config: { rulesMaxSourceBytes: 200_000 },
      awaitReady: false,
    });
    try {
      await writeFile(join(svc.rulesDir, 'latin1.yaml'), nonUtf8);
      await mkdir(join(svc.rulesDir, 'team-a'));
      await writeFile(join(svc.rulesDir, 'team-a', 'nested.yaml'), GOOD('nested'));
      await svc.service.rules.reload();
      await svc.service.ready;
      const status = (await (await fetch(`${svc.url}/status`)).json()) as Status;
      const errors = Object.fromEntries(status.sources.map((s) => [s.source, s.errors.join(' | ')]));
      assert.equal(errors['file:good.yaml'], '');
      assert.match(errors['file:bomb.yaml'], /more than 100 alias expansions/);
      assert.match(errors['file:huge.yaml'], /over the limit of 200000 \(RULES_MAX_SOURCE_BYTES\); not read/);
      assert.match(errors['file:deep.json'], /nested too deeply|Maximum call stack/);
      assert.match(errors['file:latin1.yaml'], /not UTF-8 text \(the first invalid byte is on line 12\)/);
      assert.match(errors['file:team-a/'], /a folder: files in subfolders of RULES_DIR are not read/);
      for (const source of ['file:bomb.yaml', 'file:huge.yaml', 'file:latin1.yaml', 'file:team-a/']) {
        assert.equal(await svc.metric('kube_event_rules_rule_load_errors', { source }), 1, source);
      }
      assert.equal((await svc.post(backoff(3))).status, 204);
      assert.deepEqual(
        svc.lines.map((l) => l.rule),
        ['good'],
        'the good rule serves; nothing from the subfolder',
      );
    } finally {
      await svc.stop();
    }
  });

  it('a 1 MB document is parsed in a worker and compiled in slices: the event loop keeps turning', async () => {
    const { log } = recordingLogger();
    const store = new RuleStore({ timeoutMs: 100 }, createMetrics(), log);
    const text = largeDocument(1_000_000, 'big'); // a ConfigMap holds at most 1 MiB
    let ticks = 0;
    const timer = setInterval(() => ticks++, 5);
    try {
      const problems = await store.updateInBackground('configmap:x/big/rules.yaml', text);
      assert.deepEqual(problems, []);
    } finally {
      clearInterval(timer);
    }
    assert.ok(store.current.rules.length > 1_500, `${store.current.rules.length} rules`);
    // The blocking load (update) gives the timer no turn at all; the background load gives it many.
    assert.ok(ticks >= 10, `the event loop turned ${ticks} times while the document loaded`);
  });

  it('aliases that expand a large anchor a hundred times are a problem of the document, not 100× the memory', () => {
    const { log } = recordingLogger();
    const store = new RuleStore({ timeoutMs: 100 }, createMetrics(), log);
    const anchor = Array.from({ length: 20_000 }, (_, i) => `x${i}`).join(', ');
    const text = `a: &a [${anchor}]\n${Array.from({ length: 99 }, (_, i) => `r${i}: *a`).join('\n')}`;
    assert.match(
      store.check('file:wide.yaml', text).problems.join(),
      /more than 1000000 values once its aliases are expanded/,
    );
  });

  it('a text the parser needs too long for is stopped and reported; the next parse runs normally', async () => {
    const slow = Array.from({ length: 60_000 }, (_, i) => `k${i}: v`).join('\n'); // the duplicate-key check is quadratic
    const parsed = await parseRuleTextOffThread(slow, 300);
    assert.deepEqual(parsed.documents, []);
    assert.match(parsed.problems.join(), /parsing took longer than 0.3 s/);
    const next = await parseRuleTextOffThread(largeDocument(64 * 1024, 'after'));
    assert.deepEqual(next.problems, []);
    assert.equal(next.documents.length, 1);
  });

  it('an unchanged text (a relist) is not parsed again; a changed one is', async () => {
    const { log } = recordingLogger();
    const store = new RuleStore({ timeoutMs: 100 }, createMetrics(), log);
    const text = largeDocument(64 * 1024, 'same');
    assert.deepEqual(await store.updateInBackground('configmap:a/b/c', text), []);
    const first = store.current.rules[0];
    assert.deepEqual(await store.updateInBackground('configmap:a/b/c', `${text}`), []);
    assert.equal(store.current.rules[0], first, 'the same compiled rule: nothing was rebuilt');
    await store.updateInBackground('configmap:a/b/c', text.replace('same-0', 'changed-0'));
    assert.equal(store.current.rules[0].name, 'changed-0');
    store.remove('configmap:a/b/c');
    await store.updateInBackground('configmap:a/b/c', text);
    assert.equal(store.current.rules[0].name, 'same-0', 'loaded again after a removal');
  });

  it('a background load overtaken by a newer version or a removal is dropped', async () => {
    const { log } = recordingLogger();
    const store = new RuleStore({ timeoutMs: 100 }, createMetrics(), log);
    const slow = store.updateInBackground('file:a.yaml', largeDocument(64 * 1024, 'old'));
    store.update('file:a.yaml', GOOD('newer'));
    await slow;
    assert.deepEqual(
      store.current.rules.map((r) => r.name),
      ['newer'],
    );
    const removed = store.updateInBackground('file:b.yaml', largeDocument(64 * 1024, 'gone'));
    store.remove('file:b.yaml');
    await removed;
    await store.settled();
    assert.deepEqual(
      store.current.rules.map((r) => r.name),
      ['newer'],
    );
  });
});
