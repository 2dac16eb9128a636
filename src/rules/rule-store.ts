/**
 * RuleStore holds the rule documents of every source (a file, a ConfigMap key) and the immutable
 * RuleSet built from them. A source that becomes invalid keeps its last good version in force; its
 * problems are logged, counted in kube_event_rules_rule_load_errors and shown in /status. Which sources
 * are in force together (name clashes, quotas) is the tenancy policy's decision; a source it rejects
 * is reported like an invalid one, and to the listeners (a Warning Event on its ConfigMap).
 */
import type { Logger } from '../log.js';
import { buildRuleIndex, type RuleIndex } from '../match/rule-index.js';
import { forgetRule, type Metrics } from '../metrics.js';
import type { TemplateOptions } from '../render/template.js';
import { compileDocumentSteps, runToEnd, type CompiledDestination, type CompiledRule } from './compile-document.js';
import { parseRuleText, type ParsedDocuments } from './parse-rule-text.js';
import { parseRuleTextOffThread } from './parse-off-thread.js';
import type { RuleDocument } from './document.js';
import { compileTenancyPolicy, qualifiedName, type TenancyPolicy } from './tenancy-policy.js';

/** Told when a source's problems change to a new, non-empty list (whichever source's update caused it). */
export type ProblemListener = (source: string, problems: string[]) => void;

/** RuleSet: the rules in force, swapped whole on every change so an event never sees half a reload. */
export interface RuleSet {
  readonly rules: readonly CompiledRule[];
  /** Finds the rules an event can match without evaluating the others. */
  readonly index: RuleIndex;
}

export interface SourceStatus {
  source: string;
  rules: string[];
  /** Problems of the newest version; when set, the rules listed are the last good version. */
  errors: string[];
}

interface SourceState {
  /** The team namespace; undefined for the cluster scope. */
  scope?: string;
  rules: CompiledRule[];
  /** Problems of the newest text of this source. */
  errors: string[];
  /** Why the tenancy policy keeps this source out of force (a name clash, a quota); empty when in force. */
  conflicts: string[];
  /** The problems last told to the log and the listeners (to tell each change once). */
  told: string;
}

export interface RuleStoreOptions extends TemplateOptions {
  /** Largest text of one source (bytes); larger is rejected unread. */
  maxSourceBytes?: number;
}

/** The default cap on one source: a ConfigMap holds at most 1 MiB. */
export const DEFAULT_MAX_SOURCE_BYTES = 1024 * 1024;

/** While loading in the background, the event loop is handed back at least this often. */
const SLICE_MS = 5;

type Checked = { rules: CompiledRule[]; problems: string[] };

/**
 * asTeamRule names a team's rule and its destinations `namespace/name`, so no series of a metric (rule or
 * destination label: deliveries, attempts, durations, breaker state) mixes a team's with another scope's.
 */
function asTeamRule(rule: CompiledRule, scope: string): CompiledRule {
  const copies = new Map<CompiledDestination, CompiledDestination>();
  const qualified = (destination: CompiledDestination) => {
    let copy = copies.get(destination);
    if (!copy)
      copies.set(destination, (copy = { ...destination, name: qualifiedName(scope, destination.name), scope }));
    return copy;
  };
  return {
    ...rule,
    scope,
    name: qualifiedName(scope, rule.declaredName),
    actions: rule.actions.map((action) => ({ ...action, destination: qualified(action.destination) })),
  };
}

export class RuleStore {
  private readonly sources = new Map<string, SourceState>();
  /** Bumped by every update and removal: a background load applies only if its source did not change meanwhile. */
  private readonly generations = new Map<string, number>();
  private readonly loading = new Set<Promise<unknown>>();
  /**
   * The text each source was last loaded from (applied, or loading): a relist of an unchanged ConfigMap is not parsed
   * again.
   */
  private readonly loadedFrom = new Map<string, { text: string; scope?: string }>();
  /** Sources whose every rule is a shadow rule (a ConfigMap labelled kube-event-rules/shadow=true). */
  private readonly shadowSources = new Set<string>();
  private ruleSet: RuleSet = { rules: [], index: buildRuleIndex([]) };
  private loadedOnce = false;
  private readonly listeners: ProblemListener[] = [];

  constructor(
    private readonly options: RuleStoreOptions,
    private readonly metrics: Metrics,
    private readonly log: Logger,
    private readonly policy: TenancyPolicy = compileTenancyPolicy(),
  ) {}

  /** onProblems registers a listener for sources whose problems changed (ConfigMaps: a Warning Event). */
  onProblems(listener: ProblemListener): void {
    this.listeners.push(listener);
  }

  get current(): RuleSet {
    return this.ruleSet;
  }

  /** ready: rules were loaded at least once (an empty but valid rule set counts). */
  get ready(): boolean {
    return this.loadedOnce;
  }

