/**
 * The image's contents without a Docker engine: reproduce the final stage of the Dockerfile (parsed
 * from the Dockerfile itself) in a clean folder — production-only install from the lockfile, the
 * compiled dist/, the copied files — then start it with the image's command as a non-root user that
 * cannot write anywhere in it (read-only root filesystem) and check /readyz.
 */
import assert from 'node:assert/strict';
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, copyFileSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { describe, it } from 'node:test';
import { closedPort } from '../support/ports.js';

const repo = new URL('../../', import.meta.url).pathname;

interface FinalStage {
  workdir: string;
  env: Record<string, string>;
  copies: { from?: string; source: string; target: string }[];
  command: string[];
  user?: string;
}

/** finalStage reads the last FROM section of the Dockerfile: WORKDIR, ENV, COPY, USER, ENTRYPOINT + CMD. */
function finalStage(dockerfile: string): FinalStage {
  const lines = dockerfile
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));
  const last = lines
    .map((l, i) => (l.startsWith('FROM ') ? i : -1))
    .filter((i) => i >= 0)
    .pop()!;
  const stage: FinalStage = { workdir: '/', env: {}, copies: [], command: [] };
  let entrypoint: string[] = [];
  let cmd: string[] = [];
  for (const line of lines.slice(last + 1)) {
    const [instruction, ...rest] = line.split(/\s+/);
    const args = rest.join(' ');
    if (instruction === 'WORKDIR') stage.workdir = args;
    if (instruction === 'ENV') for (const [, k, v] of args.matchAll(/(\w+)=(\S+)/g)) stage.env[k] = v;
    if (instruction === 'USER') stage.user = args;
    if (instruction === 'ENTRYPOINT') entrypoint = JSON.parse(args) as string[];
    if (instruction === 'CMD') cmd = JSON.parse(args) as string[];
    if (instruction === 'COPY') {
      const from = /--from=(\S+)/.exec(args)?.[1];
      const [source, target] = args.replace(/--\S+\s*/g, '').split(/\s+/);
      stage.copies.push({ from, source, target: target.startsWith('/') ? target : join(stage.workdir, target) });
    }
  }
  stage.command = [...entrypoint, ...cmd];
  return stage;
}

describe('the image (final stage reproduced without a Docker engine)', () => {
  it('starts from a production-only install, as a non-root user on a read-only tree, and serves /readyz', async () => {
    const stage = finalStage(readFileSync(join(repo, 'Dockerfile'), 'utf8'));
    assert.equal(stage.user, '65532:65532', 'runs as a numeric non-root user');
    assert.deepEqual(stage.command, ['node', '--single-threaded-gc', '--expose-gc', 'dist/main.js', 'serve']);
    const rootfs = mkdtempSync(join(tmpdir(), 'ker-image-'));
    const at = (path: string) => join(rootfs, path);
    try {
      for (const copy of stage.copies) {
        mkdirSync(dirname(at(copy.target)), { recursive: true });
        if (copy.from === 'deps') {
          // The deps stage: `npm ci --omit=dev --ignore-scripts` from the lockfile, in a clean folder.
          mkdirSync(at(stage.workdir), { recursive: true });
          for (const file of ['package.json', 'package-lock.json'])
            copyFileSync(join(repo, file), at(join(stage.workdir, file)));
          execFileSync('npm', ['ci', '--omit=dev', '--ignore-scripts', '--prefer-offline', '--no-audit', '--no-fund'], {
            cwd: at(stage.workdir),
            stdio: 'pipe',
          });
          rmSync(at(join(stage.workdir, 'package-lock.json')));
        } else if (copy.from === 'build') {
          execFileSync(
            process.execPath,
            [
              join(repo, 'node_modules/typescript/bin/tsc'),
              '-p',
              join(repo, 'tsconfig.build.json'),
              '--outDir',
              at(copy.target),
            ],
            { stdio: 'pipe' },
          );
          execFileSync(
            process.execPath,
            [join(repo, 'node_modules/vite/bin/vite.js'), 'build', '--outDir', at(join(copy.target, 'web/playground'))],
            { cwd: repo, stdio: 'pipe' },
          );
        } else {
          cpSync(join(repo, copy.source), at(copy.target), { recursive: true });
        }
      }
      // No dev tooling made it in (@types/node is a production dependency of client-node 1.4, so it may).
      for (const dep of ['typescript', 'tsx', 'esbuild', 'kubernetes-models', '@types/koa']) {
        assert.throws(
          () => readFileSync(at(join(stage.workdir, 'node_modules', dep, 'package.json'))),
          `${dep} is not installed`,
        );
      }
      // The runtime: node at the image's path; everything owned by root and not writable by the app user.
      mkdirSync(at('usr/local/bin'), { recursive: true });
      copyFileSync(process.execPath, at('usr/local/bin/node'));
      chmodSync(at('usr/local/bin/node'), 0o755);
      chmodSync(rootfs, 0o755);

      const port = await closedPort();
      const env = Object.fromEntries(Object.entries(stage.env).map(([k, v]) => [k, v.startsWith('/') ? at(v) : v]));
      const asRoot = process.getuid?.() === 0;
      const [program, ...args] = [at('usr/local/bin/node'), ...stage.command.slice(1)];
      const [uid, gid] = (stage.user ?? '').split(':');
      const child = asRoot
        ? spawn('setpriv', [`--reuid=${uid}`, `--regid=${gid}`, '--clear-groups', program, ...args], {
            cwd: at(stage.workdir),
            env: { ...env, PORT: String(port), HOST: '127.0.0.1', CLUSTER: 'off' },
            stdio: ['ignore', 'pipe', 'pipe'],
          })
        : spawn(program, args, {
            cwd: at(stage.workdir),
            env: { ...env, PORT: String(port), HOST: '127.0.0.1', CLUSTER: 'off' },
            stdio: ['ignore', 'pipe', 'pipe'],
          });
      let output = '';
      child.stdout.on('data', (d: Buffer) => (output += d.toString()));
      child.stderr.on('data', (d: Buffer) => (output += d.toString()));
      try {
        const deadline = Date.now() + 20_000;
        let ready = false;
        while (!ready && Date.now() < deadline && child.exitCode === null) {
          ready = await fetch(`http://127.0.0.1:${port}/readyz`).then(
            (r) => r.status === 200,
            () => false,
          );
          if (!ready) await new Promise((r) => setTimeout(r, 100));
        }
        assert.ok(ready, `the image's service became ready:\n${output}`);
        const status = (await (await fetch(`http://127.0.0.1:${port}/status`)).json()) as {
          sources: { source: string }[];
        };
        assert.deepEqual(
          status.sources.map((s) => s.source),
          ['file:hpa-sender-compat.yaml'],
          'the bundled rule is loaded from RULES_DIR',
        );
        const playground = await fetch(`http://127.0.0.1:${port}/playground/`);
        assert.equal(playground.status, 200, 'the image serves the playground page');
        const context = (await (await fetch(`http://127.0.0.1:${port}/playground/api/context`)).json()) as {
          examples: unknown[];
        };
        assert.ok(context.examples.length > 0, 'with the example events');
      } finally {
        child.kill('SIGTERM');
        await new Promise((r) => child.once('exit', r));
      }
    } finally {
      rmSync(rootfs, { recursive: true, force: true });
    }
  });
});
