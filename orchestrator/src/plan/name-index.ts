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

/** FNV-1a over the UTF-16 code units of `name`, seeded. */
function hashOf(name: string): number {
  let hash = 0x811c9dc5 ^ SEED;
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

  /** @param expected How many names will be added (more make it use a `Map`). */
  constructor(expected: number) {
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
    if (this.fallback === undefined && this.names.length <= this.mask >> 1) {
      const { slots, mask, names } = this;
      const hash = hashOf(name);
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
    const hash = hashOf(name);
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
