/**
 * HashedTable: a bounded map from string keys to a few numbers each, kept entirely in typed arrays.
 *
 * Why not a Map: the occurrence and dedup caches hold 100,000 entries each, and with a Map every entry is
 * a key string plus a value object or heap number — hundreds of thousands of objects that every major
 * garbage collection marks again. Measured in the 10-minute soak: once those caches were full, p99 at a
 * steady 1,000 events/s rose from ≈ 6 ms to 28–35 ms and RSS by ≈ 55 MB (docs/performance.md). Typed
 * arrays hold no references, so the collector never walks them.
 *
 * Keys are stored as a 64-bit hash, not as text: two different keys share a hash with a probability of
 * about n / 2^64 per lookup (≈ 5·10⁻¹⁵ at 100,000 entries), which these caches accept — a collision makes
 * one key look present: at worst one delivery skipped as already sent, or one repeat taken for a redelivery.
 *
 * Which keys it keeps: those written by one of its last `capacity` writes (and not deleted since) — the
 * least recently written leave first, and a key written often takes several of those places. A ring
 * holds the hash of each of the last `capacity` writes; each entry knows the ring position of its latest
 * write, so when the ring comes round to a position, the key written there leaves unless written since.
 *
 * Layout: open addressing with linear probing at < 50 % load (the table doubles as entries arrive, up to
 * the power of two above twice the capacity), deletion by backward shift (no tombstones). 12 bytes per
 * slot plus 8 per field, and 8 per ring position.
 */
export class HashedTable {
  private readonly maxSlots: number;
  private mask = 0;
  private hashHigh = new Int32Array(0);
  private hashLow = new Int32Array(0);
  /** Ring position of each slot's latest write; -1 marks an empty slot. */
  private latest = new Int32Array(0);
  private values = new Float64Array(0);
  private readonly ringHigh: Int32Array;
  private readonly ringLow: Int32Array;
  private ringNext = 0;
  private ringFull = false;
  private count = 0;
  // The hash of the last key hashed: two 32-bit lanes, kept in fields so hashing allocates nothing.
  private high = 0;
  private low = 0;

  /** `fields` numbers are kept per key, for the keys of the last `capacity` writes. */
  constructor(
    readonly capacity: number,
    private readonly fields: number,
  ) {
    this.maxSlots = 2 ** Math.ceil(Math.log2(capacity * 2 + 1));
    this.allocate(Math.min(this.maxSlots, 1024)); // grows with the entries, so memory follows use
    this.ringHigh = new Int32Array(capacity);
    this.ringLow = new Int32Array(capacity);
  }

  get size(): number {
    return this.count;
  }

  /** find returns the slot holding `key`, or -1. A slot is valid until the next write or delete. */
  find(key: string): number {
    this.hash(key);
    return this.findHashed(this.high, this.low);
  }

  /** get reads field `field` of the slot `find` returned. */
  get(slot: number, field = 0): number {
    return this.values[slot * this.fields + field];
  }

  /**
   * write makes `key` present (and its most recently written), evicting the key written `capacity` writes
   * ago if it was not written since, and returns its slot so the caller can `set` its fields. A new key's
   * fields start at 0.
   */
  write(key: string): number {
    this.hash(key);
    const high = this.high;
    const low = this.low;
    const position = this.recordWrite(high, low);
    let slot = this.findHashed(high, low); // after recordWrite: an eviction may have moved entries
    if (slot < 0) {
      if ((this.count + 1) * 2 > this.mask + 1 && this.mask + 1 < this.maxSlots) this.allocate((this.mask + 1) * 2);
      slot = this.emptySlot(low);
      this.hashHigh[slot] = high;
      this.hashLow[slot] = low;
      this.values.fill(0, slot * this.fields, (slot + 1) * this.fields);
      this.count++;
    }
    this.latest[slot] = position;
    return slot;
  }

  set(slot: number, field: number, value: number): void {
    this.values[slot * this.fields + field] = value;
  }

