/**
 * What the template sandbox and its worker processes say to each other, and the sandbox's guard codes: a leaf both
 * import.
 */

/** Guard codes of the sandbox's own trips. */
export const CPU_BUDGET = 'CPU';
export const OVERRUN = 'OVERRUN';
export const OUT_OF_MEMORY = 'HEAP';

export interface SandboxTask {
  id: number;
  source: string;
  input: unknown;
  bindings: Record<string, unknown>;
  /** CPU time the evaluation may use (TEMPLATE_TIMEOUT_MS). */
  cpuBudgetMs: number;
  /** JSONata's wall-clock timeout: a backstop behind the sandbox's overrun kill (so it never fires first). */
  timeoutMs: number;
  maxOutputBytes: number;
}

export type SandboxAnswer = { text: string } | { error: { message: string; code?: string; position?: number } };

/** What a worker sends: `ready` once after start-up, then one answer per task. */
export type WorkerMessage = { ready: true } | { id: number; answer: SandboxAnswer };
