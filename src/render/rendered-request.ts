/** What rendering gives delivery: a leaf both sides import (render-request.ts builds it, a Sender sends it). */
import type { Transport } from './transport.js';

export interface RenderedRequest {
  method: string;
  url: string;
  headers: Record<string, string>;
  body: string;
  /** Header names whose values came from env or Secrets; printed forms redact them. */
  secretHeaders: string[];
  /** Whether the URL itself came from env or a Secret (a Slack webhook URL is a credential). */
  secretUrl: boolean;
  /** Body fields (dotted paths) whose values came from env or Secrets, e.g. a PagerDuty routing_key. */
  secretFields?: string[];
  /** The whole body came from a Secret (the hpa-sender template). */
  secretBody?: boolean;
  /** The destination's TLS material and proxy, when it sets them (never printed). */
  transport?: Transport;
}