  /** check parses and compiles a text without touching the store (for validation). */
  check(source: string, text: string, scope?: string): Checked {
    const tooLarge = this.sizeProblem(source, text, scope);
    if (tooLarge) return tooLarge;
    return this.guarded(source, () => runToEnd(this.compileSteps(source, parseRuleText(text), scope)));
  }

  /**
   * checkInBackground is check without blocking serving: a large text is parsed in a worker thread and
   * compiled rule by rule, handing the event loop back every few milliseconds.
   */
  async checkInBackground(source: string, text: string, scope?: string): Promise<Checked> {
    const tooLarge = this.sizeProblem(source, text, scope);
    if (tooLarge) return tooLarge;
    const parsed = await parseRuleTextOffThread(text);
    const steps = this.compileSteps(source, parsed, scope);
    let sliceStart = performance.now();
    for (;;) {
      const step = this.guarded(source, (): IteratorResult<void, Checked> => steps.next());
      if ('problems' in step) return step; // compiling threw: reported as the source's problem
      if (step.done) return step.value;
      if (performance.now() - sliceStart > SLICE_MS) {
        await new Promise((resolve) => setImmediate(resolve));
        sliceStart = performance.now();
      }
    }
  }

  /** sizeProblem: a text over the service's limit, or over its scope's (a team's), is rejected unread. */
  private sizeProblem(source: string, text: string, scope?: string): Checked | undefined {
    const limit = this.options.maxSourceBytes ?? DEFAULT_MAX_SOURCE_BYTES;
    const bytes = Buffer.byteLength(text);
    if (bytes > limit)
      return {
        rules: [],
        problems: [`${source}: ${bytes} bytes, over the limit of ${limit} (RULES_MAX_SOURCE_BYTES); not read`],
      };
    const overQuota = this.policy.checkText(text, scope);
    return overQuota.length > 0 ? { rules: [], problems: overQuota.map((p) => `${source}: ${p}`) } : undefined;
  }

  /** guarded: nothing in a rule text may crash the loader; whatever throws is a problem of that source. */
  private guarded<T>(source: string, run: () => T): T | Checked {
    try {
      return run();
    } catch (err) {
      return { rules: [], problems: [`${source}: could not be loaded: ${(err as Error)?.message ?? String(err)}`] };
    }
  }

  private *compileSteps(source: string, parsed: ParsedDocuments, scope?: string): Generator<void, Checked> {
    const problems = parsed.problems.map((p) => `${source}: ${p}`);
    const rules: CompiledRule[] = [];
    for (const [i, document] of parsed.documents.entries()) {
      const where = parsed.documents.length > 1 ? `${source} (document ${i + 1})` : source;
      const { compiled, problems: found } = yield* compileDocumentSteps(document, where, this.options);
      if (compiled) found.push(...this.policy.checkDocument(document as RuleDocument, compiled, scope));
      problems.push(...found.map((p) => `${where}: ${p}`));
      if (compiled) rules.push(...compiled.rules.map((rule) => (scope === undefined ? rule : asTeamRule(rule, scope))));
    }
    if (parsed.documents.length === 0 && problems.length === 0)
      problems.push(`${source}: no rule document found (the file is empty)`);
    return { rules, problems };
  }

  /**
   * update replaces one source's text; returns its problems (empty when the new version is in force).
   * `scope` restricts the source's rules to events of one namespace (a team's ConfigMap).
   */
  update(source: string, text: string, scope?: string): string[] {
    this.bump(source);
    this.loadedFrom.set(source, { text, scope });
    return this.apply(source, this.check(source, text, scope), scope);
  }

  /**
   * updateInBackground is update through checkInBackground. Resolves with the problems once applied; a load
   * overtaken by a newer update or a removal of its source is dropped (resolves with none).
   */
  async updateInBackground(source: string, text: string, scope?: string): Promise<string[]> {
    const last = this.loadedFrom.get(source);
    if (last && last.text === text && last.scope === scope) return this.problemsOf(source);
    this.loadedFrom.set(source, { text, scope });
    const generation = this.bump(source);
    const checking = this.checkInBackground(source, text, scope);
    this.loading.add(checking);
    try {
      const checked = await checking;
      return this.generations.get(source) === generation ? this.apply(source, checked, scope) : [];
    } finally {
      this.loading.delete(checking);
    }
  }

  /** reportProblems puts a problem that is not a rule text (an unreadable file or folder) on a source of its own. */
  reportProblems(source: string, problems: string[]): void {
    this.bump(source);
    this.loadedFrom.delete(source);
    this.apply(source, { rules: [], problems });
  }

  /** problemsOf: the current problems of a source (its own and the tenancy policy's). */
  private problemsOf(source: string): string[] {
    const state = this.sources.get(source);
    return state ? [...state.errors, ...state.conflicts] : [];
  }

