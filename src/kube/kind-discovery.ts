/**
 * KindDiscovery: which kinds an apiVersion serves and whether each is namespaced, from one discovery
 * request per apiVersion, remembered for a TTL — unknown apiVersions too. A made-up involvedObject.kind
 * therefore costs no request once its apiVersion was listed, and a made-up apiVersion at most two
 * requests per TTL (bounded: least recently listed forgotten first). client-node's own resource lookup
 * asks the API server again for every kind it does not know.
 * A discovery glitch is never "no such kind": a 404 is believed only for an apiVersion never served here
 * and absent from the API server's version list, and a kind listed before that a listing leaves out is a
 * failed lookup (retried, not remembered) — an API server starting or a group briefly unserved must not
 * make objects absent for the TTL.
 */
import { ApiException, ApisApi, KubernetesObjectApi, type Configuration } from '@kubernetes/client-node';
import { LRUCache } from 'lru-cache';
import { Uncached, fetchShared } from './fetch-shared.js';

/** `unavailable`: refused by the rate limit, or the request failed with `error` (the caller classifies it). */
export type KindInfo =
  | { status: 'known'; namespaced: boolean }
  | { status: 'unknown' }
  | { status: 'unavailable'; reason: string; rateLimited: boolean; error?: unknown };

type Listing =
  | { ok: true; kinds: ReadonlyMap<string, boolean> }
  | { ok: false; reason: string; rateLimited: boolean; error?: unknown };

/** Most apiVersions remembered (a cluster serves a few dozen; the rest are made up). */
const MAX_API_VERSIONS = 512;

/** The object API, with its (protected) discovery request reachable. */
class DiscoveringObjectApi extends KubernetesObjectApi {
  /** listKinds asks the API server for the kinds of one apiVersion; undefined when it answers 404. */
  async listKinds(apiVersion: string): Promise<ReadonlyMap<string, boolean> | undefined> {
    delete this.apiVersionResourceCache[apiVersion];
    try {
      await this.resource(apiVersion, '');
    } catch (err) {
      if (err instanceof ApiException && err.code === 404) return undefined;
      throw err;
    }
    const resources = this.apiVersionResourceCache[apiVersion]?.resources ?? [];
    return new Map(resources.filter((r) => !r.name.includes('/')).map((r) => [r.kind, r.namespaced]));
  }
}

export class KindDiscovery {
  private readonly api: DiscoveringObjectApi;
  private readonly groups: ApisApi;
  private readonly listings: LRUCache<string, Listing>;
  /** Every kind each apiVersion was seen to serve: such a kind is never made absent by a glitch. */
  private readonly served = new LRUCache<string, Set<string>>({ max: MAX_API_VERSIONS });

  /**
   * `admit` is asked before each discovery request (the client-side rate limit); `configuration` aborts requests at
   * their deadline.
   */
  constructor(
    configuration: Configuration,
    ttlMs: number,
    private readonly admit: () => boolean,
  ) {
    this.api = new DiscoveringObjectApi(configuration);
    this.groups = new ApisApi(configuration);
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
    if (!value.ok)
      return { status: 'unavailable', reason: value.reason, rateLimited: value.rateLimited, error: value.error };
    const namespaced = value.kinds.get(kind);
    if (namespaced !== undefined) return { status: 'known', namespaced };
    if (this.served.get(apiVersion)?.has(kind)) {
      this.listings.delete(apiVersion); // listed again by the next lookup
      return {
        status: 'unavailable',
        reason: `discovery of ${apiVersion} no longer lists ${kind}, which it served before`,
        rateLimited: false,
      };
    }
    return { status: 'unknown' };
  }

  private async list(apiVersion: string): Promise<Listing> {
    if (!this.admit()) return { ok: false, reason: 'client-side API rate limit reached', rateLimited: true };
    try {
      const kinds = await this.api.listKinds(apiVersion);
      if (kinds) {
        this.remember(apiVersion, kinds);
        return { ok: true, kinds };
      }
      if (this.served.has(apiVersion))
        return {
          ok: false,
          reason: `discovery of ${apiVersion} answered 404, although it served kinds before`,
          rateLimited: false,
        };
      if (await this.listedByServer(apiVersion))
        return {
          ok: false,
          reason: `discovery of ${apiVersion} answered 404, although the API server lists that version`,
          rateLimited: false,
        };
      return { ok: true, kinds: new Map() };
    } catch (err) {
      return {
        ok: false,
        reason: `discovery of ${apiVersion} failed: ${err instanceof ApiException ? `HTTP ${err.code}` : (err as Error).message}`,
        rateLimited: false,
        error: err,
      };
    }
  }

  /**
   * listedByServer: whether the API server's version list names this apiVersion (the core v1 always); throws when it
   * cannot be read.
   */
  private async listedByServer(apiVersion: string): Promise<boolean> {
    if (apiVersion === 'v1') return true;
    if (!apiVersion.includes('/')) return false;
    if (!this.admit()) throw new Error('client-side API rate limit reached');
    const list = await this.groups.getAPIVersions();
    return list.groups.some((group) => group.versions.some((version) => version.groupVersion === apiVersion));
  }

  private remember(apiVersion: string, kinds: ReadonlyMap<string, boolean>): void {
    const known = this.served.get(apiVersion) ?? new Set<string>();
    for (const kind of kinds.keys()) known.add(kind);
    this.served.set(apiVersion, known);
  }
}
