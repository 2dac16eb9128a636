/**
 * The rule playground: GET /playground/ serves the page (static files, no data), and its API —
 * examples, the last events received, the rule files, and the evaluation of a draft — sits behind the
 * same guard as /dry-run and /status, because it renders with the service's Secrets and shows received
 * events (redacted). `kube-event-rules playground` serves the same routes on 127.0.0.1 without a cluster.
 */
import type Router from '@koa/router';
import type { Middleware } from 'koa';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import getRawBody from 'raw-body';
import { InvalidEventError } from '../errors.js';
import { evaluateDraft, type DraftContext, type DraftInput } from './evaluate-draft.js';
import type { RecentEvents } from './recent-events.js';
import { loadPage, type PageFile } from './static-page.js';

export interface PlaygroundDeps extends DraftContext {
  /** `service`: inside the running service; `local`: `kube-event-rules playground`. */
  mode: 'service' | 'local';
  /** Rule files offered as a starting point. */
  rulesDir?: string;
  recent?: RecentEvents;
  /** The label selector of rule ConfigMaps (the "copy as ConfigMap" button labels the manifest with it). */
  configMapSelector: string;
  maxBodyBytes: number;
  /** The service's shadow rules on live traffic (counts, last differences). */
  shadowStatus?: () => unknown;
  /** The built page (tests pass their own). */
  page?: Map<string, PageFile>;
}

export const EXAMPLES_DIR = fileURLToPath(new URL('../../examples/events/', import.meta.url));

/** Files larger than this are not offered (the page is for one document at a time). */
const MAX_FILE_BYTES = 256 * 1024;

const SECURITY_HEADERS = {
  // Everything the page needs is its own files; CodeMirror writes style elements (hence inline styles).
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
};

async function readTextFiles(dir: string | undefined, pattern: RegExp): Promise<{ name: string; text: string }[]> {
  if (!dir) return [];
  const names = await readdir(dir).catch(() => [] as string[]);
  const files = await Promise.all(
    names
      .filter((name) => pattern.test(name))
      .sort()
      .map(async (name) => ({ name, text: await readFile(join(dir, name), 'utf8').catch(() => '') })),
  );
  return files.filter((f) => f.text !== '' && f.text.length <= MAX_FILE_BYTES);
}

export function addPlaygroundRoutes(router: Router, deps: PlaygroundDeps, guard: Middleware): void {
  const page = deps.page ?? loadPage();

  // The page's files are relative to /playground/ (the router would also match it here).
  router.get('/playground', (ctx, next) => (ctx.path === '/playground' ? ctx.redirect('/playground/') : next()));
  router.get('/playground/{*file}', async (ctx, next) => {
    const path = ctx.params.file ?? '';
    if (path.startsWith('api/')) {
      await next();
      return;
    }
    const file = page.get(path || 'index.html');
    if (!file) {
      ctx.status = page.size === 0 ? 503 : 404;
      ctx.body =
        page.size === 0
          ? { error: 'not built', detail: 'the playground page is not built: run `npm run build`' }
          : { error: 'not found', detail: ctx.path };
      return;
    }
    ctx.set(SECURITY_HEADERS);
    ctx.set('cache-control', path.startsWith('assets/') ? 'public, max-age=31536000, immutable' : 'no-cache');
    ctx.type = file.type;
    ctx.body = file.body;
  });

  router.get('/playground/api/context', guard, async (ctx) => {
    const [examples, documents] = await Promise.all([
      readTextFiles(EXAMPLES_DIR, /\.json$/),
      readTextFiles(deps.rulesDir, /\.(ya?ml|json)$/i),
    ]);
    ctx.set('cache-control', 'no-store');
    ctx.body = {
      mode: deps.mode,
      cluster: deps.cluster.description,
      configMapLabels: selectorLabels(deps.configMapSelector),
      examples,
      documents,
      recent: deps.recent?.list() ?? [],
      shadow: deps.shadowStatus?.(),
    };
  });

  router.get('/playground/api/recent', guard, (ctx) => {
    ctx.set('cache-control', 'no-store');
    ctx.body = { recent: deps.recent?.list() ?? [] };
  });

  router.post('/playground/api/evaluate', guard, async (ctx) => {
    const input = parseDraft(
      await getRawBody(ctx.req, {
        length: ctx.get('content-length') || undefined,
        limit: deps.maxBodyBytes,
        encoding: 'utf8',
      }),
    );
    ctx.set('cache-control', 'no-store');
    ctx.body = await evaluateDraft(input, deps);
  });
}

function parseDraft(body: string): DraftInput {
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch (err) {
    throw new InvalidEventError(400, 'invalid JSON', (err as Error).message);
  }
  const draft = value as Partial<Record<keyof DraftInput, unknown>> | null;
  if (typeof draft !== 'object' || draft === null)
    throw new InvalidEventError(400, 'invalid request', 'expected {document, event, eventLabel?, objects?}');
  for (const field of ['document', 'event', 'eventLabel', 'objects'] as const) {
    if (draft[field] !== undefined && typeof draft[field] !== 'string')
      throw new InvalidEventError(400, 'invalid request', `${field} must be a string`);
  }
  return {
    document: (draft.document as string) ?? '',
    event: (draft.event as string) ?? '',
    eventLabel: draft.eventLabel as string | undefined,
    objects: draft.objects as string | undefined,
  };
}

/** selectorLabels turns "a=b,c==d" into the labels a ConfigMap needs to be selected (set-based terms are left out). */
export function selectorLabels(selector: string): Record<string, string> {
  const labels: Record<string, string> = {};
  for (const term of selector.split(',')) {
    const match = /^\s*([^!=\s]+)\s*==?\s*([^=\s]*)\s*$/.exec(term);
    if (match) labels[match[1]] = match[2];
  }
  return labels;
}
