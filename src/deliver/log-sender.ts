/**
 * logSender is the `log` destination: it writes the rendered request (secrets redacted) as one JSON line
 * to stdout, whatever LOG_LEVEL is — it is output, not a diagnostic.
 */
import { redacted } from '../render/render-request.js';
import type { Sender } from './destination.js';

export function createLogSender(writeLine: (line: string) => void): Sender {
  return {
    async send(request, { destination, context }) {
      writeLine(JSON.stringify({ time: new Date().toISOString(), destination, ...context, request: redacted(request) }));
      return { outcome: 'delivered', attempts: 1 };
    },
  };
}
