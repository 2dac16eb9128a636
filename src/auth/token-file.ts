/**
 * A bearer token read from a file (a mounted Secret), compared in constant time. The file is read again
 * when its modification time or size changes, so a rotated Secret takes effect without a restart.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { knownSecrets } from '../redact.js';

export interface TokenFile {
  /** Whether the presented token is the file's token; an empty or unreadable file matches nothing. */
  matches(presented: string): boolean;
}

/** Hashing both sides first makes the comparison constant-time whatever the lengths. */
const digest = (text: string) => createHash('sha256').update(text).digest();

export function tokenFile(path: string): TokenFile {
  let stamp = '';
  let expected: Buffer | undefined;
  const load = () => {
    try {
      const stat = statSync(path);
      const current = `${stat.mtimeMs}:${stat.size}`;
      if (current === stamp) return;
      const token = readFileSync(path, 'utf8').trim();
      stamp = current;
      expected = token ? digest(knownSecrets.remember(token)) : undefined;
    } catch {
      // A Secret update swaps the file: keep the last token until the new one can be read.
    }
  };
  load();
  if (!expected) throw new Error(`token file ${path} is missing or empty`);
  return {
    matches(presented) {
      load();
      return expected !== undefined && presented.length > 0 && timingSafeEqual(digest(presented), expected);
    },
  };
}
