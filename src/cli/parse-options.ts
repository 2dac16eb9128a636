/**
 * parseOptions: node:util's parseArgs with the one-line messages the CLI prints elsewhere
 * ("unknown option --x", "--rules needs a value") instead of Node's longer wording.
 */
import { parseArgs, type ParseArgsConfig } from 'node:util';

export function parseOptions<T extends ParseArgsConfig>(config: T): ReturnType<typeof parseArgs<T>> {
  try {
    return parseArgs(config);
  } catch (err) {
    const message = (err as Error).message;
    const unknown = /Unknown option '([^']+)'/.exec(message);
    if (unknown) throw new Error(`unknown option ${unknown[1]}`);
    const missing = /Option '(-[-\w]+)[^']*' argument missing/.exec(message);
    if (missing) throw new Error(`${missing[1]} needs a value`);
    throw new Error(message);
  }
}
