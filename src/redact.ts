/**
 * Secret values never leave the process. Every value read from a Secret or the environment to build a
 * request (and every credential the service itself reads from a file) is remembered here; every output
 * path — HTTP answers, log lines, destination error excerpts, Warning Events, CLI output — passes its text
 * through `redact`, which replaces each remembered value, raw, JSON-escaped or percent-encoded.
 * Marking which parts of a request are secret (render-request.ts) decides what a printed request hides;
 * this catches what an error message or a destination's echo carries back.
 */
import { ConfigurationError } from './errors.js';

export const REDACTED = '[redacted]';

/** Shorter values are not credentials, and replacing them would shred unrelated text. */
const MIN_LENGTH = 4;
/**
 * A remembered value is never forgotten: forgetting one (to make room) would let the next output print it,
 * and whoever can add values could choose which one goes. Instead each source — a namespace whose Secrets
 * were read; `process` for the environment and the service's own files, which the operator bounds — may
 * add at most this many printed forms; past it, a new value of that source is refused (the read fails).
 */
export const MAX_FORMS_PER_SOURCE = 4_000;
/** Values longer than this are searched by themselves, not in the one alternation of all values. */
const MAX_PATTERN_VALUE = 256;
/** The source of values the operator controls (environment, token files, the process's own settings). */
export const PROCESS_SOURCE = 'process';

export class SecretValues {
  private readonly values = new Set<string>();
  private readonly formsBySource = new Map<string, number>();
  private pattern: RegExp | null | undefined;
  private long: string[] = [];

  /**
   * remember adds a secret value (and its printed forms) and returns it, so a read can be wrapped.
   * `source` is the namespace the value was read from; a source past its bound gets a ConfigurationError.
   */
  remember(value: string, source: string = PROCESS_SOURCE): string {
    const forms = [
      ...new Set([value, value.trim(), JSON.stringify(value).slice(1, -1), encodeURIComponent(value)]),
    ].filter((form) => form.length >= MIN_LENGTH && !this.values.has(form));
    if (forms.length === 0) return value;
    const used = this.formsBySource.get(source) ?? 0;
    if (source !== PROCESS_SOURCE && used + forms.length > MAX_FORMS_PER_SOURCE) {
      throw new ConfigurationError(
        `namespace ${source}: more than ${MAX_FORMS_PER_SOURCE} distinct secret values read since start; a new one is refused, because a value that cannot be redacted is never sent (a restart forgets rotated values)`,
      );
    }
    this.formsBySource.set(source, used + forms.length);
    for (const form of forms) this.values.add(form);
    this.pattern = undefined;
    return value;
  }

  /**
   * rememberUrl: a webhook URL from a Secret is a credential in its path or query too (a destination or
   * proxy that echoes the path would otherwise print it).
   */
  rememberUrl(url: string, source: string = PROCESS_SOURCE): string {
    this.remember(url, source);
    try {
      const parsed = new URL(url.trim());
      this.remember(parsed.pathname + parsed.search, source);
      if (parsed.password) this.remember(decodeURIComponent(parsed.password), source);
    } catch {
      // not a URL: the whole value is remembered, and the sender refuses it
    }
    return url;
  }

  /** redact replaces every remembered value in the text. */
  redact(text: string): string {
    const { pattern, long } = this.compiled();
    for (const value of long) if (text.includes(value)) text = text.split(value).join(REDACTED);
    return pattern ? text.replace(pattern, REDACTED) : text;
  }

  /**
   * redactJson redacts one JSON text (a log line) without breaking it: a remembered value may look like JSON
   * itself (an hpa-sender body template), and replacing it in serialized text could cut through the
   * structure; so a text that holds one is parsed, redacted value by value and serialized again.
   */
  redactJson(text: string): string {
    if (!this.holdsAny(text)) return text;
    const newline = text.endsWith('\n') ? '\n' : '';
    try {
      return JSON.stringify(this.redactDeep(JSON.parse(text))) + newline;
    } catch {
      return this.redact(text);
    }
  }

  /** redactDeep returns a copy of a JSON-like value with every string (keys too) redacted. */
  redactDeep<T>(value: T): T {
    if (this.values.size === 0) return value;
    const walk = (node: unknown): unknown => {
      if (typeof node === 'string') return this.redact(node);
      if (Array.isArray(node)) return node.map(walk);
      if (node && typeof node === 'object' && Object.getPrototypeOf(node) === Object.prototype) {
        return Object.fromEntries(Object.entries(node).map(([k, v]) => [this.redact(k), walk(v)]));
      }
      return node;
    };
    return walk(value) as T;
  }

  private holdsAny(text: string): boolean {
    const { pattern, long } = this.compiled();
    if (long.some((value) => text.includes(value))) return true;
    if (!pattern) return false;
    pattern.lastIndex = 0;
    const found = pattern.test(text);
    pattern.lastIndex = 0;
    return found;
  }

  /**
   * compiled: one alternation of the short values; long values (a whole body template) are searched one by
   * one, so no value can make the expression too large for the engine — which would break every log line.
   */
  private compiled(): { pattern: RegExp | null; long: string[] } {
    if (this.pattern === undefined) {
      // Longest first, so a value that contains another is replaced whole.
      const sorted = [...this.values].sort((a, b) => b.length - a.length);
      const short = sorted.filter((v) => v.length <= MAX_PATTERN_VALUE);
      this.long = sorted.filter((v) => v.length > MAX_PATTERN_VALUE);
      try {
        this.pattern = short.length === 0 ? null : new RegExp(short.map(escapeRegExp).join('|'), 'g');
      } catch {
        this.pattern = null; // too large for one expression: search them one by one instead
        this.long = sorted;
      }
    }
    return { pattern: this.pattern, long: this.long };
  }
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

/** The process's secret values: one registry, because every output of the process must hide all of them. */
export const knownSecrets = new SecretValues();
