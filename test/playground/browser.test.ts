/**
 * The rule playground in a real browser (Debian's Chromium) against the running service: pick an example
 * event, break the JSONata and see the error at its place in the file, fix it, add a condition on the
 * namespace and see the match go, give the cluster objects and see it come back with the rendered body
 * changed; then save the golden case and check `kube-event-rules test --expect` agrees with it, and copy the
 * document as a ConfigMap. A screenshot of each state goes to test-artifacts/.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Page } from 'playwright-core';
import { parse } from 'yaml';
import { testCommand } from '../../src/cli/test-rules.js';
import { PAGE_DIR } from '../../src/playground/static-page.js';
import { launchChromium } from '../support/browser.js';
import { loadFixture } from '../support/fixtures.js';
import { needs } from '../support/needs.js';
import { startService, type RunningService } from '../support/running-service.js';

const ARTIFACTS = new URL('../../test-artifacts/', import.meta.url).pathname;
const TOKEN = 'playground-hook-token-7f3a9c';
const ADMIN = 'playground-admin-token-51be';

const RULES = `destinations:
  hook:
    url: https://hooks.example.com/services/T0/B0
    headers:
      Authorization: { env: HOOK_TOKEN, prefix: "Bearer " }
rules:
  - name: crash-loops
    conditions:
      all:
        - { fact: event, path: $.reason, operator: equal, value: BackOff }
    actions:
      - destination: hook
        body: |
          {
            "text": involvedObject.name & ": " & message
          }
`;

/** The body broken on its second line: an unclosed call. */
const BROKEN = RULES.replace('involvedObject.name & ": " & message', 'involvedObject.name & ": " & $uppercase(message');

/** Fixed, reading the namespace's labels and the Pod's last exit, and only for prod namespaces. */
const WITH_NAMESPACE = RULES.replace(
  '        - { fact: event, path: $.reason, operator: equal, value: BackOff }\n',
  '        - { fact: event, path: $.reason, operator: equal, value: BackOff }\n        - { fact: namespace, path: $.labels.tier, operator: equal, value: prod }\n',
).replace(
  '"text": involvedObject.name & ": " & message',
  '"text": involvedObject.name & ": " & message,\n            "team": $namespace.labels.team,\n            "lastExit": $object.status.containerStatuses[0].lastState.terminated.reason',
);

const OBJECTS = `apiVersion: v1
kind: Namespace
metadata: { name: shop, labels: { tier: prod, team: payments } }
---
apiVersion: v1
kind: Pod
metadata: { name: payment-5c7d9b8f6-2m4rt, namespace: shop }
status:
  containerStatuses:
  - name: payment
    lastState: { terminated: { reason: OOMKilled, exitCode: 137 } }
`;

