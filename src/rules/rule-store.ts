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
import { compileDocument, type CompiledRule } from './compile-document.js';
import { parseRuleText } from './parse-rule-text.js';
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

export class RuleStore {
  private readonly sources = new Map<string, SourceState>();
  private ruleSet: RuleSet = { rules: [], index: buildRuleIndex([]) };
  private loadedOnce = false;
  private readonly listeners: ProblemListener[] = [];

  constructor(
    private readonly options: TemplateOptions,
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
  check(source: string, text: string, scope?: string): { rules: CompiledRule[]; problems: string[] } {
    const tooLarge = this.policy.checkText(text, scope);
    if (tooLarge.length > 0) return { rules: [], problems: tooLarge.map((p) => `${source}: ${p}`) };
    const parsed = parseRuleText(text);
    const problems = parsed.problems.map((p) => `${source}: ${p}`);
    const rules: CompiledRule[] = [];
    parsed.documents.forEach((document, i) => {
      const where = parsed.documents.length > 1 ? `${source} (document ${i + 1})` : source;
      const { compiled, problems: found } = compileDocument(document, where, this.options);
      if (compiled) found.push(...this.policy.checkDocument(document as RuleDocument, compiled, scope));
      problems.push(...found.map((p) => `${where}: ${p}`));
      if (compiled) rules.push(...compiled.rules.map((rule) => (scope === undefined ? rule : { ...rule, scope, name: qualifiedName(scope, rule.declaredName) })));
    });
    if (parsed.documents.length === 0 && problems.length === 0) problems.push(`${source}: no rule document found (the file is empty)`);
    return { rules, problems };
  }

  /**
   * update replaces one source's text; returns its problems (empty when the new version is in force).
   * `scope` restricts the source's rules to events of one namespace (a team's ConfigMap).
   */
  update(source: string, text: string, scope?: string): string[] {
    const { rules, problems } = this.check(source, text, scope);
    const previous = this.sources.get(source);
    const told = previous?.told ?? '';
    if (problems.length === 0) {
      this.sources.set(source, { scope, rules, errors: [], conflicts: [], told });
    } else {
      this.sources.set(source, { scope, rules: previous?.rules ?? [], errors: problems, conflicts: [], told });
      for (const problem of problems) this.log.error({ source, problem }, 'rule document rejected');
    }
    this.rebuild();
    const state = this.sources.get(source)!;
    return [...state.errors, ...state.conflicts];
  }

  remove(source: string): void {
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
      .map(([source, state]) => ({ source, rules: state.rules.map((r) => r.name), errors: [...state.errors, ...state.conflicts] }));
  }

  /** rebuild assembles the RuleSet from the sources the tenancy policy lets into force, and tells what changed. */
  private rebuild(): void {
    const before = this.ruleSet.rules;
    const entries = [...this.sources.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    const rejected = this.policy.arbitrate(entries.map(([source, state]) => ({ source, scope: state.scope, rules: state.rules })));
    const rules: CompiledRule[] = [];
    for (const [source, state] of entries) {
      state.conflicts = rejected.get(source) ?? [];
      if (state.conflicts.length === 0) rules.push(...state.rules);
      this.metrics.ruleLoadErrors.set({ source }, state.errors.length + state.conflicts.length > 0 ? 1 : 0);
    }
    this.ruleSet = { rules, index: buildRuleIndex(rules) };
    this.metrics.rulesLoaded.set(rules.length);
    this.metrics.ruleReloads.inc({ result: [...this.sources.values()].some((s) => s.errors.length + s.conflicts.length > 0) ? 'error' : 'ok' });
    const inForce = new Set(rules.map((rule) => rule.name));
    for (const old of before) {
      if (!inForce.has(old.name)) forgetRule(this.metrics, old.name, old.actions.map((a) => a.destination.name));
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
    for (const problem of state.conflicts) this.log.error({ source, problem }, 'rule document rejected by the tenancy policy');
    for (const listener of this.listeners) listener(source, problems);
  }
}
