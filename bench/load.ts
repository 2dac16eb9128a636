/**
 * Load generation over loopback with node:http and a keep-alive agent: closed loop (N requests in
 * flight, as fast as the server answers) or open loop (a fixed rate, latency measured from the send).
 */
import { Agent, request } from 'node:http';

export interface LoadResult {
  sent: number;
  ok: number;
  errors: number;
  seconds: number;
  rate: number;
  p50: number;
  p99: number;
  /** Open loop: p99 counted from when the request actually left (what a coordinated-omission-prone tool reports). */
  p99FromSend?: number;
}

type Payload = { headers: Record<string, string>; body: string };

function post(agent: Agent, url: URL, payload: Payload): Promise<number> {
  return new Promise((resolve) => {
    const req = request(
      url,
      { method: 'POST', agent, headers: { ...payload.headers, 'content-length': Buffer.byteLength(payload.body) } },
      (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      },
    );
    req.on('error', () => resolve(0));
    req.end(payload.body);
  });
}

function summarize(latencies: number[], ok: number, errors: number, seconds: number): LoadResult {
  latencies.sort((a, b) => a - b);
  const at = (q: number) => latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))] ?? 0;
  return { sent: latencies.length, ok, errors, seconds, rate: ok / seconds, p50: at(0.5), p99: at(0.99) };
}

/** closedLoop keeps `concurrency` requests in flight for `seconds`. */
export async function closedLoop(
  target: string,
  make: (i: number) => Payload,
  concurrency: number,
  seconds: number,
  offset = 0,
): Promise<LoadResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: concurrency });
  const url = new URL(target);
  const latencies: number[] = [];
  let ok = 0;
  let errors = 0;
  let next = offset;
  const end = performance.now() + seconds * 1000;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < end) {
        const payload = make(next++);
        const t0 = performance.now();
        const status = await post(agent, url, payload);
        latencies.push(performance.now() - t0);
        if (status >= 200 && status < 300) ok++;
        else errors++;
      }
    }),
  );
  agent.destroy();
  return summarize(latencies, ok, errors, (performance.now() - started) / 1000);
}

/**
 * openLoop sends `rate` requests per second for `seconds`, whatever the answers take. Latency counts from
 * when a request was due, not when it left, so a stall anywhere shows up instead of being skipped over
 * (coordinated omission). Latencies go to a preallocated array and nothing per request is kept, so the
 * generator's own garbage collection stays out of the numbers.
 */
export async function openLoop(
  target: string,
  make: (i: number) => Payload,
  rate: number,
  seconds: number,
  offset = 0,
): Promise<LoadResult> {
  const agent = new Agent({ keepAlive: true, maxSockets: 256 });
  const url = new URL(target);
  const total = Math.round(rate * seconds);
  const latencies = new Float64Array(total);
  const fromSend = new Float64Array(total);
  let ok = 0;
  let errors = 0;
  let answered = 0;
  let allAnswered!: () => void;
  const done = new Promise<void>((resolve) => (allAnswered = resolve));
  const started = performance.now();
  for (let i = 0; i < total; i++) {
    const due = started + (i * 1000) / rate;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    const sent = performance.now();
    void post(agent, url, make(offset + i)).then((status) => {
      const now = performance.now();
      latencies[i] = now - due;
      fromSend[i] = now - sent;
      if (status >= 200 && status < 300) ok++;
      else errors++;
      if (++answered === total) allAnswered();
    });
  }
  if (total > 0) await done;
  agent.destroy();
  const sendSorted = Array.from(fromSend).sort((a, b) => a - b);
  return {
    ...summarize(Array.from(latencies), ok, errors, (performance.now() - started) / 1000),
    p99FromSend: sendSorted[Math.floor(0.99 * sendSorted.length)] ?? 0,
  };
}
