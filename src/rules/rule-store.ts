/**
 * RuleStore holds the rule documents of every source (a file, later a ConfigMap key) and the immutable
 * RuleSet built from them. A source that becomes invalid keeps its last good version in force; its
 * problems are logged, counted in kube_event_rules_rule_load_errors and shown in /status.
 */
import type { Logger } from '../log.js';
import { buildRuleIndex, type RuleIndex } from '../match/rule-index.js';
import { forgetRule, type Metrics } from '../metrics.js';
import type { TemplateOptions } from '../render/template.js';
import { compileDocument, type CompiledRule } from './compile-document.js';
import { parseRuleText } from './parse-rule-text.js';

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
  rules: CompiledRule[];
  /** Problems of the newest text of this source. */
  errors: string[];
  /** Rules of this source shadowed by a same-named rule of an earlier source. */
  conflicts: string[];
}

export class RuleStore {
  private readonly sources = new Map<string, SourceState>();
  private ruleSet: RuleSet = { rules: [], index: buildRuleIndex([]) };
  private loadedOnce = false;

  constructor(
    private readonly options: TemplateOptions,
    private readonly metrics: Metrics,
    private readonly log: Logger,
  ) {}

  get current(): RuleSet {
    return this.ruleSet;
  }

  /** ready: rules were loaded at least once (an empty but valid rule set counts). */
  get ready(): boolean {
    return this.loadedOnce;
  }

  /** check parses and compiles a text without touching the store (for validation). */
  check(source: string, text: string, scope?: string): { rules: CompiledRule[]; problems: string[] } {
    const parsed = parseRuleText(text);
    const problems = parsed.problems.map((p) => `${source}: ${p}`);
    const rules: CompiledRule[] = [];
    parsed.documents.forEach((document, i) => {
      const where = parsed.documents.length > 1 ? `${source} (document ${i + 1})` : source;
      const { compiled, problems: found } = compileDocument(document, where, this.options);
      problems.push(...found.map((p) => `${where}: ${p}`));
      if (compiled) rules.push(...compiled.rules.map((rule) => (scope === undefined ? rule : { ...rule, scope })));
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
    if (problems.length === 0) {
      this.sources.set(source, { rules, errors: [], conflicts: [] });
    } else {
      this.sources.set(source, { rules: previous?.rules ?? [], errors: problems, conflicts: [] });
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

  /** rebuild assembles the RuleSet; a rule name already taken by another source is an error of the later source. */
  private rebuild(): void {
    const before = this.ruleSet.rules;
    const taken = new Map<string, string>();
    const rules: CompiledRule[] = [];
    for (const [source, state] of [...this.sources.entries()].sort(([a], [b]) => a.localeCompare(b))) {
      state.conflicts = [];
      for (const rule of state.rules) {
        const owner = taken.get(rule.name);
        if (owner) {
          state.conflicts.push(`${source}: rule "${rule.name}" is already defined in ${owner}; this copy is ignored`);
          continue;
        }
        taken.set(rule.name, source);
        rules.push(rule);
      }
      this.metrics.ruleLoadErrors.set({ source }, state.errors.length + state.conflicts.length > 0 ? 1 : 0);
    }
    this.ruleSet = { rules, index: buildRuleIndex(rules) };
    this.metrics.rulesLoaded.set(rules.length);
    this.metrics.ruleReloads.inc({ result: [...this.sources.values()].some((s) => s.errors.length + s.conflicts.length > 0) ? 'error' : 'ok' });
    for (const old of before) {
      if (!taken.has(old.name)) forgetRule(this.metrics, old.name, old.actions.map((a) => a.destination.name));
    }
  }
}
