/**
 * Every command explains itself: `kube-event-rules <command> --help` prints its usage and exits 0,
 * without running anything.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, it } from 'node:test';

const main = new URL('../../src/main.ts', import.meta.url).pathname;

describe('--help for every command', () => {
  for (const command of ['serve', 'validate', 'test', 'playground']) {
    it(`${command} --help`, () => {
      const run = spawnSync(process.execPath, ['--import', 'tsx', main, command, '--help'], {
        encoding: 'utf8',
        env: { ...process.env, PORT: '1' },
      });
      assert.equal(run.status, 0, run.stderr);
      assert.match(run.stdout, new RegExp(`^usage: kube-event-rules ${command === 'serve' ? '\\[serve\\]' : command}`));
      assert.match(run.stdout, /example: /);
      assert.equal(run.stderr, '');
    });
  }
  it('the top-level help points at them', () => {
    const run = spawnSync(process.execPath, ['--import', 'tsx', main, '--help'], { encoding: 'utf8' });
    assert.equal(run.status, 0);
    assert.match(run.stdout, /<command> --help explains one command/);
  });
});