describe('rule playground in Chromium', { skip: needs('chromium') }, () => {
  let running: RunningService;
  let browser: Awaited<ReturnType<typeof launchChromium>>;
  let page: Page;
  const problems: string[] = [];

  before(async () => {
    if (!existsSync(join(PAGE_DIR, 'index.html'))) {
      const build = spawnSync('npx', ['vite', 'build'], {
        cwd: new URL('../../', import.meta.url).pathname,
        encoding: 'utf8',
      });
      assert.equal(build.status, 0, build.stderr);
    }
    await mkdir(ARTIFACTS, { recursive: true });
    const secrets = await mkdtemp(join(tmpdir(), 'ker-admin-'));
    await writeFile(join(secrets, 'admin-token'), ADMIN);
    running = await startService({
      rules: { 'crash-loops.yaml': RULES },
      env: { HOOK_TOKEN: TOKEN },
      config: { auth: { tokenFile: '', adminTokenFile: join(secrets, 'admin-token') } },
    });
    // An event the service received (it matches nothing): the playground offers it, redacted.
    const received = await running.post(loadFixture('hpa-successful-rescale-up-resource-add.json'));
    assert.equal(received.status, 204);
    browser = await launchChromium();
    page = browser.context.pages()[0] ?? (await browser.context.newPage());
    page.on('pageerror', (err) => problems.push(err.message));
    page.on('requestfailed', (request) => problems.push(`request failed: ${request.url()}`));
    page.on('request', (request) => {
      if (
        !request.url().startsWith(running.url) &&
        !request.url().startsWith('blob:') &&
        !request.url().startsWith('data:')
      )
        problems.push(`left the service: ${request.url()}`);
    });
  });

  after(async () => {
    await browser?.close();
    await running?.stop();
  });

  const shot = (name: string) => page.screenshot({ path: join(ARTIFACTS, `playground-${name}.png`) });
  const editor = () => page.getByRole('textbox', { name: /Rule document \(YAML/ });
  const summary = () => page.locator('#summary');

  /** The page's document, inside functions that run in the page (the test project has no DOM types). */
  type PageDocument = {
    querySelector(selector: string): { textContent: string | null; value?: string } | null;
    querySelectorAll(selector: string): { length: number };
  };
  const waitFor = (
    selector: string,
    test: 'text' | 'value-starts' | 'value-includes' | 'count',
    expected: string | number,
  ) =>
    page.waitForFunction(
      ([selector, test, expected]) => {
        const doc = (globalThis as unknown as { document: PageDocument }).document;
        if (test === 'count') return doc.querySelectorAll(selector).length === expected;
        const element = doc.querySelector(selector);
        if (test === 'text') return element?.textContent === expected;
        if (test === 'value-starts') return element?.value?.startsWith(String(expected)) === true;
        return element?.value?.includes(String(expected)) === true;
      },
      [selector, test, expected] as const,
    );

  /** Waits until the page shows the evaluation of the current inputs. */
  async function settled(): Promise<void> {
    await waitFor('#status', 'text', 'Up to date');
  }

  it('shows an example event matched, with the deciding condition and the rendered request (secrets redacted)', async () => {
    await page.goto(`${running.url}/playground/`);
    // The API needs the admin token, as /dry-run does: the page asks for it.
    await page.getByLabel('Admin token').fill(ADMIN);
    await page.keyboard.press('Enter');
    await page.waitForSelector('body[data-state=ready]');
    assert.equal(
      await page.getByLabel('Start from').first().inputValue(),
      'example:pod-backoff-crashloop-resource-update.json',
    );
    assert.equal(await page.getByLabel('Start from').nth(1).inputValue(), 'crash-loops.yaml');
    await settled();
    assert.equal(await summary().textContent(), 'Matched: crash-loops');
    const decided = page.locator('tr.decided');
    assert.match((await decided.first().textContent()) ?? '', /event \$\.reason equal "BackOff""BackOff"/);
    const request = page.locator('.request');
    assert.match((await request.textContent()) ?? '', /POST https:\/\/hooks\.example\.com\/services\/T0\/B0/);
    const headers = await request.locator('.headers > *').allTextContents();
    assert.deepEqual(headers, ['content-type', 'application/json', 'authorization', '[redacted]']);
    assert.doesNotMatch(await page.content(), new RegExp(TOKEN));
    assert.deepEqual(JSON.parse((await request.locator('pre.body').textContent()) ?? ''), {
      text: 'payment-5c7d9b8f6-2m4rt: Back-off restarting failed container payment in pod payment-5c7d9b8f6-2m4rt_shop(1710a6cd-4d03-4b2f-9fd8-2fe8f4132a13)',
    });
    await shot('1-example-matched');
  });

  it('offers the events the service received', async () => {
    const options = await page.locator('#event-pick optgroup[label^="Received"] option').allTextContents();
    assert.equal(options.length, 1);
    assert.match(options[0], /SuccessfulRescale HorizontalPodAutoscaler\//);
  });

  it('underlines a JSONata error at its line and column in the file', async () => {
    await editor().fill(BROKEN);
    await page.waitForSelector('#problems li');
    await settled();
    const problem = (await page.locator('#problems li').first().textContent()) ?? '';
    // Line 16 of the file is `"text": …`; the unclosed `(` leaves the parser at the closing `}` on line 17.
    const lines = BROKEN.split('\n');
    const closing = lines.findIndex((l, i) => i > 14 && l.trim() === '}');
    assert.match(
      problem,
      new RegExp(
        `^line ${closing + 1}, column ${lines[closing].indexOf('}') + 1} rules\\[0\\] \\(crash-loops\\)\\.actions\\[0\\]\\.body: S0202: Expected "\\)", got "\\}" at line ${closing + 1}, column ${lines[closing].indexOf('}') + 1} of the file`,
      ),
    );
    assert.equal(await page.locator('.cm-lintRange-error').count(), 1);
    assert.equal(await page.locator('.cm-lintRange-error').textContent(), '}');
    assert.match((await summary().textContent()) ?? '', /1 problem/);
    await shot('2-jsonata-broken');
  });

  it('fixed, with a condition on the namespace: no match without the cluster objects (the fact is null)', async () => {
    await editor().fill(WITH_NAMESPACE);
    await waitFor('#problems li', 'count', 0);
    await settled();
    assert.equal(await summary().textContent(), 'No rule matched (1 rule in the document).');
    const decided = (await page.locator('tr.decided').allTextContents()).join('\n');
    assert.match(decided, /namespace \$\.labels\.tier equal "prod"null/);
    assert.equal(await page.locator('.request').count(), 0);
    await shot('3-condition-no-match');
  });

  it('with the Namespace and Pod pasted as objects it matches, and the body carries their values', async () => {
    await page.locator('#objects summary').click();
    await page.getByLabel(/Manifests as/).fill(OBJECTS);
    await waitFor('#summary', 'text', 'Matched: crash-loops');
    await settled();
    const decided = (await page.locator('tr.decided').allTextContents()).join('\n');
    assert.match(decided, /namespace \$\.labels\.tier equal "prod""prod"/);
    const body = JSON.parse((await page.locator('.request pre.body').textContent()) ?? '') as Record<string, unknown>;
    assert.equal(body.team, 'payments');
    assert.equal(body.lastExit, 'OOMKilled');
    await shot('4-objects-matched');
  });

  it('is usable from the keyboard: typing into the editor re-evaluates', async () => {
    await editor().focus();
    await page.keyboard.press('Control+End');
    await page.keyboard.type('# edited from the keyboard\n');
    await settled();
    assert.equal(await summary().textContent(), 'Matched: crash-loops');
    // Tab leaves the editor (it does not indent), so the keyboard reaches the rest of the page.
    await page.keyboard.press('Tab');
    assert.equal(
      await page.evaluate(
        () =>
          (
            globalThis as unknown as { document: { activeElement: { closest(s: string): unknown } | null } }
          ).document.activeElement?.closest('.cm-editor') ?? null,
      ),
      null,
    );
    assert.ok(!(await editor().innerText()).includes('\t'), 'the Tab typed nothing');
    for (const name of ['Save as golden test case', 'Copy as ConfigMap', 'Refresh received'])
      assert.equal(await page.getByRole('button', { name }).count(), 1);
    for (const label of ['Test case name', 'ConfigMap name', 'in namespace', /^Event — /])
      assert.equal(await page.getByLabel(label).count(), 1);
  });

  it('saves a golden case that `kube-event-rules test --expect` accepts', async () => {
    const folder = await mkdtemp(join(tmpdir(), 'ker-golden-'));
    await page.getByLabel('Test case name').fill('crash');
    await settled();
    const downloads: string[] = [];
    page.on('download', (download) => {
      downloads.push(download.suggestedFilename());
      void download.saveAs(join(folder, download.suggestedFilename()));
    });
    await page.getByRole('button', { name: 'Save as golden test case' }).click();
    await waitFor('#export-text', 'value-starts', 'kube-event-rules test');
    await page.waitForTimeout(500);
    assert.deepEqual(downloads.sort(), [
      'crash.event.json',
      'crash.expected.json',
      'crash.objects.yaml',
      'crash.rules.yaml',
    ]);
    const command = await page.locator('#export-text').inputValue();
    assert.equal(
      command,
      'kube-event-rules test --rules crash.rules.yaml --objects crash.objects.yaml --expect crash.expected.json crash.event.json',
    );
    const lines: string[] = [];
    const cwd = process.cwd();
    process.chdir(folder);
    const env = process.env.HOOK_TOKEN;
    process.env.HOOK_TOKEN = TOKEN;
    try {
      const code = await testCommand(
        command.split(' ').slice(2),
        (l) => lines.push(l),
        async () => '',
      );
      assert.equal(code, 0, lines.join('\n'));
    } finally {
      process.chdir(cwd);
      if (env === undefined) delete process.env.HOOK_TOKEN;
      else process.env.HOOK_TOKEN = env;
    }
    assert.match(lines.join('\n'), /✓ matches crash\.expected\.json \(1 events\)/);
    assert.doesNotMatch(await readFile(join(folder, 'crash.expected.json'), 'utf8'), new RegExp(TOKEN));
  });

  it('copies the document as a labelled ConfigMap', async () => {
    await page.getByLabel('ConfigMap name').fill('shop-rules');
    await page.getByLabel('in namespace').fill('shop');
    await page.getByRole('button', { name: 'Copy as ConfigMap' }).click();
    await waitFor('#export-text', 'value-includes', 'kind: ConfigMap');
    const manifest = parse(await page.locator('#export-text').inputValue()) as {
      metadata: { name: string; namespace: string; labels: Record<string, string> };
      data: Record<string, string>;
    };
    assert.deepEqual(manifest.metadata, {
      name: 'shop-rules',
      namespace: 'shop',
      labels: { 'kube-event-rules/rules': 'true' },
    });
    assert.equal(manifest.data['rules.yaml'], `${WITH_NAMESPACE}# edited from the keyboard\n`);
    await shot('5-configmap');
  });

  it('shows a shadow rule beside its live twin, with the difference in the rendered body', async () => {
    const shadowed = `${RULES}  - name: crash-loops
    shadow: true
    conditions:
      all:
        - { fact: event, path: $.reason, operator: equal, value: BackOff }
    actions:
      - destination: hook
        body: '{ "text": "[" & involvedObject.namespace & "] " & message }'
`;
    await editor().fill(shadowed);
    await page.waitForSelector('.shadow');
    await settled();
    const text = (await page.locator('.shadow').textContent()) ?? '';
    assert.match(text, /crash-loops: shadow matched, live rule matched — 1 difference/);
    assert.match(text, /action 0 \(hook\): body\.text: "\[shop\] Back-off/);
    assert.match(
      (await page.locator('.rule h3').allTextContents()).join('\n'),
      /crash-loops \(shadow: never sends\) matched/,
    );
    await shot('6-shadow');
  });

  it('loaded nothing from anywhere but the service and threw no error', () => {
    assert.deepEqual(problems, []);
  });
});
