/**
 * Graceful shutdown with the Redis store (Debian's redis-server, the service as a child process): slow
 * deliveries in flight at SIGTERM finish, are answered and are recorded in Redis before it is closed, so
 * the Broker's redelivery after a restart sends nothing again.
 */
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { describe, it } from 'node:test';
import { redisBehindSink } from '../support/redis-behind-sink.js';
import { bodyOf, loadFixture, withEvent } from '../support/fixtures.js';
import { needs } from '../support/needs.js';
import { closedPort } from '../support/ports.js';

const EVENTS = 20;

function startProcess(env: Record<string, string>) {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', 'serve'], {
    env: { ...process.env, HOST: '127.0.0.1', LOG_LEVEL: 'info', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const records: Record<string, any>[] = [];
  createInterface({ input: child.stdout! }).on('line', (line) => {
    if (line.startsWith('{')) records.push(JSON.parse(line) as Record<string, any>);
  });
  child.stderr!.resume();
  const exited = new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));
  return { child, records, exited };
}

describe('shutdown with the Redis store', { skip: needs('redis-server') }, () => {
  const setup = redisBehindSink();

  it(
    'slow actions in flight at SIGTERM are delivered, answered and recorded: no resend after the restart',
    { timeout: 60_000 },
    async () => {
      const rulesDir = await mkdtemp(join(tmpdir(), 'ker-shutdown-'));
      await writeFile(
        join(rulesDir, 'r.yaml'),
        `
destinations: { slow: { url: "${setup.sink.url}/slow", timeoutSeconds: 5 } }
rules:
  - name: every-rescale
    conditions: { all: [ { fact: event, path: $.reason, operator: equal, value: SuccessfulRescale } ] }
    actions: [ { destination: slow, body: '{ "uid": metadata.uid }' } ]
`,
      );
      setup.sink.always('/slow', { status: 200, delayMs: 1500 });
      const port = await closedPort();
      const env = {
        PORT: String(port),
        RULES_DIR: rulesDir,
        REDIS_URL: setup.redis.url,
        SHUTDOWN_TIMEOUT_SECONDS: '10',
      };
      const events = Array.from({ length: EVENTS }, (_, i) =>
        withEvent(loadFixture('hpa-successful-rescale-up-resource-add'), (body, headers) => {
          body.metadata.uid = `shutdown-${i}`;
          headers['ce-id'] = `shutdown-ce-${i}`;
        }),
      );
      const post = (fixture: (typeof events)[number]) =>
        fetch(`http://127.0.0.1:${port}/`, { method: 'POST', headers: fixture.headers, body: bodyOf(fixture) }).then(
          (r) => r.status,
          () => 0,
        );
      const ready = async () => {
        for (let i = 0; i < 300; i++) {
          if (
            await fetch(`http://127.0.0.1:${port}/readyz`).then(
              (r) => r.ok,
              () => false,
            )
          )
            return;
          await new Promise((r) => setTimeout(r, 50));
        }
        throw new Error('service not ready');
      };

      const first = startProcess(env);
      await ready();
      const answers = events.map(post);
      await setup.sink.waitFor('/slow', EVENTS, 10_000); // every delivery reached the destination, none answered yet
      first.child.kill('SIGTERM');
      assert.deepEqual(
        await Promise.all(answers),
        Array(EVENTS).fill(204),
        'in-flight events finished and were answered',
      );
      assert.equal(await first.exited, 0);
      assert.equal(
        first.records.filter((r) => /store|redis unavailable/.test(String(r.msg))).length,
        0,
        'no store failure while shutting down',
      );

      setup.sink.always('/slow', undefined);
      const second = startProcess(env);
      try {
        await ready();
        // The Broker redelivers (it never saw the answers, say): nothing is sent again.
        assert.deepEqual(await Promise.all(events.map(post)), Array(EVENTS).fill(204));
        assert.equal(setup.sink.received('/slow').length, EVENTS, 'no delivery sent twice');
        const skipped = () =>
          second.records.filter((r) => r.msg === 'already delivered for this occurrence; skipped').length;
        // Log lines arrive through a pipe.
        for (let i = 0; i < 100 && skipped() < EVENTS; i++) await new Promise((r) => setTimeout(r, 50));
        assert.equal(skipped(), EVENTS);
      } finally {
        second.child.kill('SIGTERM');
        await second.exited;
      }
    },
  );
});
