/**
 * Regular expressions written by rule authors (the `matches` operator, JSONata regex literals) or taken from
 * events run on RE2 (re2js, pure JavaScript): matching time grows linearly with the input, so no pattern can
 * backtrack for minutes on a crafted message. RE2 has no back-references and no look-around; a pattern
 * using them is rejected when its rule loads, with the position of the construct.
 *
 * JavaScript regex syntax is accepted where RE2 can express it (`\u0041`, `(?<name>…)`, `\cA`): patterns are
 * translated by re2js before compiling. Remaining differences are small: `\s` and case folding follow RE2.
 *
 * Linear is not cheap: re2js spends up to ≈ 0.1 µs per program instruction per character, so
 * `(?:a|y|ay|ya){1000}b` (7,003 instructions) takes seconds on a 20 kB text, and its program alone holds
 * ≈ 1.4 MB. A pattern whose compiled program is larger than a cap is refused, naming the repetition that
 * makes it large; a pattern whose repetitions promise a program far beyond the cap is refused before compiling.
 */
import { RE2JS, RE2JSSyntaxException } from 're2js';

/** A regex RE2 cannot compile; `position` is a 0-based index into the pattern as written. */
export class RegexSyntaxError extends Error {
  /** `tooLarge`: RE2 could run it, but its program is over the cap (REGEX_MAX_PROGRAM_SIZE). */
  constructor(
    readonly reason: string,
    readonly position: number,
    readonly tooLarge = false,
  ) {
    super(`${reason} (at position ${position})`);
    this.name = 'RegexSyntaxError';
  }

  /** movedBy: the same error for a pattern embedded `offset` characters into a larger text. */
  movedBy(offset: number): RegexSyntaxError {
    return new RegexSyntaxError(this.reason, this.position + offset, this.tooLarge);
  }
}

const FLAG_BITS: Record<string, number> = { i: RE2JS.CASE_INSENSITIVE, m: RE2JS.MULTILINE, s: RE2JS.DOTALL };
/** Texts up to this length are remembered with their answer (see LinearRegExp.test). */
const MEMO_MAX_LENGTH = 4096;

/** Largest compiled program, in RE2 instructions, of one pattern (REGEX_MAX_PROGRAM_SIZE). */
export const DEFAULT_MAX_PROGRAM_SIZE = 500;
/**
 * Patterns are measured before compiling with a coarse upper bound (2 × length × nested repeat counts, ≈ 5–15
 * times the real size): beyond this many times the cap, compiling just to find out would cost tens of
 * milliseconds and megabytes per pattern.
 */
