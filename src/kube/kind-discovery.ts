/**
 * KindDiscovery: which kinds an apiVersion serves and whether each is namespaced, from one discovery
 * request per apiVersion, remembered for a TTL — unknown apiVersions too. A made-up involvedObject.kind
 * therefore costs no request once its apiVersion was listed, and a made-up apiVersion at most one
 * request per TTL (bounded: least recently listed forgotten first). client-node's own resource lookup
 * asks the API server again for every kind it does not know.
 */
import { ApiException, KubernetesObjectApi, type Configuration } from '@kubernetes/client-node';
import { LRUCache } from 'lru-cache';
import { Uncached, fetchShared } from './fetch-shared.js';

/** `unavailable`: refused by the rate limit, or the request failed with `error` (the caller classifies it). */
export type KindInfo = { status: 'known'; namespaced: boolean } | { status: 'unknown' } | { status: 'unavailable'; reason: string; rateLimited: boolean; error?: unknown };

type Listing = { ok: true; kinds: ReadonlyMap<string, boolean> } | { ok: false; reason: string; rateLimited: boolean; error?: unknown };

/** Most apiVersions remembered (a cluster serves a few dozen; the rest are made up). */
const MAX_API_VERSIONS = 512;

/** The object API, with its (protected) discovery request reachable. */
class DiscoveringObjectApi extends KubernetesObjectApi {
  /** listKinds asks the API server for the kinds of one apiVersion; an unknown apiVersion lists none. */
  async listKinds(apiVersion: string): Promise<ReadonlyMap<string, boolean>> {
    delete this.apiVersionResourceCache[apiVersion];
    try {
      await this.resource(apiVersion, '');
    } catch (err) {
      if (err instanceof ApiException && err.code === 404) return new Map();
      throw err;
    }
    const resources = this.apiVersionResourceCache[apiVersion]?.resources ?? [];
    return new Map(resources.filter((r) => !r.name.includes('/')).map((r) => [r.kind, r.namespaced]));
  }
}

export class KindDiscovery {
  private readonly api: DiscoveringObjectApi;
  private readonly listings: LRUCache<string, Listing>;

  /** `admit` is asked before each discovery request (the client-side rate limit); `configuration` aborts requests at their deadline. */
  constructor(configuration: Configuration, ttlMs: number, private readonly admit: () => boolean) {
    this.api = new DiscoveringObjectApi(configuration);
    // A listing is kept for ttlMs; a failed one is shared by the callers waiting for it, then forgotten.
    this.listings = new LRUCache<string, Listing>({
      max: MAX_API_VERSIONS,
      ttl: ttlMs,
      fetchMethod: async (apiVersion) => {
        const listing = await this.list(apiVersion);
        if (listing.ok) return listing;
        throw new Uncached(listing);
      },
    });
  }

  async find(apiVersion: string, kind: string): Promise<KindInfo> {
    const { value } = await fetchShared(this.listings, apiVersion, undefined);
    if (!value.ok) return { status: 'unavailable', reason: value.reason, rateLimited: value.rateLimited, error: value.error };
    const namespaced = value.kinds.get(kind);
    return namespaced === undefined ? { status: 'unknown' } : { status: 'known', namespaced };
  }

  private async list(apiVersion: string): Promise<Listing> {
    if (!this.admit()) return { ok: false, reason: 'client-side API rate limit reached', rateLimited: true };
    try {
      return { ok: true, kinds: await this.api.listKinds(apiVersion) };
    } catch (err) {
      return { ok: false, reason: `discovery of ${apiVersion} failed: ${err instanceof ApiException ? `HTTP ${err.code}` : (err as Error).message}`, rateLimited: false, error: err };
    }
  }
}
