/**
 * Secret values never leave the process. Every value read from a Secret or the environment to build a
 * request (and every credential the service itself reads from a file) is remembered here; every output
 * path — HTTP answers, log lines, destination error excerpts, Warning Events, CLI output — passes its text
 * through `redact`, which replaces each remembered value, raw, JSON-escaped or percent-encoded.
 * Marking which parts of a request are secret (render-request.ts) decides what a printed request hides;
 * this catches what an error message or a destination's echo carries back.
 */
export const REDACTED = '[redacted]';

/** Shorter values are not credentials, and replacing them would shred unrelated text. */
const MIN_LENGTH = 4;
/** Secret rotation adds values; the oldest are forgotten past this many. */
const MAX_REMEMBERED = 10_000;

export class SecretValues {
  private readonly values = new Set<string>();
  private pattern: RegExp | null | undefined;

  /** remember adds a secret value (and its printed forms) and returns it, so a read can be wrapped. */
  remember(value: string): string {
    for (const form of new Set([value, value.trim(), JSON.stringify(value).slice(1, -1), encodeURIComponent(value)])) {
      if (form.length < MIN_LENGTH || this.values.has(form)) continue;
      if (this.values.size >= MAX_REMEMBERED) this.values.delete(this.values.values().next().value as string);
      this.values.add(form);
      this.pattern = undefined;
    }
    return value;
  }

  /**
   * rememberUrl: a webhook URL from a Secret is a credential in its path or query too (a destination or
   * proxy that echoes the path would otherwise print it).
   */
  rememberUrl(url: string): string {
    this.remember(url);
    try {
      const parsed = new URL(url.trim());
      this.remember(parsed.pathname + parsed.search);
      if (parsed.password) this.remember(decodeURIComponent(parsed.password));
    } catch {
      // not a URL: the whole value is remembered, and the sender refuses it
    }
    return url;
  }

  /** redact replaces every remembered value in the text. */
  redact(text: string): string {
    const pattern = this.compiled();
    return pattern ? text.replace(pattern, REDACTED) : text;
  }

  /**
   * redactJson redacts one JSON text (a log line) without breaking it: a remembered value may look like JSON
   * itself (an hpa-sender body template), and replacing it in serialized text could cut through the
   * structure; so a text that holds one is parsed, redacted value by value and serialized again.
   */
  redactJson(text: string): string {
    const pattern = this.compiled();
    if (!pattern) return text;
    pattern.lastIndex = 0;
    if (!pattern.test(text)) return text;
    pattern.lastIndex = 0;
    const newline = text.endsWith('\n') ? '\n' : '';
    try {
      return JSON.stringify(this.redactDeep(JSON.parse(text))) + newline;
    } catch {
      return this.redact(text);
    }
  }

  /** redactDeep returns a copy of a JSON-like value with every string (keys too) redacted. */
  redactDeep<T>(value: T): T {
    if (!this.compiled()) return value;
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

  private compiled(): RegExp | null {
    if (this.pattern === undefined) {
      // Longest first, so a value that contains another is replaced whole.
      const sorted = [...this.values].sort((a, b) => b.length - a.length);
      this.pattern = sorted.length === 0 ? null : new RegExp(sorted.map(escapeRegExp).join('|'), 'g');
    }
    return this.pattern;
  }
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&');
}

/** The process's secret values: one registry, because every output of the process must hide all of them. */
export const knownSecrets = new SecretValues();