  /** settled resolves once no background load is running. */
  async settled(): Promise<void> {
    while (this.loading.size > 0) await Promise.allSettled([...this.loading]);
  }

  private bump(source: string): number {
    const generation = (this.generations.get(source) ?? 0) + 1;
    this.generations.set(source, generation);
    return generation;
  }

  /**
   * setShadow marks (or unmarks) every rule of a source as a shadow rule — the ConfigMap label; a rule or
   * document may also say `shadow: true` itself. A change re-applies the source's last text.
   */
  setShadow(source: string, shadow: boolean): void {
    if (shadow === this.shadowSources.has(source)) return;
    if (shadow) this.shadowSources.add(source);
    else this.shadowSources.delete(source);
    const last = this.loadedFrom.get(source);
    if (last) this.update(source, last.text, last.scope);
  }

  private apply(source: string, checked: Checked, scope?: string): string[] {
    const { problems } = checked;
    const rules = this.shadowSources.has(source)
      ? checked.rules.map((rule) => ({ ...rule, shadow: true }))
      : checked.rules;
    const previous = this.sources.get(source);
    const told = previous?.told ?? '';
    if (problems.length === 0) {
      this.sources.set(source, { scope, rules, errors: [], conflicts: [], told });
      for (const destination of new Set(rules.flatMap((rule) => rule.actions.map((action) => action.destination)))) {
        if (destination.transport?.tls?.insecure)
          this.log.warn(
            { source, destination: destination.name },
            'TLS CERTIFICATE VERIFICATION IS OFF for this destination (tls.insecureSkipVerify): anyone on the path can read and change what it is sent',
          );
      }
    } else {
      this.sources.set(source, { scope, rules: previous?.rules ?? [], errors: problems, conflicts: [], told });
      for (const problem of problems) this.log.error({ source, problem }, 'rule document rejected');
    }
    this.rebuild();
    const state = this.sources.get(source)!;
    return [...state.errors, ...state.conflicts];
  }

  remove(source: string): void {
    this.shadowSources.delete(source);
    this.bump(source);
    this.loadedFrom.delete(source);
    if (this.sources.delete(source)) this.rebuild();
    this.metrics.ruleLoadErrors.remove({ source });
  }

  sourceNames(): string[] {
    return [...this.sources.keys()];
  }

  /** markLoaded is called by a loader once its first full load finished. */
  markLoaded(): void {
    this.loadedOnce = true;
  }

  status(): SourceStatus[] {
    return [...this.sources.entries()]
      .sort(([a], [b]) => a.localeCompare(b))
      .map(([source, state]) => ({
        source,
        rules: state.rules.map((r) => r.name),
        errors: [...state.errors, ...state.conflicts],
      }));
  }

  /** rebuild assembles the RuleSet from the sources the tenancy policy lets into force, and tells what changed. */
  private rebuild(): void {
    const before = this.ruleSet.rules;
    const entries = [...this.sources.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    // Shadow rules share their live twin's name by design: names are the live rules' business; the quota counts both.
    const rejected = this.policy.arbitrate(
      entries.map(([source, state]) => ({
        source,
        scope: state.scope,
        rules: state.rules.filter((rule) => !rule.shadow),
        shadowRules: state.rules.filter((rule) => rule.shadow).length,
      })),
    );
    const rules: CompiledRule[] = [];
    for (const [source, state] of entries) {
      state.conflicts = rejected.get(source) ?? [];
      if (state.conflicts.length === 0) rules.push(...state.rules);
      this.metrics.ruleLoadErrors.set({ source }, state.errors.length + state.conflicts.length > 0 ? 1 : 0);
    }
    this.ruleSet = { rules, index: buildRuleIndex(rules) };
    this.metrics.rulesLoaded.set(rules.length);
    this.metrics.userMetrics.declare(rules);
    this.metrics.ruleReloads.inc({
      result: [...this.sources.values()].some((s) => s.errors.length + s.conflicts.length > 0) ? 'error' : 'ok',
    });
    const inForce = new Set(rules.map((rule) => rule.name));
    for (const old of before) {
      if (!inForce.has(old.name))
        forgetRule(
          this.metrics,
          old.name,
          old.actions.map((a) => a.destination.name),
        );
    }
    for (const [source, state] of entries) this.tell(source, state);
  }

  /** tell logs a source's new rejection by the policy and hands every new problem list to the listeners. */
  private tell(source: string, state: SourceState): void {
    const problems = [...state.errors, ...state.conflicts];
    const told = problems.join('\n');
    if (told === state.told) return;
    state.told = told;
    if (problems.length === 0) return;
    for (const problem of state.conflicts)
      this.log.error({ source, problem }, 'rule document rejected by the tenancy policy');
    for (const listener of this.listeners) listener(source, problems);
  }
}
