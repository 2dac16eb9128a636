/**
 * parseRuleTextOffThread parses a large rule text in a worker thread, so the event loop keeps serving while
 * a 1 MiB ConfigMap is read (the YAML parser blocked it for about a second per edit), and the parser's
 * garbage (≈ 300 bytes per byte of YAML) lives and dies in the worker's own heap, capped: a text too complex
 * to parse within the cap is a problem of that text, never an out-of-memory crash of the service.
 * Small texts are parsed in place: a worker costs more than they do. One worker at a time.
 */
import { Worker } from 'node:worker_threads';
import { parseRuleText, type ParsedDocuments } from './parse-rule-text.js';

/** Below this size a text is parsed on the event loop (≈ 10 ms of parsing at most). */
export const OFF_THREAD_BYTES = 16 * 1024;

/** The worker's heap cap: about four times what a 1 MiB document of rules needs. */
const WORKER_HEAP_MB = 256;

/**
 * The parser's time budget. A 1 MiB document of rules parses in 1–3 s on a busy 2-core machine; 60,000 keys
 * in one map take the parser (its duplicate-key check) 80 s, holding up every later load.
 */
const PARSE_BUDGET_MS = 20_000;

const WORKER_URL = new URL(import.meta.url.endsWith('.ts') ? './parse-worker.ts' : './parse-worker.js', import.meta.url)
  .href;

/** Worker threads do not inherit the TypeScript loader the tests and `npm start` run with; register it there too. */
const BOOT = `const { workerData } = require('node:worker_threads');
(async () => {
  if (workerData.url.endsWith('.ts')) (await import('tsx/esm/api')).register();
  await import(workerData.url);
})();`;

let queue: Promise<unknown> = Promise.resolve();

export function parseRuleTextOffThread(text: string, budgetMs = PARSE_BUDGET_MS): Promise<ParsedDocuments> {
  if (text.length < OFF_THREAD_BYTES) return Promise.resolve(parseRuleText(text));
  const run = queue.then(() => parseInWorker(text, budgetMs));
  queue = run.catch(() => undefined);
  return run;
}

function parseInWorker(text: string, budgetMs: number): Promise<ParsedDocuments> {
  return new Promise((resolve) => {
    const failed = (why: string) => resolve({ documents: [], problems: [`could not be parsed: ${why}`] });
    let worker: Worker;
    try {
      worker = new Worker(BOOT, {
        eval: true,
        workerData: { url: WORKER_URL, text },
        resourceLimits: { maxOldGenerationSizeMb: WORKER_HEAP_MB },
      });
    } catch (err) {
      failed(`no parser thread (${(err as Error).message})`);
      return;
    }
    let answered = false;
    const budget = setTimeout(() => {
      answered = true;
      failed(
        `parsing took longer than ${budgetMs / 1000} s (a document built to be slow to read, e.g. tens of thousands of keys in one map)`,
      );
      void worker.terminate();
    }, budgetMs);
    worker.once('message', (json: string) => {
      clearTimeout(budget);
      if (answered) return;
      answered = true;
      resolve(JSON.parse(json) as ParsedDocuments);
      void worker.terminate();
    });
    worker.once('error', (err: Error & { code?: string }) => {
      clearTimeout(budget);
      if (answered) return;
      answered = true;
      failed(
        err.code === 'ERR_WORKER_OUT_OF_MEMORY'
          ? `the parser needed more than ${WORKER_HEAP_MB} MB (a document too large or too deeply nested)`
          : err.message,
      );
    });
    worker.once('exit', (code) => {
      clearTimeout(budget);
      if (!answered) failed(`the parser thread stopped (exit code ${code})`);
    });
  });
}
