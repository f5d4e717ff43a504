import { describe, expect, test } from 'vitest';
import { EdgeTable, edgeKind } from './edge-table.ts';
import type { PlannedTask } from './types.ts';

const task = (id: string): PlannedTask => ({
  id,
  operation: id,
  item: 'main',
  queue: 'orchestrator',
  steps: [],
  compensation: [],
});

describe('EdgeTable', () => {
  const tasks = [task('a'), task('b'), task('c')];
  const table = new EdgeTable(
    tasks,
    Int32Array.from([0, 1]),
    Int32Array.from([2, 2]),
    Uint8Array.from([edgeKind(true, 'depends_on'), edgeKind(false, 'requires')]),
  );
  const edges = [
    { from: 'a', to: 'c', type: 'hard', reason: 'depends_on' },
    { from: 'b', to: 'c', type: 'soft', reason: 'requires' },
  ];

  test('reads as the edge objects it stands for, by iteration and by index', () => {
    expect(table).toHaveLength(2);
    expect([...table]).toEqual(edges);
    expect(table.at(1)).toEqual(edges[1]);
    // Iterating twice gives the same edges: the table is not consumed.
    expect(Array.from(table, (e) => e.from)).toEqual(['a', 'b']);
  });

  test('is written by JSON.stringify as an array of edges, which reads back as a list too', () => {
    const json = JSON.parse(JSON.stringify({ edges: table })) as { edges: unknown[] };
    expect(json.edges).toEqual(edges);
  });

  test('keeps every reason and type apart', () => {
    for (const reason of ['depends_on', 'dependency', 'requires'] as const) {
      for (const hard of [true, false]) {
        const one = new EdgeTable(
          tasks,
          Int32Array.of(0),
          Int32Array.of(1),
          Uint8Array.of(edgeKind(hard, reason)),
        );
        expect(one.at(0)).toEqual({ from: 'a', to: 'b', type: hard ? 'hard' : 'soft', reason });
      }
    }
  });
});
