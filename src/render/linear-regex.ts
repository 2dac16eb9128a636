/**
 * Regular expressions written by rule authors (the `matches` operator, JSONata regex literals) or taken from
 * events run on RE2 (re2js, pure JavaScript): matching time grows linearly with the input, so no pattern can
 * backtrack for minutes on a crafted message. RE2 has no back-references and no look-around; a pattern
 * using them is rejected when its rule loads, with the position of the construct.
 *
 * JavaScript regex syntax is accepted where RE2 can express it (`\u0041`, `(?<name>…)`, `\cA`): patterns are
 * translated by re2js before compiling. Remaining differences are small: `\s` and case folding follow RE2.
 */
import { RE2JS, RE2JSSyntaxException } from 're2js';

/** A regex RE2 cannot compile; `position` is a 0-based index into the pattern as written. */
export class RegexSyntaxError extends Error {
  constructor(readonly reason: string, readonly position: number) {
    super(`${reason} (at position ${position})`);
    this.name = 'RegexSyntaxError';
  }

  /** movedBy: the same error for a pattern embedded `offset` characters into a larger text. */
  movedBy(offset: number): RegexSyntaxError {
    return new RegexSyntaxError(this.reason, this.position + offset);
  }
}

const FLAG_BITS: Record<string, number> = { i: RE2JS.CASE_INSENSITIVE, m: RE2JS.MULTILINE, s: RE2JS.DOTALL };
/** Texts up to this length are remembered with their answer (see LinearRegExp.test). */
const MEMO_MAX_LENGTH = 4096;

const BACK_REFERENCES = 'back-references are not supported (regexes run in linear time, on RE2)';
/** Flags that change nothing for a stateless, code-point based engine. */
const IGNORED_FLAGS = new Set(['g', 'u', 'd']);

/**
 * A RegExp-compatible class over RE2, for JSONata's `RegexEngine` option: JSONata constructs it with the
 * RegExp its parser built (always global), sets `lastIndex` and calls `exec` repeatedly.
 */
export class LinearRegExp {
  readonly source: string;
  readonly flags: string;
  readonly global: boolean;
  readonly ignoreCase: boolean;
  readonly multiline: boolean;
  readonly dotAll: boolean;
  readonly sticky = false;
  lastIndex = 0;
  private readonly re2: RE2JS;
  /** The last text tested and its answer: rules sharing a pattern (presets, generated rule sets) test the same field of the same event. */
  private memoText: string | undefined;
  private memoAnswer = false;

  constructor(pattern: string | RegExp, flags?: string) {
    const source = typeof pattern === 'string' ? pattern : pattern.source;
    const flagText = flags ?? (typeof pattern === 'string' ? '' : pattern.flags);
    this.re2 = compileRe2(source, flagText);
    this.source = source;
    this.flags = flagText;
    this.global = flagText.includes('g');
    this.ignoreCase = flagText.includes('i');
    this.multiline = flagText.includes('m');
    this.dotAll = flagText.includes('s');
  }

  /** exec behaves as RegExp.prototype.exec: a global regex searches from and advances `lastIndex`. */
  exec(input: string): RegExpExecArray | null {
    const text = String(input);
    const from = this.global ? this.lastIndex : 0;
    if (from > text.length) {
      this.lastIndex = 0;
      return null;
    }
    const matcher = this.re2.matcher(text);
    if (!matcher.find(from)) {
      if (this.global) this.lastIndex = 0;
      return null;
    }
    const groups: (string | undefined)[] = [];
    for (let i = 0; i <= matcher.groupCount(); i++) groups.push(matcher.group(i) ?? undefined);
    const result = Object.assign(groups, { index: matcher.start(), input: text, groups: undefined }) as unknown as RegExpExecArray;
    if (this.global) this.lastIndex = matcher.end();
    return result;
  }

  /**
   * test: an unanchored search; without `g` it runs on RE2's DFA. RE2 costs ≈ 1–2 µs per test where the
   * native engine took 0.1–0.3 µs; 1,000 rules sharing one pattern and evaluated on every event halved the
   * pipeline rate, so the answer for the last (short) text is kept: the same text gives the same answer.
   */
  test(input: string): boolean {
    if (this.global) return this.exec(input) !== null;
    const text = String(input);
    if (text === this.memoText) return this.memoAnswer;
    const answer = this.re2.test(text);
    if (text.length <= MEMO_MAX_LENGTH) {
      this.memoText = text;
      this.memoAnswer = answer;
    }
    return answer;
  }

  toString(): string {
    return `/${this.source}/${this.flags}`;
  }
}

/** compileLinearRegex compiles a pattern for the `matches` operator, or throws a RegexSyntaxError. */
export function compileLinearRegex(pattern: string, flags = ''): LinearRegExp {
  return new LinearRegExp(pattern, flags);
}

function compileRe2(source: string, flags: string): RE2JS {
  let bits = 0;
  for (const flag of flags) {
    if (FLAG_BITS[flag] !== undefined) bits |= FLAG_BITS[flag];
    else if (flag === 'y') throw new RegexSyntaxError('the sticky flag "y" is not supported (it would carry state from one event to the next)', source.length);
    else if (!IGNORED_FLAGS.has(flag)) throw new RegexSyntaxError(`unknown flag "${flag}" (known: i, m, s)`, source.length);
  }
  rejectNamedBackReferences(source);
  try {
    return RE2JS.compile(RE2JS.translateRegExp(source), bits);
  } catch (err) {
    if (!(err instanceof RE2JSSyntaxException)) throw err;
    throw syntaxError(source, err);
  }
}

/**
 * The translation from JavaScript syntax reads `\k<name>`, `\8` and `\9` as the plain letters, as JavaScript
 * does where no such group exists; a rule author writing them means a back-reference, so say so.
 */
function rejectNamedBackReferences(source: string): void {
  for (let i = 0; i < source.length; i++) {
    if (source[i] !== '\\') continue;
    if (source.startsWith('k<', i + 1) || source[i + 1] === '8' || source[i + 1] === '9') {
      throw new RegexSyntaxError(`invalid escape sequence ${JSON.stringify(source.slice(i, i + 3))}: ${BACK_REFERENCES}`, i);
    }
    i++;
  }
}

/** syntaxError names what RE2 refused and where, with a hint for the constructs a backtracking engine has and RE2 does not. */
function syntaxError(source: string, err: RE2JSSyntaxException): RegexSyntaxError {
  const fragment = err.input ?? '';
  const position = unescapedIndexOf(source, fragment);
  let hint = '';
  if (/^\\[1-9]/.test(fragment)) hint = `: ${BACK_REFERENCES}`;
  else if (/^\(\?<?[=!]/.test(fragment)) hint = ': look-ahead and look-behind are not supported (regexes run in linear time, on RE2)';
  return new RegexSyntaxError(`${err.error} ${JSON.stringify(shorten(fragment))}${hint}`, Math.max(0, position));
}

/** unescapedIndexOf finds `fragment` where it is not itself escaped by a preceding backslash. */
function unescapedIndexOf(source: string, fragment: string): number {
  if (fragment === '') return -1;
  for (let i = source.indexOf(fragment); i >= 0; i = source.indexOf(fragment, i + 1)) {
    let backslashes = 0;
    while (i - backslashes - 1 >= 0 && source[i - backslashes - 1] === '\\') backslashes++;
    if (backslashes % 2 === 0) return i;
  }
  return -1;
}

function shorten(text: string): string {
  return text.length > 40 ? `${text.slice(0, 40)}…` : text;
}
