/**
 * A string → number index for the planner's operation ids: an open-addressing hash table in one
 * `Int32Array`, with a JS `Map` as the fallback when a probe runs long.
 *
 * Why not a `Map` from the start: at 100k operations, building a `Map` of the ids and resolving
 * 200k `depends_on` names through it took 200-250 ms on a loaded 2-core machine, against 60-70 ms
 * for this table (same data, same process). The `Map` grows by rehashing into new tables on the
 * JS heap, and each lookup follows its chain through memory the collector has just moved; this
 * table is sized once, lives outside the JS heap, and keeps each slot's hash beside its index, so
 * a name is compared only with ids of the same hash.
 *
 * The hash (FNV-1a) is seeded per process, and an id that would land more than {@link MAX_PROBE}
 * slots past its own moves every entry into a `Map`, so ids chosen to collide cost a `Map`, never a
 * quadratic search.
 *
 * @internal
 * @module
 */

/** The farthest an entry may sit past its hash's slot before the index switches to a `Map`. */
const MAX_PROBE = 64;

/** A per-process seed, so which names collide cannot be worked out in advance. */
const SEED = (Math.random() * 2 ** 32) >>> 0;

/**
 * FNV-1a over the UTF-16 code units of `name`, seeded.
 *
 * @internal Exported for tests, which look for two names with the same hash.
 */
export function hashOf(name: string, seed: number): number {
  let hash = 0x811c9dc5 ^ seed;
  for (let i = 0; i < name.length; i++) hash = Math.imul(hash ^ name.charCodeAt(i), 0x01000193);
  return hash | 0;
}

/** Names mapped to numbers, first entry of each name wins; keys iterate in insertion order. */
export class NameIndex {
  private readonly names: string[] = [];
  /**
   * Three numbers per slot: the entry (its position in `names`) plus one, 0 for an empty slot;
   * the name's hash; its number. No entry is more than MAX_PROBE slots past its hash's own slot.
   */
  private readonly slots: Int32Array;
  private readonly mask: number;
  private fallback: Map<string, number> | undefined;

  /**
   * @param expected How many names will be added (more make it use a `Map`).
   * @param seed The hash seed; tests choose it, to make names collide.
   */
  constructor(
    expected: number,
    private readonly seed = SEED,
  ) {
    let capacity = 16;
    while (capacity < expected * 2) capacity *= 2;
    this.slots = new Int32Array(capacity * 3);
    this.mask = capacity - 1;
  }

  get size(): number {
    return this.names.length;
  }

  /**
   * Adds a name unless it is already there.
   *
   * @param name The name.
   * @param value Its number, an int32.
   * @returns The number stored before for `name`, or undefined when it was added now.
   */
  add(name: string, value: number): number | undefined {
    return this.insert(name, hashOf(name, this.seed), value);
  }

  /**
   * Adds the names of many owners, numbered by position: `nameOf(owners[i])` gets `i`.
   *
   * Same as {@link add} for each in turn, faster at 100k names: hashing every name first leaves
   * a loop of table reads whose cache misses overlap (see {@link getAll}).
   *
   * @param owners What holds the names (e.g. operations).
   * @param nameOf Its name (e.g. `id`).
   * @returns For each owner, the number already stored for its name, or -1 when it was added.
   */
  addAll<T>(owners: readonly T[], nameOf: (owner: T) => string): Int32Array {
    const hashes = new Int32Array(owners.length);
    for (let i = 0; i < owners.length; i++) hashes[i] = hashOf(nameOf(owners[i]!), this.seed);
    const earlier = new Int32Array(owners.length);
    for (let i = 0; i < owners.length; i++) {
      earlier[i] = this.insert(nameOf(owners[i]!), hashes[i]!, i) ?? -1;
    }
    return earlier;
  }

  /** {@link add} with the name's hash given. */
  private insert(name: string, hash: number, value: number): number | undefined {
    if (this.fallback === undefined && this.names.length <= this.mask >> 1) {
      const { slots, mask, names } = this;
      let slot = hash & mask;
      for (let probe = 0; probe < MAX_PROBE; probe++) {
        const at = 3 * slot;
        const entry = slots[at]! - 1;
        if (entry < 0) {
          slots[at] = names.length + 1;
          slots[at + 1] = hash;
          slots[at + 2] = value;
          names.push(name);
          return undefined;
        }
        if (slots[at + 1] === hash && names[entry] === name) return slots[at + 2];
        slot = (slot + 1) & mask;
      }
    }
    return this.addToMap(name, value);
  }

