/**
 * A destination kind (`kind:` of a destination) is everything that differs between kinds, in one place:
 * what it checks at load, what it reads, how it renders a request, and who sends it. The pipeline and
 * the compiler know kinds only through this interface and the registry (./registry.ts).
 */
import type { ActionSpec, DestinationSpec } from '../../rules/document.js';
import type { CompiledAction, CompiledDestination } from '../../rules/compiled-rule.js';
import type { TemplateOptions } from '../../render/template.js';
import type { UserMetrics } from '../user-metrics.js';
import type { EnrichmentFact } from '../../enrich/enrichment-facts.js';
import type { ResolveContext } from '../../render/value-source.js';
import type { RenderedRequest } from '../../render/rendered-request.js';
import type { Sender } from '../destination.js';

/** What the service gives every kind to build its sender from, once at start. */
export interface SenderDeps {
  /** The HTTP client behind its policies (bulkhead and circuit breaker, retry, timeout per attempt). */
  network: Sender;
  /** Where output lines go (stdout in the service). */
  writeLine: (line: string) => void;
  /** The metrics rule documents declare, on the service's registry (the `metric` kind records there). */
  userMetrics: UserMetrics;
}

export interface DestinationKind {
  /** How a destination declares it. */
  readonly name: string;
  /** One sentence for the schema and the docs. */
  readonly description: string;
  /** Load-time check of what only this kind allows or needs: the problem, or undefined. */
  check(spec: DestinationSpec): string | undefined;
  /** Load-time check of an action sending to a destination of this kind: the problem, or undefined. */
  checkAction?(action: ActionSpec): string | undefined;
  /** Compiles what only this kind declares, into the compiled destination (throws naming the field). */
  compile?(spec: DestinationSpec, options: TemplateOptions): Partial<CompiledDestination>;
  /** Enrichment facts every action of this kind reads, besides what its templates read. */
  readonly reads: readonly EnrichmentFact[];
  /** Sends over the network: a team's destination allowlist applies to the URL it renders. */
  readonly network: boolean;
  /** render builds the request of one action for one event (throws TemplateError or ConfigurationError). */
  render(action: CompiledAction, context: ResolveContext): Promise<RenderedRequest>;
  /** sender: who delivers this kind's requests (built once per service). */
  sender(deps: SenderDeps): Sender;
}
