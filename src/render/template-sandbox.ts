/**
 * TemplateSandbox: evaluates the templates the fast path does not answer in a few worker processes, so a
 * template can neither block the event loop nor take the service down:
 * - budget: a worker evaluates one template at a time and stops it when it has used `budgetMs` of the
 *   worker's own CPU time — a burst of correct templates queues for a worker instead of sharing one clock,
 *   and a busy machine slows an evaluation without making it trip;
 * - overrun: a worker still busy `overrunMs` after it was given an evaluation (a single native call the
 *   budget check cannot interrupt) is killed and replaced;
 * - memory: each worker's heap is capped (--max-old-space-size); running out ends that worker only;
 * - output: a result larger than maxOutputBytes is refused in the worker, before it is copied back.
 * Processes, not threads: a worker thread's heap cap does not survive one large allocation (a 100 MB string
 * from `$pad`, an array growing past the cap) — V8 then aborts the whole process; a child process dies alone.
 * Trips come back as TemplateErrors with a guard code (template-quarantine.ts). Inputs cross as structured
 * clones: plain JSON, with the enrichment facts the template reads already fetched.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { TemplateError, TemplateQueueError, describeError } from '../errors.js';
import {
  CPU_BUDGET,
  OUT_OF_MEMORY,
  OVERRUN,
  type SandboxAnswer,
  type SandboxTask,
  type WorkerMessage,
} from './sandbox-protocol.js';

export interface SandboxOptions {
  workers: number;
  /** CPU time one evaluation may use in its worker (TEMPLATE_TIMEOUT_MS). */
  budgetMs: number;
  /** Heap cap of each worker (old generation), MB. */
  heapMb: number;
  maxOutputBytes: number;
  /** Most evaluations waiting for a worker (TEMPLATE_QUEUE); one more is refused at once. */
  maxQueued?: number;
  /**
   * Wall-clock time after an evaluation was handed to a worker before the worker is killed; default 5 × budget + 500
   * ms.
   */
  overrunMs?: number;
  /** The worker's code; default template-worker (next to this file). */
  workerFile?: string;
}

export interface TemplateSandbox {
  /** Distinguishes sandboxes in the compiled-template cache. */
  readonly id: number;
  /** Evaluations waiting for a worker. */
  readonly queued: number;
  /** start starts the workers, if not yet running: called at load for a template outside the fast path. */
  start(): void;
  /**
   * render evaluates the template in a worker and gives its result as JSON text, or throws a TemplateError —
   * or a TemplateQueueError when the queue is full or `deadline` (ms since the epoch) passes before a worker takes it.
   */
  render(source: string, input: unknown, bindings: Record<string, unknown>, deadline?: number): Promise<string>;
  close(): Promise<void>;
}

export { CPU_BUDGET, OUT_OF_MEMORY, OVERRUN };

/** The worker's file: the TypeScript source under tsx (tests, bench), the compiled file in the image. */
const WORKER_FILE = fileURLToPath(
  new URL(import.meta.url.endsWith('.ts') ? './template-worker.ts' : './template-worker.js', import.meta.url),
);

interface Job {
  task: SandboxTask;
  settle(answer: SandboxAnswer | Error): void;
  /** Drops the job from the queue when its request's deadline passes first. */
  expiry?: NodeJS.Timeout;
}

/** Retry-After of an evaluation refused by a full queue or dropped at its deadline. */
const QUEUE_RETRY_AFTER_MS = 1000;
const DEFAULT_MAX_QUEUED = 2000;

interface Worker {
  child: ChildProcess;
  ready: boolean;
  job?: Job;
  timer?: NodeJS.Timeout;
  killed?: boolean;
}

let sandboxes = 0;

