/**
 * The rule playground page: an event, a rule document, and what the service would do with them,
 * re-evaluated by the service (POST /playground/api/evaluate) a moment after every edit. Everything shown
 * comes from event content or rule text, so it is written as text (textContent), never as HTML.
 */
import { autocompletion, completionKeymap } from '@codemirror/autocomplete';
import { defaultKeymap, history, historyKeymap } from '@codemirror/commands';
import { yaml, yamlLanguage } from '@codemirror/lang-yaml';
import { bracketMatching, defaultHighlightStyle, indentOnInput, syntaxHighlighting } from '@codemirror/language';
import { lintGutter, setDiagnostics, type Diagnostic } from '@codemirror/lint';
import { EditorState } from '@codemirror/state';
import { EditorView, drawSelection, highlightActiveLine, keymap, lineNumbers } from '@codemirror/view';
import { stateExtensions } from 'codemirror-json-schema';
import { yamlCompletion } from 'codemirror-json-schema/yaml';
import { stringify } from 'yaml';
import schema from '../../src/rules/rule-document.schema.json';

interface NamedText {
  name: string;
  text: string;
}
interface Recorded {
  label: string;
  receivedAt: string;
  text?: string;
  note?: string;
}
interface Context {
  mode: 'service' | 'local';
  cluster: string;
  configMapLabels: Record<string, string>;
  examples: NamedText[];
  documents: NamedText[];
  recent: Recorded[];
  /** The running service's shadow rules on live traffic. */
  shadow?: ShadowStatus;
}
interface Problem {
  message: string;
  from: number;
  to: number;
  line: number;
  column: number;
}
interface Condition {
  fact: string;
  path?: string;
  operator: string;
  value: unknown;
  factValue: unknown;
  result: boolean | undefined;
}
interface Action {
  rule: string;
  destination: string;
  outcome: string;
  error?: string;
  request?: { method: string; url: string; headers: Record<string, string>; body: unknown };
  digest?: { key: unknown; group: 'new' | 'open'; count: number };
}
interface ShadowOutcome {
  rule: string;
  matched: boolean;
  live: 'matched' | 'not_matched' | 'none';
  differences: string[];
}
interface ShadowStatus {
  rules: { rule: string; twin: boolean; evaluated: number; matched: number; differed: number }[];
  lastDifferences: { at: string; rule: string; event: string; differences: string[] }[];
}
interface Report {
  source: string;
  shadow?: ShadowOutcome[];
  type?: string;
  outcome?: string;
  change?: string;
  occurrence?: string;
  detail?: string;
  matched?: string[];
  actions?: Action[];
  evaluated?: { rule: string; shadow?: boolean; matched: boolean; conditions: Condition[] }[];
  status?: number;
  error?: string;
}
interface Evaluation {
  problems: Problem[];
  eventProblems: string[];
  objectProblems: string[];
  rules: string[];
  results: Report[];
  golden: string;
}

const STARTER = `# A rule document: destinations, and rules that send events to them.
destinations:
  out:
    kind: log
rules:
  - name: crash-loops
    conditions:
      all:
        - { fact: event, path: $.reason, operator: equal, value: BackOff }
    actions:
      - destination: out
        body: |
          {
            "text": involvedObject.kind & " " & involvedObject.name & ": " & message
          }
`;

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T;
const eventPick = $<HTMLSelectElement>('event-pick');
const eventText = $<HTMLTextAreaElement>('event-text');
const objectsText = $<HTMLTextAreaElement>('objects-text');
const documentPick = $<HTMLSelectElement>('document-pick');
const statusLine = $<HTMLParagraphElement>('status');
const summary = $<HTMLParagraphElement>('summary');
const resultsBox = $<HTMLDivElement>('results');
const problemList = $<HTMLUListElement>('problems');
const eventProblemList = $<HTMLUListElement>('event-problems');
const exportText = $<HTMLTextAreaElement>('export-text');
const exportLabel = $<HTMLLabelElement>('export-label');
const caseName = $<HTMLInputElement>('case-name');

const TOKEN_KEY = 'kube-event-rules.admin-token';
let context: Context | undefined;
let latest: Evaluation | undefined;
let latestFor = '';

