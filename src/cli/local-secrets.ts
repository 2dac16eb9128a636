/**
 * Secrets from local files for `kube-event-rules test`: Secret manifests (YAML, `data` base64 or
 * `stringData`), so rules that use secretKeyRef can be tested without a cluster.
 */
import { readFile } from 'node:fs/promises';
import { parseAllDocuments } from 'yaml';
import { ConfigurationError } from '../errors.js';
import type { SecretReader } from '../render/value-source.js';

interface SecretManifest {
  kind?: string;
  metadata?: { name?: string; namespace?: string };
  data?: Record<string, string>;
  stringData?: Record<string, string>;
}

export async function localSecrets(paths: string[]): Promise<SecretReader> {
  const secrets: SecretManifest[] = [];
  for (const path of paths) {
    for (const doc of parseAllDocuments(await readFile(path, 'utf8'))) {
      const value = doc.toJS() as SecretManifest | null;
      if (value?.kind === 'Secret') secrets.push(value);
    }
  }
  return {
    async read(name, key, namespace) {
      const secret = secrets.find(
        (s) => s.metadata?.name === name && (!namespace || (s.metadata?.namespace ?? namespace) === namespace),
      );
      if (!secret)
        throw new ConfigurationError(`secretKeyRef ${name}/${key}: no Secret "${name}" in the --secrets files`);
      if (secret.stringData?.[key] !== undefined) return secret.stringData[key];
      if (secret.data?.[key] !== undefined) return Buffer.from(secret.data[key], 'base64').toString('utf8');
      throw new ConfigurationError(`secretKeyRef ${name}/${key}: Secret "${name}" has no key "${key}"`);
    },
  };
}
