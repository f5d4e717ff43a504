import { describe, expect, test } from 'vitest';
import { renderPlan, type Plan } from './index.ts';
import { renderPlanChunks } from './render.ts';
import { planDocument, renderJsonChunks } from './render-json.ts';
import { chainOfOperations, echo, plan, workflow } from './plan.fixtures.ts';

const sample: Plan = plan(
  workflow(
    [
      { id: 'up', type: 'create', target: 'server', providers: ['local', 'ssh'] },
      { id: 'base', type: 'create', target: 'taskserv', items: ['containerd'], depends_on: ['up'] },
      { id: 'dns', type: 'update', target: 'cluster', items: ['end'], steps: [echo('x')] },
    ],
    { dependencies: [{ source: 'base', target: 'dns', type: 'soft' }] },
  ),
);

/** 3 servers after 3 servers, and a soft dependency: two barriers, no edges. */
const fleet: Plan = plan(
  workflow(
    [
      {
        id: 'up',
        type: 'update',
        target: 'cluster',
        items: ['s1', 's2', 's3'],
        steps: [echo('x')],
      },
      {
        id: 'base',
        type: 'update',
        target: 'cluster',
        items: ['s1', 's2', 's3'],
        steps: [echo('x')],
        depends_on: ['up'],
      },
      { id: 'dns', type: 'update', target: 'cluster', items: ['a', 'b'], steps: [echo('x')] },
    ],
    { dependencies: [{ source: 'base', target: 'dns', type: 'soft' }] },
  ),
);

