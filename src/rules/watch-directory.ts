/**
 * watchRulesDirectory loads every *.yaml, *.yml and *.json file of a directory into the RuleStore and
 * reloads on change (fs.watch on the directory also sees ConfigMap-volume symlink swaps), debounced.
 *
 * Nothing in the directory can take the service down, and nothing is skipped silently:
 * - a directory that is missing or unreadable is a problem of its own source (`dir:<path>`: /status, the
 *   rule_load_errors metric, a log line); the service is not ready until it has been read once, and it is
 *   read again every few seconds until it can be (then watched);
 * - a subfolder (its files are not read), a file that cannot be read, is larger than the limit or is not
 *   UTF-8 is a problem of that entry's source;
 * - texts are parsed and compiled in the background (RuleStore.updateInBackground), so a large file does
 *   not stop serving.
 */
import { watch, type FSWatcher } from 'node:fs';
import { readdir, readFile, stat } from 'node:fs/promises';
import { isUtf8 } from 'node:buffer';
import { join } from 'node:path';
import type { Logger } from '../log.js';
import { DEFAULT_MAX_SOURCE_BYTES, type RuleStore } from './rule-store.js';

const RULE_FILE = /\.(ya?ml|json)$/i;
const DEBOUNCE_MS = 150;
const RETRY_MS = 5_000;

export interface DirectoryWatch {
  /** Resolves after the first full load of a readable directory. */
  loaded: Promise<void>;
  /** reload re-reads the directory now (also used by the watcher). */
  reload(): Promise<void>;
  close(): void;
}

export interface DirectoryWatchOptions {
  /** Largest rule file read (bytes). */
  maxSourceBytes?: number;
  /** How often a missing or unreadable directory is tried again. */
  retryMs?: number;
}

