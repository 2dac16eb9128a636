/**
 * `log`: the rendered request (secrets redacted) as one JSON line on stdout, whatever LOG_LEVEL is — it is
 * output, not a diagnostic. Nothing leaves the process, so no network policy applies.
 */
import { knownSecrets } from '../../redact.js';
import { redacted, renderRequest } from '../../render/render-request.js';
import type { DestinationKind } from './destination-kind.js';

export const logKind: DestinationKind = {
  name: 'log',
  description: 'writes the request to stdout as one JSON line',
  check: (spec) =>
    spec.tls || spec.proxy ? 'tls and proxy apply to http destinations only (this one is log)' : undefined,
  reads: [],
  network: false,
  render: renderRequest,
  sender: ({ writeLine }) => ({
    async send(request, { destination, context }) {
      // Secret parts by position, then any remembered value a template copied elsewhere.
      writeLine(
        JSON.stringify(
          knownSecrets.redactDeep({
            time: new Date().toISOString(),
            destination,
            ...context,
            request: redacted(request),
          }),
        ),
      );
      return { outcome: 'delivered', attempts: 1 };
    },
  }),
};