describe('renderPlan', () => {
  test('table: one block per level, each operation with type, target and tasks, then totals', () => {
    expect(renderPlan(sample, 'table')).toBe(
      [
        'Plan for "test" (batch): 3 operations in 3 levels, 5 tasks, 6 edges',
        '',
        'Level 0',
        '  up    create  server    2 tasks',
        '',
        'Level 1',
        '  base  create  taskserv  2 tasks  after up',
        '',
        'Level 2',
        '  dns   update  cluster    1 task  after base',
        '',
        'Totals: 3 operations, 5 tasks (2 on servers, 2 through providers, 1 on the orchestrator), 6 edges (4 hard, 2 soft)',
        '',
      ].join('\n'),
    );
  });

  test('json: operations with id, level and depends_on, tasks and edges, in a stable key order', () => {
    const text = renderPlan(sample, 'json');
    const parsed = JSON.parse(text) as Record<string, unknown>;
    expect(Object.keys(parsed)).toEqual([
      'workflow',
      'type',
      'operations',
      'tasks',
      'edges',
      'barriers',
    ]);
    expect(parsed['barriers']).toEqual([]);
    const operations = parsed['operations'] as Array<Record<string, unknown>>;
    expect(operations.map((o) => [o['id'], o['level'], o['depends_on']])).toEqual([
      ['up', 0, []],
      ['base', 1, ['up']],
      ['dns', 2, ['base']],
    ]);
    expect(Object.keys(operations[0]!).slice(0, 6)).toEqual([
      'id',
      'level',
      'type',
      'target',
      'depends_on',
      'tasks',
    ]);
    const tasks = parsed['tasks'] as Array<Record<string, unknown>>;
    expect(Object.keys(tasks[0]!)).toEqual([
      'id',
      'operation',
      'item',
      'server',
      'queue',
      'action',
      'provider',
      'steps',
      'compensation',
    ]);
    expect(tasks.map((t) => t['id'])).toEqual(sample.tasks.map((t) => t.id));
    expect(parsed['edges']).toContainEqual({
      from: 'base:containerd@web-1',
      to: 'dns:end',
      type: 'soft',
      reason: 'dependency',
    });
    // Same plan, same bytes.
    expect(renderPlan(sample, 'json')).toBe(text);
  });

  test('dot: a digraph with one cluster per operation, quoted ids and dashed soft edges', () => {
    const dot = renderPlan(sample, 'dot');
    const lines = dot.trimEnd().split('\n');
    expect(lines[0]).toBe('digraph "test" {');
    expect(lines.at(-1)).toBe('}');
    expect(dot.match(/subgraph "cluster_[^"]+" \{/g)).toEqual([
      'subgraph "cluster_up" {',
      'subgraph "cluster_base" {',
      'subgraph "cluster_dns" {',
    ]);
    expect(lines).toContain('    "base:containerd@web-1" [label="containerd@web-1"];');
    expect(lines).toContain('  "up:web-1@web-1" -> "base:containerd@web-1";');
    expect(lines).toContain('  "base:containerd@web-2" -> "dns:end" [style=dashed];');
    // Balanced braces and one statement per edge.
    expect(dot.split('{').length).toBe(dot.split('}').length);
    expect(lines.filter((l) => l.includes(' -> '))).toHaveLength(sample.edges.length);
  });

  test('dot escapes quotes and backslashes in names', () => {
    const odd = plan(
      workflow([
        {
          id: 'a',
          type: 'update',
          target: 'cluster',
          items: ['say "hi" \\o/'],
          steps: [echo('x')],
        },
      ]),
    );
    expect(renderPlan(odd, 'dot')).toContain('"a:say \\"hi\\" \\\\o/"');
  });

  test('mermaid: a flowchart with sanitised ids, subgraphs and soft edges dotted', () => {
    const mermaid = renderPlan(sample, 'mermaid');
    const lines = mermaid.trimEnd().split('\n');
    expect(lines[0]).toBe('flowchart TD');
    expect(lines).toContain('  subgraph op_up["up (create server, level 0)"]');
    expect(lines).toContain('    t_base_containerd_web_1["containerd@web-1"]');
    // The item "end" is a Mermaid keyword: the prefix keeps the id safe.
    expect(lines).toContain('    t_dns_end["end"]');
    expect(lines).toContain('  t_base_containerd_web_2 -.-> t_dns_end');
    expect(lines).toContain('  t_up_web_1_web_1 --> t_base_containerd_web_1');
    expect(lines.filter((l) => l.trim() === 'end')).toHaveLength(3);
    for (const line of lines.slice(1)) {
      const ids = line
        .trim()
        .replace(/\[".*"\]$/, '')
        .split(/\s+(?:-->|-\.->)\s+|\s+/);
      for (const id of ids) expect(id).toMatch(/^[A-Za-z0-9_]+$/);
    }
  });

  test('mermaid keeps ids apart when names reduce to the same id', () => {
    const clash = plan(
      workflow([
        {
          id: 'a',
          type: 'update',
          target: 'cluster',
          items: ['x-y', 'x_y', 'x"y'],
          steps: [echo('x')],
        },
      ]),
    );
    const lines = renderPlan(clash, 'mermaid').split('\n');
    expect(lines).toContain('    t_a_x_y["x-y"]');
    expect(lines).toContain('    t_a_x_y_2["x_y"]');
    expect(lines).toContain('    t_a_x_y_3["x#quot;y"]');
  });
  test('json is planDocument with two-space indents, written in pieces of list elements', () => {
    const multiline = plan(
      workflow([
        {
          id: 'a',
          type: 'update',
          target: 'cluster',
          items: ['x', 'line\nbreak'],
          steps: [
            {
              name: 'say',
              type: 'echo',
              params: { message: 'two\nlines "quoted" \\ ü \ud800', nested: [[], {}, [1, null]] },
            },
          ],
        },
      ]),
    );
    // More elements than one piece holds, in every list: 1,100 chained operations of two tasks.
    const chain = plan(workflow(chainOfOperations(1_100, ['a', 'b'])));
    expect(chain.edges.length).toBeGreaterThan(2_000);
    for (const p of [sample, fleet, multiline, chain]) {
      const text = renderPlan(p, 'json');
      expect(text).toBe(`${JSON.stringify(planDocument(p), null, 2)}\n`);
      expect(Array.from(renderJsonChunks(p)).join('')).toBe(text);
    }
    expect(Array.from(renderJsonChunks(chain)).length).toBeGreaterThan(8);
  });

  test('dot and mermaid come in pieces of whole lines, joining to the same picture', () => {
    // 1,100 operations of two tasks: several thousand lines, several pieces.
    const chain = plan(workflow(chainOfOperations(1_100, ['a', 'b'])));
    const operations = chain.operations.length;
    const expected = {
      // digraph, rankdir, node, then per operation its subgraph, label, tasks and }, then edges, }.
      dot: 3 + operations * 5 + chain.edges.length + 1,
      // flowchart, then per operation its subgraph, tasks and end, then edges.
      mermaid: 1 + operations * 4 + chain.edges.length,
    };
    for (const format of ['dot', 'mermaid'] as const) {
      const pieces = Array.from(renderPlanChunks(chain, format));
      expect(pieces.length).toBeGreaterThan(3);
      for (const piece of pieces) expect(piece.endsWith('\n')).toBe(true);
      const text = pieces.join('');
      expect(text).toBe(renderPlan(chain, format));
      const lines = text.split('\n');
      expect(lines.pop()).toBe('');
      expect(lines).toHaveLength(expected[format]);
      expect(lines.filter((l) => l.trim() === '')).toEqual([]);
    }
  });

  describe('barriers', () => {
    test('json lists them, from and to as operation ids', () => {
      const parsed = JSON.parse(renderPlan(fleet, 'json')) as Record<string, unknown>;
      expect(parsed['edges']).toEqual([]);
      expect(parsed['barriers']).toEqual([
        { from: 'up', to: 'base', type: 'hard', reason: 'depends_on' },
        { from: 'base', to: 'dns', type: 'soft', reason: 'dependency' },
      ]);
    });

    test('table counts them and says what one is', () => {
      const table = renderPlan(fleet, 'table');
      expect(table.split('\n')[0]).toBe(
        'Plan for "test" (batch): 3 operations in 3 levels, 8 tasks, 0 edges, 2 barriers',
      );
      expect(table).toContain(
        '0 edges (0 hard, 0 soft), 2 barriers (every task of one operation waits for every task of another)',
      );
    });

    test('dot draws one edge from cluster to cluster, clipped at their borders', () => {
      const lines = renderPlan(fleet, 'dot').split('\n');
      expect(lines).toContain('  compound=true;');
      expect(lines).toContain('  "up:s1" -> "base:s1" [ltail="cluster_up", lhead="cluster_base"];');
      expect(lines).toContain(
        '  "base:s1" -> "dns:a" [ltail="cluster_base", lhead="cluster_dns", style=dashed];',
      );
    });

    test('mermaid links the subgraphs', () => {
      const lines = renderPlan(fleet, 'mermaid').split('\n');
      expect(lines).toContain('  op_up --> op_base');
      expect(lines).toContain('  op_base -.-> op_dns');
    });
  });
});
