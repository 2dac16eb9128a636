/**
 * A real HTTP server on 127.0.0.1 that records every request and answers as told: by default 200,
 * or per path a queue of behaviours (status codes, 429 with Retry-After, hang, connection reset).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Captured {
  method: string;
  path: string;
  headers: Record<string, string | string[] | undefined>;
  body: string;
  json(): unknown;
}

export type Behaviour =
  | number
  | { status: number; retryAfter?: string; body?: string; delayMs?: number; headers?: Record<string, string> }
  | 'hang'
  | 'reset';

export interface CaptureSink {
  url: string;
  requests: Captured[];
  /** Queue behaviours for a path; once the queue is empty, requests get 200. */
  respond(path: string, ...behaviours: Behaviour[]): void;
  /** Answer every request to `path` this way until cleared. */
  always(path: string, behaviour: Behaviour | undefined): void;
  received(path: string): Captured[];
  /** Answers the requests to `path` held by 'hang' with this status (default 200). */
  release(path: string, status?: number): void;
  /** Resolves once `count` requests to `path` arrived (bounded by a timeout). */
  waitFor(path: string, count: number, timeoutMs?: number): Promise<Captured[]>;
  close(): Promise<void>;
}

export async function startCaptureSink(): Promise<CaptureSink> {
  const requests: Captured[] = [];
  const queues = new Map<string, Behaviour[]>();
  const fixed = new Map<string, Behaviour>();
  const hanging = new Map<ServerResponse, string>();

  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const path = (req.url ?? '/').split('?')[0];
      requests.push({
        method: req.method ?? '',
        path,
        headers: req.headers,
        body,
        json: () => JSON.parse(body) as unknown,
      });
      const behaviour = queues.get(path)?.shift() ?? fixed.get(path) ?? 200;
      if (behaviour === 'hang') {
        hanging.set(res, path);
        return;
      }
      if (behaviour === 'reset') {
        req.socket.destroy();
        return;
      }
      const spec = typeof behaviour === 'number' ? { status: behaviour } : behaviour;
      const headers: Record<string, string> = { 'content-type': 'application/json' };
      if (spec.retryAfter !== undefined) headers['retry-after'] = spec.retryAfter;
      Object.assign(headers, spec.headers);
      const answer = () => {
        res.writeHead(spec.status, headers);
        res.end(spec.body ?? JSON.stringify({ ok: spec.status < 300 }));
      };
      if (spec.delayMs) setTimeout(answer, spec.delayMs);
      else answer();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;

  const received = (path: string) => requests.filter((r) => r.path === path);
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    respond: (path, ...behaviours) => queues.set(path, [...(queues.get(path) ?? []), ...behaviours]),
    always: (path, behaviour) => (behaviour === undefined ? fixed.delete(path) : fixed.set(path, behaviour)),
    received,
    release(path, status = 200) {
      for (const [res, held] of hanging) {
        if (held !== path) continue;
        hanging.delete(res);
        res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify({ ok: status < 300 }));
      }
    },
    async waitFor(path, count, timeoutMs = 5000) {
      const end = Date.now() + timeoutMs;
      while (received(path).length < count) {
        if (Date.now() > end)
          throw new Error(`waited ${timeoutMs} ms for ${count} requests to ${path}, got ${received(path).length}`);
        await new Promise((r) => setTimeout(r, 10));
      }
      return received(path);
    },
    async close() {
      for (const res of hanging.keys()) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
