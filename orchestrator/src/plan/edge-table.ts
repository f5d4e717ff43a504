/**
 * A plan's edges in columns: task positions and a kind byte per edge, in typed arrays.
 *
 * Why not an array of `{ from, to, type, reason }`: at 100k operations a plan has 200k edges,
 * and every one of those objects outlives planning, so the young-generation collector copies
 * each twice (12 MB at 100k operations), and at that size planning time is mostly that copying.
 * Typed arrays live outside the JS heap. Readers still see {@link PlanEdge} objects: iterating
 * builds each one as it is read, and an object that dies young costs the collector nothing.
 *
 * `JSON.stringify` writes the table as the array of edge objects it stands for, so a stored or
 * served plan looks as it always has, and a plan read back from JSON has a plain array, which
 * satisfies {@link PlanEdgeList} too.
 *
 * @module
 */
import type { PlanEdge, PlanEdgeList, PlannedTask } from './types.ts';

const REASONS: readonly PlanEdge['reason'][] = ['depends_on', 'dependency', 'requires'];

/** The kind byte of an edge: bit 0 set for hard, the reason's index in {@link REASONS} above. */
export function edgeKind(hard: boolean, reason: PlanEdge['reason']): number {
  return (REASONS.indexOf(reason) << 1) | (hard ? 1 : 0);
}

/** Edges between a plan's tasks, by position in its `tasks`. */
export class EdgeTable implements PlanEdgeList {
  /**
   * @param tasks The plan's tasks, which `from` and `to` index.
   * @param from The task each edge starts from.
   * @param to The task that waits, for each edge.
   * @param kinds Each edge's {@link edgeKind}.
   */
  constructor(
    private readonly tasks: readonly PlannedTask[],
    private readonly from: Int32Array,
    private readonly to: Int32Array,
    private readonly kinds: Uint8Array,
  ) {}

  get length(): number {
    return this.from.length;
  }

  /** The edge at `index`, built now (0 ≤ index < length). */
  at(index: number): PlanEdge {
    const kind = this.kinds[index]!;
    return {
      from: this.tasks[this.from[index]!]!.id,
      to: this.tasks[this.to[index]!]!.id,
      type: kind & 1 ? 'hard' : 'soft',
      reason: REASONS[kind >> 1]!,
    };
  }

  [Symbol.iterator](): Iterator<PlanEdge> {
    let index = 0;
    return {
      next: (): IteratorResult<PlanEdge> =>
        index < this.length
          ? { value: this.at(index++), done: false }
          : { value: undefined, done: true },
    };
  }

  /** The edges as plain objects, which is how `JSON.stringify` writes the table. */
  toJSON(): PlanEdge[] {
    const edges = new Array<PlanEdge>(this.length);
    for (let e = 0; e < edges.length; e++) edges[e] = this.at(e);
    return edges;
  }
}