export function watchRulesDirectory(
  directory: string,
  store: RuleStore,
  log: Logger,
  options: DirectoryWatchOptions = {},
): DirectoryWatch {
  const maxBytes = options.maxSourceBytes ?? DEFAULT_MAX_SOURCE_BYTES;
  const sourceName = (entry: string) => `file:${entry}`;
  const directorySource = `dir:${directory}`;
  /** What each entry's source was last loaded from: its text, or the problem it was reported with. */
  const known = new Map<string, string>();
  /** Entries logged as ignored (not a rule file), to say it once. */
  const ignored = new Set<string>();
  let directoryProblem: string | undefined;
  let closed = false;
  let retry: NodeJS.Timeout | undefined;
  let timer: NodeJS.Timeout | undefined;
  let watcher: FSWatcher | undefined;
  let running: Promise<void> = Promise.resolve();
  let markLoaded: () => void = () => undefined;
  const loaded = new Promise<void>((resolve) => (markLoaded = resolve));

  async function loadAll(): Promise<void> {
    if (closed) return;
    let entries: { name: string; folder: boolean }[];
    try {
      entries = await listDirectory(directory);
    } catch (err) {
      reportDirectory(err as NodeJS.ErrnoException);
      return;
    }
    if (directoryProblem !== undefined) {
      directoryProblem = undefined;
      store.remove(directorySource);
      log.info({ directory }, 'rules directory readable again');
    }
    startWatching();
    const present = new Set<string>();
    for (const { name, folder } of entries) {
      if (folder) {
        present.add(`${name}/`);
        report(
          `${name}/`,
          `a folder: files in subfolders of RULES_DIR are not read (only *.yaml, *.yml and *.json directly in ${directory}); move them up or mount them elsewhere`,
        );
      } else if (RULE_FILE.test(name)) {
        present.add(name);
        await loadFile(name);
      } else if (!ignored.has(name)) {
        ignored.add(name);
        log.warn({ directory, file: name }, 'not a rule file (*.yaml, *.yml, *.json); ignored');
      }
    }
    for (const entry of [...known.keys()]) {
      if (!present.has(entry)) {
        known.delete(entry);
        store.remove(sourceName(entry));
        log.info({ source: sourceName(entry) }, 'rule document removed');
      }
    }
    markLoaded();
  }

  async function loadFile(file: string): Promise<void> {
    const path = join(directory, file);
    let bytes: Buffer;
    try {
      const { size } = await stat(path);
      if (size > maxBytes)
        return report(file, `${size} bytes, over the limit of ${maxBytes} (RULES_MAX_SOURCE_BYTES); not read`);
      bytes = await readFile(path);
    } catch (err) {
      const { code, message } = err as NodeJS.ErrnoException;
      if (code === 'ENOENT') return; // removed between readdir and read; the next event reloads
      return report(file, `cannot be read: ${message}`);
    }
    if (!isUtf8(bytes))
      return report(
        file,
        `not UTF-8 text (the first invalid byte is on line ${firstInvalidLine(bytes)}); save it as UTF-8`,
      );
    const text = bytes.toString('utf8');
    if (known.get(file) === text) return;
    known.set(file, text);
    const problems = await store.updateInBackground(sourceName(file), text);
    if (problems.length === 0 && known.get(file) === text)
      log.info({ source: sourceName(file) }, 'rule document loaded');
  }

  /** report puts a problem on an entry's source, once per change. */
  function report(entry: string, problem: string): void {
    const marker = `\u0000problem\u0000${problem}`;
    if (known.get(entry) === marker) return;
    known.set(entry, marker);
    store.reportProblems(sourceName(entry), [`${sourceName(entry)}: ${problem}`]);
  }

  function reportDirectory(err: NodeJS.ErrnoException): void {
    const why =
      err.code === 'ENOENT'
        ? 'does not exist'
        : err.code === 'ENOTDIR'
          ? 'is not a directory'
          : err.code === 'EACCES'
            ? 'is not readable (permission denied)'
            : err.message;
    stopWatching();
    if (directoryProblem !== why) {
      directoryProblem = why;
      const consequence = store.ready ? 'the rules loaded before stay in force' : 'not ready until it can be read';
      log.error(
        { directory, err: err.message },
        `RULES_DIR ${directory} ${why}: ${consequence}; trying again every ${Math.round((options.retryMs ?? RETRY_MS) / 1000)} s`,
      );
      store.reportProblems(directorySource, [`${directorySource}: RULES_DIR ${why}; ${consequence}`]);
    }
    clearTimeout(retry);
    retry = setTimeout(() => void reload(), options.retryMs ?? RETRY_MS);
    retry.unref();
  }

  function startWatching(): void {
    if (watcher || closed) return;
    try {
      watcher = watch(directory, () => {
        clearTimeout(timer);
        timer = setTimeout(() => void reload(), DEBOUNCE_MS);
      });
      watcher.on('error', (err) => {
        log.warn({ directory, err: err.message }, 'rules directory watch failed; reading it again');
        stopWatching();
        void reload();
      });
    } catch (err) {
      log.warn({ directory, err: (err as Error).message }, 'cannot watch the rules directory; changes need a restart');
    }
  }

  function stopWatching(): void {
    watcher?.close();
    watcher = undefined;
  }

  const reload = () => (running = running.then(loadAll, loadAll));
  void reload();
  return {
    loaded,
    reload,
    close() {
      closed = true;
      clearTimeout(timer);
      clearTimeout(retry);
      stopWatching();
    },
  };
}

/** listDirectory names the visible entries, telling folders (also through a symlink) from files. */
async function listDirectory(directory: string): Promise<{ name: string; folder: boolean }[]> {
  const entries = await readdir(directory, { withFileTypes: true });
  const visible = entries
    .filter((entry) => !entry.name.startsWith('.'))
    .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return Promise.all(
    visible.map(async (entry) => {
      let folder = entry.isDirectory();
      if (entry.isSymbolicLink())
        folder = await stat(join(directory, entry.name)).then(
          (s) => s.isDirectory(),
          () => false,
        );
      return { name: entry.name, folder };
    }),
  );
}

/** firstInvalidLine: the line of the first byte that does not start or continue a UTF-8 sequence. */
function firstInvalidLine(bytes: Buffer): number {
  let end = bytes.length;
  for (let i = 0; i < bytes.length;) {
    const lead = bytes[i];
    const continuations =
      lead < 0x80 ? 0 : (lead & 0xe0) === 0xc0 ? 1 : (lead & 0xf0) === 0xe0 ? 2 : (lead & 0xf8) === 0xf0 ? 3 : -1;
    let valid = continuations >= 0;
    for (let k = 1; valid && k <= continuations; k++) valid = i + k < bytes.length && (bytes[i + k] & 0xc0) === 0x80;
    if (!valid) {
      end = i;
      break;
    }
    i += continuations + 1;
  }
  let line = 1;
  for (let i = 0; i < end; i++) if (bytes[i] === 0x0a) line++;
  return line;
}
