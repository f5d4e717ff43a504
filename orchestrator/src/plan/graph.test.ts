import { describe, expect, test } from 'vitest';
import { findCycles, toCsr, topologicalLevels } from './graph.ts';

const graph = (size: number, edges: Array<[number, number]>) =>
  toCsr(
    size,
    edges.map((e) => e[0]),
    edges.map((e) => e[1]),
  );

describe('graph', () => {
  describe('topologicalLevels', () => {
    test('levels are the longest path from a root', () => {
      // 0 → 1 → 3, 0 → 2 → 3, 3 → 4, and 0 → 4 directly.
      const { levels, maxLevel, unsorted } = topologicalLevels(
        graph(5, [
          [0, 1],
          [0, 2],
          [1, 3],
          [2, 3],
          [3, 4],
          [0, 4],
        ]),
      );
      expect([...levels]).toEqual([0, 1, 1, 2, 3]);
      expect(maxLevel).toBe(3);
      expect(unsorted).toEqual([]);
    });

    test('nodes on or behind a cycle are left unsorted', () => {
      const { levels, unsorted } = topologicalLevels(
        graph(4, [
          [0, 1],
          [1, 2],
          [2, 1],
          [2, 3],
        ]),
      );
      expect(unsorted).toEqual([1, 2, 3]);
      expect(levels[0]).toBe(0);
    });

    test('a long chain does not overflow the stack', () => {
      const n = 200_000;
      const edges: Array<[number, number]> = [];
      for (let i = 1; i < n; i++) edges.push([i - 1, i]);
      expect(topologicalLevels(graph(n, edges)).maxLevel).toBe(n - 1);
    });
  });

  describe('findCycles', () => {
    test('returns each distinct cycle once, rotated to its lowest node', () => {
      const g = graph(6, [
        [0, 1],
        [1, 0],
        [1, 2],
        [2, 1],
        [3, 4],
        [4, 5],
        [5, 3],
      ]);
      expect(findCycles(g, [0, 1, 2, 3, 4, 5])).toEqual([
        [0, 1],
        [1, 2],
        [3, 4, 5],
      ]);
    });

    test('ignores nodes that are only behind a cycle', () => {
      const g = graph(4, [
        [0, 1],
        [1, 0],
        [1, 2],
        [2, 3],
      ]);
      expect(findCycles(g, [0, 1, 2, 3])).toEqual([[0, 1]]);
    });

    test('finds a cycle as long as the graph without recursion', () => {
      const n = 100_000;
      const edges: Array<[number, number]> = [];
      for (let i = 0; i < n; i++) edges.push([i, (i + 1) % n]);
      const [cycle, ...rest] = findCycles(graph(n, edges), [...Array(n).keys()]);
      expect(rest).toEqual([]);
      expect(cycle).toHaveLength(n);
      expect(cycle!.slice(0, 3)).toEqual([0, 1, 2]);
    });
  });
});
