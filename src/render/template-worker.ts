/**
 * A template worker process (started by template-sandbox.ts): evaluates one template at a time against a
 * CPU budget — this process's own CPU time, read every few evaluation steps — so neither a burst of other
 * events nor a busy machine makes a correct template trip. Compiles with the same options as the main thread
 * (JSONata's wall-clock timeout is only the far backstop here) and answers JSON text, or the error as plain
 * data (class instances do not cross processes).
 */
import type jsonata from 'jsonata';
import { LRUCache } from 'lru-cache';
import { pathToFileURL } from 'node:url';
import { compileExpression, templateError, toJsonText } from './template.js';
import { CPU_BUDGET, type SandboxAnswer, type SandboxTask, type WorkerMessage } from './sandbox-protocol.js';

const expressions = new LRUCache<string, jsonata.Expression>({ max: 1_000 });

/** JSONata calls this before every evaluation step (jsonata.js, `evaluate`). */
const EVALUATE_ENTRY = Symbol.for('jsonata.__evaluate_entry') as unknown as string;
/** Reading the CPU time is a system call: once every this many steps (a step is a few µs). */
const CHECK_EVERY = 64;

/** The evaluation in progress (one at a time): its CPU limit in µs of this process's time, and its budget. */
let cpuLimitUs = Infinity;
let budgetMs = 0;
let steps = 0;

function checkCpu(): void {
  if (++steps % CHECK_EVERY !== 0) return;
  const { user, system } = process.cpuUsage();
  if (user + system > cpuLimitUs) {
    // eslint-disable-next-line @typescript-eslint/only-throw-error -- shaped like JSONata's errors
    throw { code: CPU_BUDGET, message: `template used more than its ${budgetMs} ms CPU budget (TEMPLATE_TIMEOUT_MS)` };
  }
}

export async function evaluateTemplate(task: SandboxTask): Promise<SandboxAnswer> {
  try {
    const key = `${task.timeoutMs}\u0000${task.source}`;
    let expression = expressions.get(key);
    if (expression === undefined) {
      expression = compileExpression(task.source, task.timeoutMs);
      expression.assign(EVALUATE_ENTRY, checkCpu);
      expressions.set(key, expression);
    }
    const { user, system } = process.cpuUsage();
    cpuLimitUs = user + system + task.cpuBudgetMs * 1000;
    budgetMs = task.cpuBudgetMs;
    return { text: toJsonText(await expression.evaluate(task.input, task.bindings), task.maxOutputBytes) };
  } catch (err) {
    const { message, code, position } = templateError(task.source, err);
    return { error: { message, code, position } };
  }
}

const send = (message: WorkerMessage) => process.send?.(message);
// A worker only when started as one (forked with an IPC channel), never when merely imported.
if (process.send && process.argv[1] && pathToFileURL(process.argv[1]).href === import.meta.url) {
  process.on('message', (task: SandboxTask) => {
    void evaluateTemplate(task).then((answer) => send({ id: task.id, answer }));
  });
  // The service is gone: nothing left to answer.
  process.on('disconnect', () => process.exit(0));
  send({ ready: true });
}