/** api calls the playground API with the admin token when one was given; a 401 asks for it. */
async function api<T>(path: string, init: RequestInit = {}): Promise<T> {
  const token = sessionStorage.getItem(TOKEN_KEY);
  const headers = new Headers(init.headers);
  if (token) headers.set('authorization', `Bearer ${token}`);
  const response = await fetch(`api/${path}`, { ...init, headers });
  if (response.status === 401) {
    $('auth').hidden = false;
    $<HTMLInputElement>('token').focus();
    throw new Error('the service needs its admin token (ADMIN_TOKEN_FILE) for the playground');
  }
  const body = (await response.json()) as T & { error?: string; detail?: string };
  if (!response.ok) throw new Error(`${body.error ?? response.status}: ${body.detail ?? ''}`);
  return body;
}

$<HTMLFormElement>('auth').addEventListener('submit', (e) => {
  e.preventDefault();
  sessionStorage.setItem(TOKEN_KEY, $<HTMLInputElement>('token').value);
  $('auth').hidden = true;
  void start();
});

// The editor: YAML, completion of the rule document's fields from its JSON Schema, the service's problems inline.
const view = new EditorView({
  parent: $('editor'),
  state: EditorState.create({
    doc: '',
    extensions: [
      lineNumbers(),
      history(),
      drawSelection(),
      indentOnInput(),
      bracketMatching(),
      highlightActiveLine(),
      yaml(),
      syntaxHighlighting(defaultHighlightStyle),
      EditorView.lineWrapping,
      yamlLanguage.data.of({ autocomplete: yamlCompletion() }),
      // The imported JSON is typed with plain strings (type: string), wider than JSONSchema7's literals.
      stateExtensions(schema as unknown as Parameters<typeof stateExtensions>[0]),
      autocompletion(),
      lintGutter(),
      keymap.of([...completionKeymap, ...defaultKeymap, ...historyKeymap]),
      EditorView.contentAttributes.of({ 'aria-labelledby': 'editor-label', 'aria-describedby': 'problems' }),
      EditorView.updateListener.of((update) => {
        if (update.docChanged) schedule();
      }),
    ],
  }),
});

function setDocument(text: string): void {
  view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: text } });
}

function option(select: HTMLSelectElement | HTMLOptGroupElement, value: string, label: string): void {
  const element = document.createElement('option');
  element.value = value;
  element.textContent = label;
  select.append(element);
}

function fillEventPicker(): void {
  const selected = eventPick.value;
  eventPick.replaceChildren();
  option(eventPick, '', '— paste your own —');
  const examples = document.createElement('optgroup');
  examples.label = 'Examples';
  for (const example of context?.examples ?? [])
    option(examples, `example:${example.name}`, example.name.replace(/\.json$/, ''));
  eventPick.append(examples);
  const recent = document.createElement('optgroup');
  recent.label = context?.recent.length ? 'Received recently (redacted)' : 'Received recently: none yet';
  context?.recent.forEach((entry, i) =>
    option(
      recent,
      `recent:${i}`,
      `${entry.receivedAt.slice(11, 19)} ${entry.label}${entry.text ? '' : ` — ${entry.note}`}`,
    ),
  );
  eventPick.append(recent);
  if ([...eventPick.options].some((o) => o.value === selected)) eventPick.value = selected;
}

function pickEvent(value: string): void {
  if (value.startsWith('example:')) {
    const name = value.slice('example:'.length);
    eventText.value = context?.examples.find((e) => e.name === name)?.text ?? '';
    caseName.value = name.replace(/\.json$/, '');
  } else if (value.startsWith('recent:')) {
    const entry = context?.recent[Number(value.slice('recent:'.length))];
    eventText.value = entry?.text ?? '';
    caseName.value = 'received';
  }
  schedule();
}

eventPick.addEventListener('change', () => pickEvent(eventPick.value));
documentPick.addEventListener('change', () => {
  const found = context?.documents.find((d) => d.name === documentPick.value);
  setDocument(found ? found.text : STARTER);
});
eventText.addEventListener('input', () => {
  eventPick.value = '';
  schedule();
});
objectsText.addEventListener('input', () => schedule());
caseName.addEventListener('input', () => schedule());
$('refresh-recent').addEventListener('click', () => void refreshRecent());
async function refreshRecent(): Promise<void> {
  try {
    const { recent } = await api<{ recent: Recorded[] }>('recent');
    if (context) context.recent = recent;
    fillEventPicker();
    statusLine.textContent = `${recent.length} received event${recent.length === 1 ? '' : 's'}`;
  } catch (err) {
    statusLine.textContent = (err as Error).message;
  }
}

