/** `http` (the default kind): the request built from the document's url, headers and body, sent over HTTP(S). */
import { ConfigurationError } from '../../errors.js';
import { renderRequest } from '../../render/render-request.js';
import type { DestinationKind } from './destination-kind.js';

export const httpKind: DestinationKind = {
  name: 'http',
  description: 'sends the request built from url, headers and body',
  check: (spec) => (spec.url === undefined ? 'an http destination needs a url' : undefined),
  reads: [],
  network: true,
  async render(action, context) {
    const request = await renderRequest(action, context);
    if (!/^https?:\/\/[^/]/.test(request.url)) {
      const shown = request.secretUrl ? '(secret)' : JSON.stringify(request.url);
      throw new ConfigurationError(`destination ${action.destination.name}: url ${shown} is not an http(s) URL`);
    }
    return request;
  },
  sender: ({ network }) => network,
};
