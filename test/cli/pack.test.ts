/**
 * The CLI people install: `npm pack` makes a package that works on its own. From a clean folder, far from
 * this repository and its node_modules, `npx ./kube-event-rules-<version>.tgz` runs --version, validate,
 * test and playground. npx installs the package's dependencies with --prefer-offline (from the npm cache
 * when it has them), so this is an end-to-end suite: `npm run test:e2e` and CI run it (E2E_REQUIRED=1),
 * or PACK_TEST=1.
 */
import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import { copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { after, before, describe, it } from 'node:test';

const run = promisify(execFile);
const repo = new URL('../../', import.meta.url).pathname;
const wanted = process.env.E2E_REQUIRED === '1' || process.env.PACK_TEST === '1';

const RULES = `destinations:
  out: { kind: log }
rules:
  - name: crash-loops
    conditions:
      all:
        - { fact: event, path: $.reason, operator: equal, value: BackOff }
        - { fact: namespace, path: $.labels.tier, operator: equal, value: prod }
    actions:
      - destination: out
        body: '{ "team": $namespace.labels.team }'
`;
const NAMESPACE = 'apiVersion: v1\nkind: Namespace\nmetadata: { name: shop, labels: { tier: prod, team: payments } }\n';

describe(
  'npm pack: the CLI from a clean folder',
  { skip: wanted ? false : 'end-to-end (npm pack + npx): npm run test:e2e or PACK_TEST=1 runs it' },
  () => {
    let folder: string;
    let tarball: string;
    // The user's environment, without what `npm test` adds for this repository.
    const env: NodeJS.ProcessEnv = Object.fromEntries(
      Object.entries(process.env).filter(([k]) => !k.startsWith('npm_')),
    );
    env.npm_config_update_notifier = 'false';
    const npx = (...args: string[]) =>
      run('npx', ['--yes', '--prefer-offline', `./${tarball}`, ...args], { cwd: folder, env, timeout: 300_000 }).catch(
        (err: { code?: number; stdout?: string; stderr?: string }) => err,
      );

    before(async () => {
      folder = await mkdtemp(join(tmpdir(), 'ker-clean-'));
      const packed = await run('npm', ['pack', '--pack-destination', folder, '--silent'], {
        cwd: repo,
        env: { ...env, npm_config_loglevel: 'error' },
        timeout: 300_000,
        maxBuffer: 64 * 1024 * 1024,
      });
      tarball = packed.stdout.trim().split('\n').pop()!;
      assert.match(tarball, /^kube-event-rules-\d+\.\d+\.\d+.*\.tgz$/);
      await mkdir(join(folder, 'rules'));
      await writeFile(join(folder, 'rules', 'crash.yaml'), RULES);
      await writeFile(join(folder, 'objects.yaml'), NAMESPACE);
      await copyFile(
        join(repo, 'examples/events/pod-backoff-crashloop-resource-update.json'),
        join(folder, 'backoff.json'),
      );
    });
    after(async () => {
      if (folder) await rm(folder, { recursive: true, force: true });
    });

    it('--version prints the package version', async () => {
      const { version } = JSON.parse(await readFile(join(repo, 'package.json'), 'utf8')) as { version: string };
      const result = await npx('--version');
      assert.equal(result.stdout?.trim(), version, result.stderr);
    });

    it('validate checks a rule file', async () => {
      const result = await npx('validate', 'rules');
      assert.equal(result.stdout?.trim(), 'ok: 1 rule source, 1 rule', result.stderr);
    });

    it('test runs an event through the rules with cluster objects from manifests', async () => {
      const result = await npx('test', '--rules', 'rules', '--objects', 'objects.yaml', '--json', 'backoff.json');
      const [report] = JSON.parse(result.stdout ?? '[]') as {
        matched: string[];
        actions: { request: { body: unknown } }[];
      }[];
      assert.deepEqual(report.matched, ['crash-loops'], result.stderr);
      assert.deepEqual(report.actions[0].request.body, { team: 'payments' });
    });

    it('playground serves the page and its API on 127.0.0.1', async () => {
      const child = spawn('npx', ['--yes', '--prefer-offline', `./${tarball}`, 'playground', 'rules', '--port', '0'], {
        cwd: folder,
        env,
        detached: true,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let output = '';
      child.stdout.on('data', (d: Buffer) => (output += d.toString()));
      child.stderr.on('data', (d: Buffer) => (output += d.toString()));
      try {
        const url = await new Promise<string>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`no URL printed:\n${output}`)), 120_000);
          child.stdout.on('data', () => {
            const found = /http:\/\/127\.0\.0\.1:\d+\/playground\//.exec(output);
            if (found) {
              clearTimeout(timer);
              resolve(found[0]);
            }
          });
          child.once('exit', (code) => reject(new Error(`exited ${code}:\n${output}`)));
        });
        const page = await fetch(url);
        assert.equal(page.status, 200);
        assert.match(await page.text(), /rule playground/);
        const context = (await (await fetch(`${url}api/context`)).json()) as {
          mode: string;
          documents: { name: string }[];
          examples: unknown[];
        };
        assert.equal(context.mode, 'local');
        assert.deepEqual(
          context.documents.map((d) => d.name),
          ['crash.yaml'],
        );
        assert.ok(context.examples.length > 0, 'the package carries the example events');
      } finally {
        // npx runs the CLI in a child of its own: stop the whole group we started.
        if (child.exitCode === null) process.kill(-child.pid!, 'SIGTERM');
        await new Promise((resolve) => (child.exitCode === null ? child.once('exit', resolve) : resolve(undefined)));
      }
    });
  },
);