// Re-evaluate a moment after the last edit; an answer for an older input is dropped.
let timer: ReturnType<typeof setTimeout> | undefined;
let inFlight: AbortController | undefined;
function schedule(): void {
  statusLine.textContent = 'Editing…';
  clearTimeout(timer);
  timer = setTimeout(() => void evaluate(), 250);
}

function eventLabel(): string {
  const name = caseName.value.trim().replace(/[^\w.-]/g, '-') || 'case';
  return `${name}.event.json`;
}

async function evaluate(): Promise<void> {
  inFlight?.abort();
  const controller = (inFlight = new AbortController());
  const input = {
    document: view.state.doc.toString(),
    event: eventText.value,
    objects: objectsText.value,
    eventLabel: eventLabel(),
  };
  const key = JSON.stringify(input);
  statusLine.textContent = 'Evaluating…';
  try {
    const result = await api<Evaluation>('evaluate', {
      method: 'POST',
      body: key,
      headers: { 'content-type': 'application/json' },
      signal: controller.signal,
    });
    if (controller !== inFlight) return;
    latest = result;
    latestFor = key;
    show(result, input.document);
    statusLine.textContent = 'Up to date';
    document.body.dataset.state = 'ready';
  } catch (err) {
    if ((err as Error).name === 'AbortError') return;
    statusLine.textContent = (err as Error).message;
  }
}

function show(result: Evaluation, text: string): void {
  // Problems inline (only if the document is still the one evaluated) and as a list that jumps to them.
  if (view.state.doc.toString() === text) {
    const length = view.state.doc.length;
    const diagnostics: Diagnostic[] = result.problems.map((p) => ({
      from: Math.min(p.from, length),
      to: Math.min(Math.max(p.to, p.from), length),
      severity: 'error',
      message: p.message,
    }));
    view.dispatch(setDiagnostics(view.state, diagnostics));
  }
  problemList.replaceChildren(
    ...result.problems.map((p) => {
      const item = document.createElement('li');
      const button = document.createElement('button');
      button.type = 'button';
      button.className = 'link';
      button.textContent = `line ${p.line}, column ${p.column}`;
      button.addEventListener('click', () => {
        const at = Math.min(p.from, view.state.doc.length);
        view.dispatch({ selection: { anchor: at, head: Math.min(p.to, view.state.doc.length) }, scrollIntoView: true });
        view.focus();
      });
      item.append(button, document.createTextNode(` ${p.message}`));
      return item;
    }),
  );
  eventProblemList.replaceChildren(
    ...[...result.eventProblems, ...result.objectProblems.map((p) => `objects: ${p}`)].map((p) => {
      const item = document.createElement('li');
      item.textContent = p;
      return item;
    }),
  );
  const matched = result.results.flatMap((r) => r.matched ?? []);
  summary.textContent =
    result.problems.length > 0
      ? `The document has ${result.problems.length} problem${result.problems.length === 1 ? '' : 's'}: the service would keep its previous version. Fix ${result.problems.length === 1 ? 'it' : 'them'} to see the result.`
      : result.results.length === 0
        ? 'No event to evaluate.'
        : matched.length > 0
          ? `Matched: ${[...new Set(matched)].join(', ')}`
          : `No rule matched (${result.rules.length} rule${result.rules.length === 1 ? '' : 's'} in the document).`;
  summary.className = matched.length > 0 && result.problems.length === 0 ? 'matched' : 'unmatched';
  resultsBox.replaceChildren(...(result.problems.length > 0 ? [] : result.results.map(renderReport)));
}

function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  text?: string,
  className?: string,
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  if (text !== undefined) element.textContent = text;
  if (className) element.className = className;
  return element;
}

const json = (value: unknown) => JSON.stringify(value);

