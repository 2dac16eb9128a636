/**
 * watchRulesDirectory loads every *.yaml, *.yml and *.json file of a directory into the RuleStore and
 * reloads on change (fs.watch on the directory also sees ConfigMap-volume symlink swaps), debounced.
 */
import { watch, type FSWatcher } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Logger } from '../log.js';
import type { RuleStore } from './rule-store.js';

const RULE_FILE = /\.(ya?ml|json)$/i;
const DEBOUNCE_MS = 150;

export interface DirectoryWatch {
  /** Resolves after the first full load. */
  loaded: Promise<void>;
  /** reload re-reads the directory now (also used by the watcher). */
  reload(): Promise<void>;
  close(): void;
}

export function watchRulesDirectory(directory: string, store: RuleStore, log: Logger): DirectoryWatch {
  const sourceName = (file: string) => `file:${file}`;
  const texts = new Map<string, string>();
  let running: Promise<void> = Promise.resolve();

  async function loadAll(): Promise<void> {
    let files: string[];
    try {
      files = (await readdir(directory)).filter((f) => RULE_FILE.test(f) && !f.startsWith('.')).sort();
    } catch (err) {
      log.error({ directory, err: (err as Error).message }, 'cannot read the rules directory; keeping the rules in force');
      return;
    }
    for (const file of files) {
      let text: string;
      try {
        text = await readFile(join(directory, file), 'utf8');
      } catch {
        continue; // removed between readdir and readFile; the next event reloads
      }
      if (texts.get(file) === text) continue;
      texts.set(file, text);
      const problems = store.update(sourceName(file), text);
      if (problems.length === 0) log.info({ source: sourceName(file) }, 'rule document loaded');
    }
    for (const file of [...texts.keys()]) {
      if (!files.includes(file)) {
        texts.delete(file);
        store.remove(sourceName(file));
        log.info({ source: sourceName(file) }, 'rule document removed');
      }
    }
  }

  const reload = () => (running = running.then(loadAll, loadAll));
  const loaded = reload();

  let timer: NodeJS.Timeout | undefined;
  let watcher: FSWatcher | undefined;
  try {
    watcher = watch(directory, () => {
      clearTimeout(timer);
      timer = setTimeout(() => void reload(), DEBOUNCE_MS);
    });
    watcher.on('error', (err) => log.warn({ directory, err: err.message }, 'rules directory watch failed; changes need a restart'));
  } catch (err) {
    log.warn({ directory, err: (err as Error).message }, 'cannot watch the rules directory; changes need a restart');
  }
  return {
    loaded,
    reload,
    close() {
      clearTimeout(timer);
      watcher?.close();
    },
  };
}
