/**
 * A real forward proxy for tests: Debian's tinyproxy in the foreground on 127.0.0.1, with a generated config
 * (optionally Basic authentication), its log kept to see which requests and CONNECT tunnels it carried.
 * Bounded: stopped by `stop()`, and by `timeout` after 5 minutes if the test process dies first.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:net';
import { closedPort } from './ports.js';

export interface Tinyproxy {
  url: string;
  host: string;
  /** The request lines it logged ("CONNECT 127.0.0.1:4431 HTTP/1.1", "POST http://… HTTP/1.1"). */
  requests(): string[];
  stop(): Promise<void>;
}

export async function startTinyproxy(options: { auth?: { user: string; password: string } } = {}): Promise<Tinyproxy> {
  const dir = mkdtempSync(join(tmpdir(), 'ker-tinyproxy-'));
  const port = await closedPort();
  const config = join(dir, 'tinyproxy.conf');
  writeFileSync(
    config,
    [
      `Port ${port}`,
      'Listen 127.0.0.1',
      'Timeout 10',
      'MaxClients 20',
      'LogLevel Connect',
      'Allow 127.0.0.1',
      'DisableViaHeader Yes',
      ...(options.auth ? [`BasicAuth ${options.auth.user} ${options.auth.password}`] : []),
      '',
    ].join('\n'),
  );
  // `timeout` bounds it even if this process is killed before stop().
  const child = spawn('timeout', ['300', 'tinyproxy', '-d', '-c', config], { stdio: ['pipe', 'pipe', 'pipe'] });
  let log = '';
  child.stdout.on('data', (chunk: Buffer) => (log += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (log += chunk.toString()));
  const exited = new Promise<void>((resolve) => child.on('exit', () => resolve()));
  for (let i = 0; ; i++) {
    const up = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1', () => (socket.destroy(), resolve(true)));
      socket.on('error', () => resolve(false));
    });
    if (up) break;
    if (i > 100 || child.exitCode !== null) throw new Error(`tinyproxy did not start: ${log}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url: `http://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    requests: () => [...log.matchAll(/Request \(file descriptor \d+\): (.*)$/gm)].map((m) => m[1]),
    async stop() {
      child.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
