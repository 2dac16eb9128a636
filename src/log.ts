/**
 * Structured JSON logging (pino): one line per record on stdout, level from LOG_LEVEL.
 */
import { pino, type Logger, type DestinationStream } from 'pino';

export type { Logger };

/** createLogger builds the service logger; tests pass a stream to read the lines back. */
export function createLogger(level: string, stream?: DestinationStream): Logger {
  return pino({ level, base: { service: 'kube-event-rules' }, timestamp: pino.stdTimeFunctions.isoTime }, stream);
}
