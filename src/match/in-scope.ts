/** Which rules may see an event: a team's rules see only events in the team's own namespace. */
import type { EventInput, ObjectReference } from '../normalize/kube-event.js';
import type { CompiledRule } from '../rules/compiled-rule.js';

/**
 * inScope keeps the rules that may see this event: cluster-wide rules always, a team's rules only for
 * events in the team's namespace about objects there. When the Event's own namespace and its involved
 * object's disagree (the API server refuses such Events; a forged one), no team sees it.
 */
export function inScope(rules: CompiledRule[], input: EventInput): CompiledRule[] {
  if (rules.every((rule) => rule.scope === undefined)) return rules;
  const involved = (input.event.involvedObject as ObjectReference | undefined)?.namespace || undefined;
  const eventNamespace = ownNamespaceOf(input);
  const namespace =
    involved && eventNamespace && involved !== eventNamespace ? undefined : (involved ?? eventNamespace);
  return rules.filter((rule) => rule.scope === undefined || rule.scope === namespace);
}

/** ownNamespaceOf: the namespace the Event is recorded in (its metadata, else the CloudEvent's attribute). */
export function ownNamespaceOf(input: EventInput): string | undefined {
  const own = (input.event.metadata as { namespace?: unknown } | undefined)?.namespace ?? input.cloudevent.namespace;
  return typeof own === 'string' && own !== '' ? own : undefined;
}