function renderReport(report: Report): HTMLElement {
  const box = el('article', undefined, 'report');
  if (report.status !== undefined) {
    box.append(el('p', `Rejected with HTTP ${report.status}: ${report.error ?? ''}: ${report.detail ?? ''}`, 'error'));
    return box;
  }
  box.append(
    el(
      'p',
      `${report.type ?? ''}${report.change ? ` · change ${report.change}` : ''}${report.occurrence ? ` · occurrence ${report.occurrence}` : ''}`,
      'muted',
    ),
  );
  if (report.outcome === 'unresolved') box.append(el('p', `Not resolved: ${report.detail ?? ''}`, 'error'));
  if ((report.evaluated ?? []).length === 0 && report.outcome !== 'unresolved')
    box.append(el('p', 'No rule applies to this event (no rule is indexed for its reason, kind or type).'));
  for (const evaluation of report.evaluated ?? []) {
    const rule = el('section', undefined, `rule ${evaluation.matched ? 'matched' : 'unmatched'}`);
    rule.append(
      el(
        'h3',
        `${evaluation.matched ? '✓' : '✗'} ${evaluation.rule}${evaluation.shadow ? ' (shadow: never sends)' : ''} ${evaluation.matched ? 'matched' : 'did not match'}`,
      ),
    );
    const table = el('table');
    const head = el('tr');
    for (const title of ['', 'condition', 'the fact was']) head.append(el('th', title));
    table.append(el('thead'), el('tbody'));
    table.tHead!.append(head);
    // The conditions that decided: all of them when the rule matched, else those that failed.
    for (const c of evaluation.conditions) {
      const decided = c.result !== undefined && c.result === evaluation.matched;
      const row = el(
        'tr',
        undefined,
        `${c.result === undefined ? 'skipped' : c.result ? 'held' : 'failed'}${decided ? ' decided' : ''}`,
      );
      row.append(
        el('td', c.result === undefined ? '–' : c.result ? '✓' : '✗'),
        el('td', `${c.fact}${c.path ? ` ${c.path}` : ''} ${c.operator} ${json(c.value)}`),
        el('td', c.result === undefined ? 'not evaluated' : (json(c.factValue) ?? 'absent')),
      );
      if (decided) row.title = 'this condition decided';
      table.tBodies[0].append(row);
    }
    rule.append(table);
    box.append(rule);
  }
  if (report.shadow?.length) {
    const block = el('section', undefined, 'shadow');
    block.append(el('h3', 'Shadow rules beside their live twins'));
    for (const outcome of report.shadow) {
      const live =
        outcome.live === 'none'
          ? 'no live rule of this name'
          : `live rule ${outcome.live === 'matched' ? 'matched' : 'did not match'}`;
      block.append(
        el(
          'p',
          `${outcome.rule}: shadow ${outcome.matched ? 'matched' : 'did not match'}, ${live} — ${outcome.differences.length === 0 ? 'no difference' : `${outcome.differences.length} difference${outcome.differences.length === 1 ? '' : 's'}`}`,
        ),
      );
      const list = el('ul');
      for (const difference of outcome.differences) list.append(el('li', difference, 'mono'));
      if (outcome.differences.length > 0) block.append(list);
    }
    box.append(block);
  }
  for (const action of report.actions ?? []) {
    const request = action.request;
    const block = el('section', undefined, 'request');
    block.append(el('h3', `→ ${action.destination} (rule ${action.rule})${request ? '' : ` · ${action.outcome}`}`));
    if (action.error) block.append(el('p', action.error, 'error'));
    if (action.digest) {
      const { key, group, count } = action.digest;
      block.append(
        el(
          'p',
          `digest ${JSON.stringify(key)}: ${group === 'open' ? 'joins the open group' : 'opens a new group'}, ${count} with this event (a dry run records nothing); when the group is sent:`,
        ),
      );
    }
    if (request) {
      block.append(el('p', request.url ? `${request.method} ${request.url}` : 'written to the service log', 'mono'));
      const headers = el('dl', undefined, 'headers');
      for (const [name, value] of Object.entries(request.headers)) headers.append(el('dt', name), el('dd', value));
      block.append(headers, el('pre', JSON.stringify(request.body, null, 2), 'body'));
    }
    box.append(block);
  }
  return box;
}

function download(name: string, text: string, type = 'application/json'): void {
  const link = el('a');
  link.href = URL.createObjectURL(new Blob([text], { type }));
  link.download = name;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 1000);
}