const PRECHECK_FACTOR = 20;

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
  /** The compiled program's size in RE2 instructions: matching costs up to this many steps per character. */
  readonly programSize: number;
  lastIndex = 0;
  private readonly re2: RE2JS;
  /**
   * The last text tested and its answer: rules sharing a pattern (presets, generated rule sets) test the same field of
   * the same event.
   */
  private memoText: string | undefined;
  private memoAnswer = false;

  constructor(pattern: string | RegExp, flags?: string, maxProgramSize = DEFAULT_MAX_PROGRAM_SIZE) {
    const source = typeof pattern === 'string' ? pattern : pattern.source;
    const flagText = flags ?? (typeof pattern === 'string' ? '' : pattern.flags);
    this.re2 = compileRe2(source, flagText, maxProgramSize);
    this.programSize = this.re2.programSize();
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
    const result = Object.assign(groups, {
      index: matcher.start(),
      input: text,
      groups: undefined,
    }) as unknown as RegExpExecArray;
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
export function compileLinearRegex(
  pattern: string,
  flags = '',
  maxProgramSize = DEFAULT_MAX_PROGRAM_SIZE,
): LinearRegExp {
  return new LinearRegExp(pattern, flags, maxProgramSize);
}

function compileRe2(source: string, flags: string, maxProgramSize: number): RE2JS {
  let bits = 0;
  for (const flag of flags) {
    if (FLAG_BITS[flag] !== undefined) bits |= FLAG_BITS[flag];
    else if (flag === 'y')
      throw new RegexSyntaxError(
        'the sticky flag "y" is not supported (it would carry state from one event to the next)',
        source.length,
      );
    else if (!IGNORED_FLAGS.has(flag))
      throw new RegexSyntaxError(`unknown flag "${flag}" (known: i, m, s)`, source.length);
  }
  rejectNamedBackReferences(source);
  const largest = largestRepetition(source);
  const culprit =
    largest.count > 1
      ? `; the repeat ${JSON.stringify(largest.text)} multiplies what it repeats${largest.product > largest.count ? ` (×${largest.product} with the repeats inside it)` : ''}`
      : '';
  const tooLarge = (size: string) =>
    new RegexSyntaxError(
      `the pattern ${size} RE2 instructions, more than the ${maxProgramSize} allowed (REGEX_MAX_PROGRAM_SIZE): matching costs up to one step per instruction per character${culprit}`,
      largest.position,
      true,
    );
  const bound = 2 * source.length * largest.product;
  if (bound > PRECHECK_FACTOR * maxProgramSize) throw tooLarge(`could compile to up to ${bound}`);
  let re2: RE2JS;
  try {
    re2 = RE2JS.compile(RE2JS.translateRegExp(source), bits);
  } catch (err) {
    if (!(err instanceof RE2JSSyntaxException)) throw err;
    throw syntaxError(source, err);
  }
  if (re2.programSize() > maxProgramSize) throw tooLarge(`compiles to ${re2.programSize()}`);
  return re2;
}

const COUNTED_REPEAT = /\{(\d+)(?:,(\d*))?\}/y;

/**
 * largestRepetition finds the counted repeat (`{n}`, `{n,m}`, `{n,}`) with the largest product of counts
 * once nested inside other counted repeats: what multiplies a pattern's program. A reading of the text
 * only, without RE2's parser: used for the bound before compiling and to point at the culprit.
 */
function largestRepetition(source: string): { product: number; count: number; position: number; text: string } {
  let best = { product: 1, count: 1, position: 0, text: '' };
  const groups: number[] = [1]; // per open group: the largest product inside it
  let lastAtom = 1; // the product inside the atom just read (a group's, or 1)
  let inClass = false;
  for (let i = 0; i < source.length; i++) {
    const c = source[i];
    if (c === '\\') {
      i++;
      lastAtom = 1;
      continue;
    }
    if (inClass) {
      if (c === ']') inClass = false;
      continue;
    }
    if (c === '[') {
      inClass = true;
      if (source[i + 1] === '^') i++;
      if (source[i + 1] === ']') i++; // a leading ] is a literal
      lastAtom = 1;
      continue;
    }
    if (c === '(') {
      groups.push(1);
      continue;
    }
    if (c === ')') {
      lastAtom = groups.length > 1 ? groups.pop()! : 1;
      groups[groups.length - 1] = Math.max(groups[groups.length - 1], lastAtom);
      continue;
    }
    COUNTED_REPEAT.lastIndex = i;
    const repeat = c === '{' ? COUNTED_REPEAT.exec(source) : null;
    if (repeat) {
      const count = Math.max(Number(repeat[1]), Number(repeat[2] || 0), 1);
      const product = Math.min(lastAtom * count, Number.MAX_SAFE_INTEGER);
      groups[groups.length - 1] = Math.max(groups[groups.length - 1], product);
      if (product > best.product) best = { product, count, position: i, text: repeat[0] };
      i += repeat[0].length - 1;
    }
    lastAtom = 1;
  }
  return best;
}

/**
 * The translation from JavaScript syntax reads `\k<name>`, `\8` and `\9` as the plain letters, as JavaScript
 * does where no such group exists; a rule author writing them means a back-reference, so say so.
 */
function rejectNamedBackReferences(source: string): void {
  for (let i = 0; i < source.length; i++) {
    if (source[i] !== '\\') continue;
    if (source.startsWith('k<', i + 1) || source[i + 1] === '8' || source[i + 1] === '9') {
      throw new RegexSyntaxError(
        `invalid escape sequence ${JSON.stringify(source.slice(i, i + 3))}: ${BACK_REFERENCES}`,
        i,
      );
    }
    i++;
  }
}

/**
 * syntaxError names what RE2 refused and where, with a hint for the constructs a backtracking engine has and RE2 does
 * not.
 */
function syntaxError(source: string, err: RE2JSSyntaxException): RegexSyntaxError {
  const fragment = err.input ?? '';
  const position = unescapedIndexOf(source, fragment);
  let hint = '';
  if (/^\\[1-9]/.test(fragment)) hint = `: ${BACK_REFERENCES}`;
  else if (/^\(\?<?[=!]/.test(fragment))
    hint = ': look-ahead and look-behind are not supported (regexes run in linear time, on RE2)';
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