  /** The number of `name`, if it was added. */
  get(name: string): number | undefined {
    if (this.fallback !== undefined) return this.fallback.get(name);
    const { slots, mask, names } = this;
    const hash = hashOf(name, this.seed);
    let slot = hash & mask;
    for (let probe = 0; probe < MAX_PROBE; probe++) {
      const at = 3 * slot;
      const entry = slots[at]! - 1;
      if (entry < 0) return undefined;
      if (slots[at + 1] === hash && names[entry] === name) return slots[at + 2];
      slot = (slot + 1) & mask;
    }
    return undefined;
  }

  /**
   * Looks up every name of many lists at once: the number of `listOf(owners[i])[j]` for each
   * `i`, then each `j`, flattened in that order, -1 for a name that was not added (so the
   * numbers should not be negative).
   *
   * Same answers as {@link get} name by name, about twice as fast over 200k names: the lookups
   * run in passes (hash every name, then probe every slot, then compare every candidate), so the
   * memory reads of different names do not wait for one another. At that size each read is a
   * cache miss, and the time is the misses'.
   *
   * @param owners What holds the lists (e.g. operations).
   * @param listOf Its list of names (e.g. `depends_on`).
   * @returns The numbers, one per name.
   */
  getAll<T>(owners: readonly T[], listOf: (owner: T) => readonly string[]): Int32Array {
    let total = 0;
    for (let i = 0; i < owners.length; i++) total += listOf(owners[i]!).length;
    const found = new Int32Array(total);
    if (this.fallback !== undefined) {
      let k = 0;
      for (let i = 0; i < owners.length; i++) {
        for (const name of listOf(owners[i]!)) found[k++] = this.fallback.get(name) ?? -1;
      }
      return found;
    }
    const { slots, names } = this;
    // Pass 1: hashes. Pass 2: the first slot along each hash's probe holding that hash: its
    // entry into `found`, its number into `numbers`, so pass 3 need not read the table again.
    // `numbers` takes over the hashes' array: each hash is read just before its number replaces it.
    const hashes = new Int32Array(total);
    let k = 0;
    for (let i = 0; i < owners.length; i++) {
      const list = listOf(owners[i]!);
      for (let j = 0; j < list.length; j++) hashes[k++] = hashOf(list[j]!, this.seed);
    }
    const numbers = hashes;
    for (k = 0; k < total; k++) {
      const slot = this.slotWithHash(hashes[k]!);
      found[k] = slot < 0 ? -1 : slots[3 * slot]! - 1;
      numbers[k] = slot < 0 ? 0 : slots[3 * slot + 2]!;
    }
    // Pass 3: that entry's name decides; another name with the same hash takes the whole probe.
    k = 0;
    for (let i = 0; i < owners.length; i++) {
      const list = listOf(owners[i]!);
      for (let j = 0; j < list.length; j++, k++) {
        const entry = found[k]!;
        if (entry < 0) continue;
        const name = list[j]!;
        found[k] = names[entry] === name ? numbers[k]! : (this.get(name) ?? -1);
      }
    }
    return found;
  }

  /** The first slot along `hash`'s probe that holds that hash, or -1 when there is none. */
  private slotWithHash(hash: number): number {
    const { slots, mask } = this;
    let slot = hash & mask;
    for (let probe = 0; probe < MAX_PROBE; probe++) {
      const at = 3 * slot;
      if (slots[at] === 0) return -1;
      if (slots[at + 1] === hash) return slot;
      slot = (slot + 1) & mask;
    }
    return -1;
  }

  /** The names, in the order they were added. */
  keys(): IterableIterator<string> {
    return this.names.values();
  }

  /** Adds through the `Map`, moving every entry of the table into it the first time. */
  private addToMap(name: string, value: number): number | undefined {
    if (this.fallback === undefined) {
      this.fallback = new Map();
      for (let slot = 0; slot <= this.mask; slot++) {
        const entry = this.slots[3 * slot]! - 1;
        if (entry >= 0) this.fallback.set(this.names[entry]!, this.slots[3 * slot + 2]!);
      }
    }
    const existing = this.fallback.get(name);
    if (existing !== undefined) return existing;
    this.fallback.set(name, value);
    this.names.push(name);
    return undefined;
  }
}