  delete(key: string): void {
    const slot = this.find(key);
    if (slot >= 0) this.deleteSlot(slot);
  }

  /**
   * recordWrite takes the next ring position and returns it. The record it overwrites is `capacity`
   * writes old: its key is evicted if that was the key's latest write, unless it is the key written now.
   */
  private recordWrite(high: number, low: number): number {
    const at = this.ringNext;
    if (this.ringFull && (this.ringHigh[at] !== high || this.ringLow[at] !== low)) {
      const oldest = this.findHashed(this.ringHigh[at], this.ringLow[at]);
      if (oldest >= 0 && this.latest[oldest] === at) this.deleteSlot(oldest);
    }
    this.ringHigh[at] = high;
    this.ringLow[at] = low;
    this.ringNext = (at + 1) % this.capacity;
    if (this.ringNext === 0) this.ringFull = true;
    return at;
  }

  /** allocate sets up `slots` empty slots and re-inserts the current entries (from their stored hashes). */
  private allocate(slots: number): void {
    const { hashHigh, hashLow, latest, values } = this;
    this.mask = slots - 1;
    this.hashHigh = new Int32Array(slots);
    this.hashLow = new Int32Array(slots);
    this.latest = new Int32Array(slots).fill(-1);
    this.values = new Float64Array(slots * this.fields);
    for (let old = 0; old < latest.length; old++) {
      if (latest[old] === -1) continue;
      const slot = this.emptySlot(hashLow[old]);
      this.hashHigh[slot] = hashHigh[old];
      this.hashLow[slot] = hashLow[old];
      this.latest[slot] = latest[old];
      this.values.set(values.subarray(old * this.fields, (old + 1) * this.fields), slot * this.fields);
    }
  }

  private findHashed(high: number, low: number): number {
    for (let slot = low & this.mask; this.latest[slot] !== -1; slot = (slot + 1) & this.mask) {
      if (this.hashLow[slot] === low && this.hashHigh[slot] === high) return slot;
    }
    return -1;
  }

  private emptySlot(low: number): number {
    let slot = low & this.mask;
    while (this.latest[slot] !== -1) slot = (slot + 1) & this.mask;
    return slot;
  }

  /** Backward-shift deletion: move later members of the probe run up so lookups never meet a hole early. */
  private deleteSlot(hole: number): void {
    this.latest[hole] = -1;
    this.count--;
    for (let slot = (hole + 1) & this.mask; this.latest[slot] !== -1; slot = (slot + 1) & this.mask) {
      const home = this.hashLow[slot] & this.mask;
      // The entry may move into the hole only if its home is not cyclically within (hole, slot].
      if (((slot - home) & this.mask) < ((slot - hole) & this.mask)) continue;
      this.hashHigh[hole] = this.hashHigh[slot];
      this.hashLow[hole] = this.hashLow[slot];
      this.latest[hole] = this.latest[slot];
      this.values.copyWithin(hole * this.fields, slot * this.fields, (slot + 1) * this.fields);
      this.latest[slot] = -1;
      hole = slot;
    }
  }

  /**
   * hash: two 32-bit multiply–xorshift lanes over the UTF-16 code units, cross-mixed at the end (the
   * public-domain cyrb53 construction, both lanes kept whole for 64 bits).
   */
  private hash(key: string): void {
    let h1 = 0xdeadbeef;
    let h2 = 0x41c6ce57;
    for (let i = 0; i < key.length; i++) {
      const unit = key.charCodeAt(i);
      h1 = Math.imul(h1 ^ unit, 2654435761);
      h2 = Math.imul(h2 ^ unit, 1597334677);
    }
    h1 = Math.imul(h1 ^ (h1 >>> 16), 2246822507) ^ Math.imul(h2 ^ (h2 >>> 13), 3266489909);
    h2 = Math.imul(h2 ^ (h2 >>> 16), 2246822507) ^ Math.imul(h1 ^ (h1 >>> 13), 3266489909);
    this.high = h1;
    this.low = h2;
  }
}
