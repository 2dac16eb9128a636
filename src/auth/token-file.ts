/**
 * A bearer token read from a file (a mounted Secret), compared in constant time. The file is read again
 * when its modification time or size changes, so a rotated Secret takes effect without a restart, and a
 * Secret created after the start (an optional volume) is picked up. No file, or an empty one: nothing matches.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFileSync, statSync } from 'node:fs';
import { knownSecrets } from '../redact.js';

export interface TokenFile {
  /** Whether the presented token is the file's token; an empty or unreadable file matches nothing. */
  matches(presented: string): boolean;
  /** Whether the file holds a token now (an optional Secret may not exist yet). */
  present(): boolean;
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
  return {
    present() {
      load();
      return expected !== undefined;
    },
    matches(presented) {
      load();
      return expected !== undefined && presented.length > 0 && timingSafeEqual(digest(presented), expected);
    },
  };
}