$('save-golden').addEventListener('click', () => void saveGolden());
async function saveGolden(): Promise<void> {
  if (
    !latest ||
    latestFor !==
      JSON.stringify({
        document: view.state.doc.toString(),
        event: eventText.value,
        objects: objectsText.value,
        eventLabel: eventLabel(),
      })
  )
    await evaluate();
  if (!latest || latest.problems.length > 0 || latest.results.length === 0) {
    statusLine.textContent = 'Nothing to save: the document needs to compile and an event to be evaluated';
    return;
  }
  const name = eventLabel().replace(/\.event\.json$/, '');
  download(`${name}.event.json`, `${eventText.value.trim()}\n`);
  download(`${name}.expected.json`, latest.golden);
  download(`${name}.rules.yaml`, view.state.doc.toString(), 'text/yaml');
  if (objectsText.value.trim()) download(`${name}.objects.yaml`, objectsText.value, 'text/yaml');
  exportLabel.textContent = 'Saved three files; run this where they are:';
  exportText.value = `kube-event-rules test --rules ${name}.rules.yaml${objectsText.value.trim() ? ` --objects ${name}.objects.yaml` : ''} --expect ${name}.expected.json ${name}.event.json`;
  statusLine.textContent = `Saved ${name}.event.json, ${name}.expected.json and ${name}.rules.yaml`;
}

$('copy-configmap').addEventListener('click', () => void copyConfigMap());
async function copyConfigMap(): Promise<void> {
  const manifest = stringify({
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name: $<HTMLInputElement>('configmap-name').value.trim() || 'my-rules',
      namespace: $<HTMLInputElement>('configmap-namespace').value.trim() || 'default',
      labels: context?.configMapLabels ?? {},
    },
    data: { 'rules.yaml': view.state.doc.toString().replace(/\s*$/, '\n') },
  });
  exportLabel.textContent = 'ConfigMap (kubectl apply -f -):';
  exportText.value = manifest;
  try {
    await navigator.clipboard.writeText(manifest);
    statusLine.textContent = 'ConfigMap copied to the clipboard';
  } catch {
    exportText.select();
    statusLine.textContent = 'Select the ConfigMap below and copy it (the clipboard is not available here)';
  }
}

/** The service's shadow rules on live traffic: counts and the last differences. */
function showShadowStatus(status: ShadowStatus | undefined): void {
  const box = $('shadow-status');
  box.hidden = !status || status.rules.length === 0;
  if (!status || box.hidden) return;
  const list = el('ul');
  for (const rule of status.rules)
    list.append(
      el(
        'li',
        `${rule.rule}${rule.twin ? '' : ' (new, no live twin)'}: evaluated ${rule.evaluated}, matched ${rule.matched}, differed ${rule.differed}`,
      ),
    );
  const last = el('ul');
  for (const d of status.lastDifferences.slice(0, 10))
    last.append(el('li', `${d.at.slice(11, 19)} ${d.rule} on ${d.event}: ${d.differences.join('; ')}`, 'mono'));
  box.replaceChildren(
    el('summary', `Shadow rules on live traffic (${status.rules.length})`),
    list,
    ...(status.lastDifferences.length > 0 ? [el('p', 'Last differences:'), last] : []),
  );
}

async function start(): Promise<void> {
  try {
    context = await api<Context>('context');
  } catch (err) {
    statusLine.textContent = (err as Error).message;
    return;
  }
  $('where').textContent =
    context.mode === 'local'
      ? `Local, no cluster needed · ${context.cluster}`
      : `Served by the running service · ${context.cluster}`;
  fillEventPicker();
  showShadowStatus(context.shadow);
  documentPick.replaceChildren();
  for (const doc of context.documents) option(documentPick, doc.name, doc.name);
  option(documentPick, '', 'A new document');
  const firstExample = context.examples.find((e) => e.name.includes('backoff')) ?? context.examples[0];
  if (firstExample && !eventText.value) {
    eventPick.value = `example:${firstExample.name}`;
    pickEvent(eventPick.value);
  }
  if (view.state.doc.length === 0) setDocument(context.documents[0]?.text ?? STARTER);
  schedule();
}

void start();
