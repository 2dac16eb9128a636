/**
 * Rule sources on disk for the CLI: files and directories of rule documents, or Kubernetes ConfigMap
 * manifests (multi-document YAML) whose data keys are rule documents.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parseAllDocuments } from 'yaml';
import type { RuleStore } from '../rules/rule-store.js';
import { SHADOW_LABEL } from '../match/shadow.js';

const RULE_FILE = /\.(ya?ml|json)$/i;

/** expandPaths lists the rule files named, directories expanded (sorted, not recursive). */
export async function expandPaths(paths: string[]): Promise<string[]> {
  const files: string[] = [];
  for (const path of paths) {
    const info = await stat(path).catch(() => undefined);
    if (!info) throw new Error(`${path}: no such file or directory`);
    if (info.isDirectory())
      files.push(
        ...(await readdir(path))
          .filter((f) => RULE_FILE.test(f))
          .sort()
          .map((f) => join(path, f)),
      );
    else files.push(path);
  }
  return files;
}

interface ConfigMap {
  kind: 'ConfigMap';
  metadata?: { name?: string; namespace?: string; labels?: Record<string, string> };
  data?: Record<string, string>;
}

const isConfigMap = (doc: unknown): doc is ConfigMap =>
  typeof doc === 'object' && doc !== null && (doc as { kind?: unknown }).kind === 'ConfigMap';

/**
 * loadRuleFiles puts every rule document of the files into the store (as a team's, with `team`); returns the number of
 * sources.
 */
export async function loadRuleFiles(store: RuleStore, paths: string[], team?: string): Promise<number> {
  let sources = 0;
  for (const file of await expandPaths(paths)) {
    const text = await readFile(file, 'utf8');
    const documents = parseAllDocuments(text).map((d) => (d.errors.length === 0 ? (d.toJS() as unknown) : undefined));
    if (!documents.some(isConfigMap)) {
      store.update(file, text, team);
      sources++;
      continue;
    }
    for (const doc of documents) {
      if (!isConfigMap(doc)) continue;
      const where = `${file}: ConfigMap ${doc.metadata?.namespace ?? 'default'}/${doc.metadata?.name ?? '?'}`;
      for (const [key, value] of Object.entries(doc.data ?? {})) {
        store.setShadow(`${where} key ${key}`, doc.metadata?.labels?.[SHADOW_LABEL] === 'true');
        store.update(`${where} key ${key}`, value, team);
        sources++;
      }
    }
  }
  return sources;
}