export function createTemplateSandbox(options: SandboxOptions): TemplateSandbox {
  const overrunMs = options.overrunMs ?? 5 * options.budgetMs + 500;
  const maxQueued = options.maxQueued ?? DEFAULT_MAX_QUEUED;
  const workers = new Set<Worker>();
  const queue: Job[] = [];
  let nextId = 0;
  let closed = false;
  /** After a worker died starting up, none is started again before this (no crash loop). */
  let startAfter = 0;

  const spawn = () => {
    const child = fork(options.workerFile ?? WORKER_FILE, [], {
      // The service's own flags (the TypeScript loader under tsx) without its heap size or debugger port, then the
      // worker's heap.
      execArgv: [
        ...process.execArgv.filter((arg) => !/^--(max-old-space-size|inspect)/.test(arg)),
        `--max-old-space-size=${options.heapMb}`,
        '--max-semi-space-size=2',
      ],
      serialization: 'advanced',
      // Templates never read the environment; the workers get none of it (Secrets may be in it).
      env: {},
      // A worker's fatal out-of-memory report is not for the service's log: the trip is logged as a guard.
      stdio: ['ignore', 'ignore', 'ignore', 'ipc'],
    });
    const worker: Worker = { child, ready: false };
    workers.add(worker);
    holdOpen();
    child.on('message', (message: WorkerMessage) => {
      if ('ready' in message) worker.ready = true;
      else if (worker.job?.task.id === message.id) finish(worker, message.answer);
      dispatch();
      holdOpen();
    });
    const exited = (code: number | null, signal: NodeJS.Signals | null) => {
      if (!workers.delete(worker)) return;
      clearTimeout(worker.timer);
      const job = worker.job;
      worker.job = undefined;
      if (job) {
        job.settle(
          worker.killed
            ? new TemplateError(
                `template still running ${overrunMs} ms after it started (CPU budget ${options.budgetMs} ms); its worker was stopped and replaced`,
                OVERRUN,
              )
            : signal === 'SIGABRT' || code === 134
              ? new TemplateError(
                  `template used more than the ${options.heapMb} MB heap of its worker (TEMPLATE_WORKER_HEAP_MB); the worker was replaced`,
                  OUT_OF_MEMORY,
                )
              : new Error(`template worker exited (${signal ?? `code ${code}`})`),
        );
      }
      if (!worker.ready) {
        // It died starting up: try again in a second (no crash loop); with no worker left, none would answer the queue.
        if (workers.size === 0)
          for (const waiting of queue.splice(0))
            waiting.settle(new Error(`template worker could not start (${signal ?? `code ${code}`})`));
        startAfter = Date.now() + 1000;
        setTimeout(start, 1000).unref();
      } else if (!closed) spawn();
      dispatch();
      holdOpen();
    };
    child.on('exit', exited);
    // A process that could not be started at all ends here, without an exit.
    child.on('error', () => (child.pid === undefined ? exited(null, null) : child.kill('SIGKILL')));
  };

  /** holdOpen: the workers keep the process alive only while there is work waiting for them. */
  const holdOpen = () => {
    const busy = closed || queue.length > 0 || [...workers].some((w) => w.job);
    for (const { child } of workers) {
      if (busy) child.ref();
      else child.unref();
      if (busy) child.channel?.ref();
      else child.channel?.unref();
    }
  };

  const finish = (worker: Worker, answer: SandboxAnswer) => {
    clearTimeout(worker.timer);
    const job = worker.job!;
    worker.job = undefined;
    job.settle(answer);
  };

  const dispatch = () => {
    for (const worker of workers) {
      if (queue.length === 0) return;
      if (!worker.ready || worker.job || worker.killed) continue;
      const job = queue.shift()!;
      clearTimeout(job.expiry);
      worker.job = job;
      worker.timer = setTimeout(() => {
        worker.killed = true;
        worker.child.kill('SIGKILL');
      }, overrunMs);
      try {
        worker.child.send(job.task, (err) => {
          if (err) worker.child.kill('SIGKILL');
        });
      } catch (err) {
        // Not structured-cloneable (a function in the bindings): a bug of ours, not of the template.
        clearTimeout(worker.timer);
        worker.job = undefined;
        job.settle(new Error(`template input cannot be sent to a worker: ${describeError(err)}`));
      }
    }
  };

  // Started when needed: a service whose templates all take the fast path runs no worker.
  function start() {
    if (closed || Date.now() < startAfter) return;
    while (workers.size < options.workers) spawn();
  }

  return {
    id: ++sandboxes,
    get queued() {
      return queue.length;
    },
    start,
    async render(source, input, bindings, deadline) {
      if (closed) throw new Error('template sandbox closed');
      if (workers.size === 0) start();
      if (workers.size === 0) throw new Error('template workers are not running (one failed to start; retrying)');
      if (queue.length >= maxQueued)
        throw new TemplateQueueError(
          `template workers busy: ${queue.length} evaluations already waiting (TEMPLATE_QUEUE)`,
          QUEUE_RETRY_AFTER_MS,
        );
      const task: SandboxTask = {
        id: nextId++,
        source,
        input,
        bindings,
        cpuBudgetMs: options.budgetMs,
        timeoutMs: 2 * overrunMs,
        maxOutputBytes: options.maxOutputBytes,
      };
      const enqueued = Date.now();
      const answer = await new Promise<SandboxAnswer | Error>((settle) => {
        const job: Job = { task, settle };
        if (deadline !== undefined) {
          // An evaluation whose request was answered is wasted work and delays the next requests: drop it.
          job.expiry = setTimeout(
            () => {
              const at = queue.indexOf(job);
              if (at < 0) return;
              queue.splice(at, 1);
              settle(
                new TemplateQueueError(
                  `template not evaluated: waited ${Date.now() - enqueued} ms for a template worker, until its request's deadline`,
                  QUEUE_RETRY_AFTER_MS,
                ),
              );
              holdOpen();
            },
            Math.max(0, deadline - Date.now()),
          );
          job.expiry.unref();
        }
        queue.push(job);
        dispatch();
        holdOpen();
      });
      if (answer instanceof Error) throw answer;
      if ('error' in answer) throw new TemplateError(answer.error.message, answer.error.code, answer.error.position);
      return answer.text;
    },
    async close() {
      closed = true;
      holdOpen(); // until they are gone
      for (const job of queue.splice(0)) {
        clearTimeout(job.expiry);
        job.settle(new Error('template sandbox closed'));
      }
      await Promise.all(
        [...workers].map((worker) => {
          const exited = new Promise((resolve) => worker.child.once('exit', resolve));
          worker.child.kill('SIGKILL');
          return exited;
        }),
      );
    },
  };
}
