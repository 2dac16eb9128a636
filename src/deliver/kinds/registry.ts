/**
 * Every destination kind, by the name a document gives it. Adding a kind is a file in this folder and a
 * line here; the contract suite (test/deliver/destination-kinds.contract.test.ts) runs against each.
 */
import type { Sender } from '../destination.js';
import type { DestinationKind, SenderDeps } from './destination-kind.js';
import { hpaSenderKind } from './hpa-sender.js';
import { httpKind } from './http.js';
import { logKind } from './log.js';
import { metricKind } from './metric.js';

export const DESTINATION_KINDS: Readonly<Record<string, DestinationKind>> = Object.freeze({
  [httpKind.name]: httpKind,
  [logKind.name]: logKind,
  [hpaSenderKind.name]: hpaSenderKind,
  [metricKind.name]: metricKind,
});

export const DEFAULT_KIND = httpKind.name;

/** destinationKind: the kind of a compiled destination (compiling refused unknown kinds). */
export function destinationKind(name: string): DestinationKind {
  const kind = Object.hasOwn(DESTINATION_KINDS, name) ? DESTINATION_KINDS[name] : undefined;
  if (!kind)
    throw new Error(
      `unknown destination kind ${JSON.stringify(name)} (known: ${Object.keys(DESTINATION_KINDS).join(', ')})`,
    );
  return kind;
}

/** The sender of each kind, by kind name. */
export type Senders = Readonly<Record<string, Sender>>;

export function createSenders(deps: SenderDeps): Senders {
  return Object.freeze(
    Object.fromEntries(Object.values(DESTINATION_KINDS).map((kind) => [kind.name, kind.sender(deps)])),
  );
}
