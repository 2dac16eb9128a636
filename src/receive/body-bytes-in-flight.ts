/**
 * BodyBytesInFlight bounds the request bytes the process holds at once (MAX_BODY_BYTES_IN_FLIGHT). A request
 * holds its body several times over while it runs — the raw text, the parsed event, the normalized copy,
 * the rendered requests — so 200 concurrent 0.9 MB events took the process past its memory limit, though
 * each was under MAX_BODY_BYTES and their actions far under the action caps. Room is taken before the body
 * is read — the declared Content-Length, or MAX_BODY_BYTES when no length is declared (a chunked body may be
 * that long) — and kept until the request is answered. As with the action caps, an idle process takes any
 * request it would accept at all.
 */
export interface BodyBytesInFlight {
  /** reserve takes room for `bytes` until the returned release is called; undefined when there is none. */
  reserve(bytes: number): (() => void) | undefined;
  readonly inFlight: number;
}

export function createBodyBytesInFlight(limit: number): BodyBytesInFlight {
  let inFlight = 0;
  return {
    get inFlight() {
      return inFlight;
    },
    reserve(bytes) {
      if (inFlight > 0 && inFlight + bytes > limit) return undefined;
      inFlight += bytes;
      let released = false;
      return () => {
        if (released) return;
        released = true;
        inFlight -= bytes;
      };
    },
  };
}

/**
 * bytesToReserve: what a request may bring — its declared length (a longer one is refused unread with 413), else the
 * most a body may be.
 */
export function bytesToReserve(contentLength: string, maxBodyBytes: number): number {
  const declared = contentLength.trim() === '' ? NaN : Number(contentLength);
  return Number.isSafeInteger(declared) && declared >= 0 ? Math.min(declared, maxBodyBytes) : maxBodyBytes;
}
