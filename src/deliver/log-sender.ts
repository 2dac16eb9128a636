/**
 * logSender is the `log` destination: it writes the rendered request (secrets redacted) as one JSON line
 * to stdout, whatever LOG_LEVEL is — it is output, not a diagnostic.
 */
import { redacted } from '../render/render-request.js';
import { knownSecrets } from '../redact.js';
import type { Sender } from './destination.js';

export function createLogSender(writeLine: (line: string) => void): Sender {
  return {
    async send(request, { destination, context }) {
      // Secret parts by position, then any remembered value a template copied elsewhere.
      writeLine(JSON.stringify(knownSecrets.redactDeep({ time: new Date().toISOString(), destination, ...context, request: redacted(request) })));
      return { outcome: 'delivered', attempts: 1 };
    },
  };
}
