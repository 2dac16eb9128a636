/**
 * Structured JSON logging (pino): one line per record on stdout, level from LOG_LEVEL, secret values redacted.
 */
import { pino, type Logger, type DestinationStream } from 'pino';
import { knownSecrets } from './redact.js';

export type { Logger };

/** createLogger builds the service logger; tests pass a stream to read the lines back. */
export function createLogger(level: string, stream?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'kube-event-rules' },
      timestamp: pino.stdTimeFunctions.isoTime,
      // Whatever a record carries (an error message, a destination's echo), no secret value is written.
      hooks: { streamWrite: (line) => knownSecrets.redactJson(line) },
    },
    stream,
  );
}
