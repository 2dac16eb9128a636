/**
 * The playground's built page (Vite writes it to dist/web/playground): every file is read once, at start,
 * and only those files are ever served — a request path is a key in that table, never a path on disk.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { extname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

export interface PageFile {
  type: string;
  body: Buffer;
}

/** From src/playground and from dist/playground alike, the package root is two folders up. */
export const PAGE_DIR = fileURLToPath(new URL('../../dist/web/playground/', import.meta.url));

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.json': 'application/json',
  '.woff2': 'font/woff2',
};

/** loadPage maps "index.html", "assets/index-abc.js" … to their content; empty when the page was not built. */
export function loadPage(dir = PAGE_DIR): Map<string, PageFile> {
  const files = new Map<string, PageFile>();
  if (!existsSync(dir)) return files;
  const walk = (folder: string) => {
    for (const name of readdirSync(folder)) {
      const path = join(folder, name);
      if (statSync(path).isDirectory()) walk(path);
      else
        files.set(relative(dir, path).split('\\').join('/'), {
          type: TYPES[extname(name)] ?? 'application/octet-stream',
          body: readFileSync(path),
        });
    }
  };
  walk(dir);
  return files;
}
