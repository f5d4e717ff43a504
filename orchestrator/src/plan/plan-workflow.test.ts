import { describe, expect, test } from 'vitest';
import { clusterOp, echo, edgeLines, plan, problemsOf, workflow } from './plan.fixtures.ts';

describe('planWorkflow', () => {
  describe('target server', () => {
    test('create acts on every server through its provider, then runs the steps', () => {
      const p = plan(
        workflow([{ id: 'up', type: 'create', target: 'server', steps: [echo('hi')] }]),
      );
      expect(p.tasks.map((t) => [t.id, t.queue, t.action, t.provider])).toEqual([
        ['up:web-1@web-1', 'provider:local', 'create', 'local'],
        ['up:web-2@web-2', 'provider:ssh', 'create', 'ssh'],
        ['up:db-1@db-1', 'provider:aws', 'create', 'aws'],
      ]);
      expect(p.tasks[0]).toMatchObject({ server: 'web-1', item: 'web-1', compensation: [] });
      expect(p.tasks[0]!.steps.map((s) => s.name)).toEqual(['hi']);
    });

    test('delete and check map to the provider actions delete and status', () => {
      const p = plan(
        workflow([
          { id: 'down', type: 'delete', target: 'server', items: ['db-1'] },
          { id: 'look', type: 'check', target: 'server', items: ['web-2'] },
        ]),
      );
      expect(p.tasks.map((t) => [t.id, t.action])).toEqual([
        ['down:db-1@db-1', 'delete'],
        ['look:web-2@web-2', 'status'],
      ]);
    });

    test('update runs its steps on each server queue, with no provider action', () => {
      const p = plan(
        workflow([
          {
            id: 'patch',
            type: 'update',
            target: 'server',
            items: ['web-2', 'web-1'],
            steps: [echo('apt')],
          },
        ]),
      );
      expect(p.tasks.map((t) => [t.id, t.queue, t.action])).toEqual([
        ['patch:web-2@web-2', 'server:web-2', undefined],
        ['patch:web-1@web-1', 'server:web-1', undefined],
      ]);
    });

    test('providers keep only servers of those providers', () => {
      const p = plan(
        workflow([{ id: 'up', type: 'create', target: 'server', providers: ['ssh', 'aws'] }]),
      );
      expect(p.tasks.map((t) => t.server)).toEqual(['web-2', 'db-1']);
    });

    test('a provider filter that leaves no server is a problem naming the servers', () => {
      const [problem, ...rest] = problemsOf(
        workflow([
          { id: 'up', type: 'create', target: 'server', items: ['web-1'], providers: ['aws'] },
        ]),
      );
      expect(rest).toEqual([]);
      expect(problem).toMatchObject({ code: 'no-servers', path: 'operations[0].providers' });
      expect(problem!.message).toContain('has no servers to act on');
      expect(problem!.received).toBe('web-1 (local)');
    });

    test('update without steps and delete with steps are problems', () => {
      const problems = problemsOf(
        workflow([
          { id: 'patch', type: 'update', target: 'server' },
          { id: 'down', type: 'delete', target: 'server', steps: [echo('bye')] },
        ]),
      );
      expect(problems.map((p) => [p.code, p.path])).toEqual([
        ['empty-operation', 'operations[0].steps'],
        ['invalid-steps', 'operations[1].steps'],
      ]);
    });
  });

  describe('target taskserv', () => {
    test('create installs on every server listing it, then runs the op steps; uninstall compensates', () => {
      const p = plan(
        workflow([
          {
            id: 'k8s',
            type: 'create',
            target: 'taskserv',
            items: ['containerd'],
            steps: [echo('after')],
          },
        ]),
      );
      expect(p.tasks.map((t) => [t.id, t.queue])).toEqual([
        ['k8s:containerd@web-1', 'server:web-1'],
        ['k8s:containerd@web-2', 'server:web-2'],
      ]);
      const task = p.tasks[0]!;
      expect(task.steps.map((s) => s.name)).toEqual(['install-containerd', 'after']);
      expect(task.compensation.map((s) => s.name)).toEqual(['remove-containerd']);
      expect(task.health_check).toMatchObject({ command: 'ctr', args: ['version'] });
    });

    test('update reinstalls then runs the op steps, delete uninstalls, check only checks health', () => {
      const p = plan(
        workflow([
          { id: 'up', type: 'update', target: 'taskserv', items: ['helm'], steps: [echo('x')] },
          { id: 'rm', type: 'delete', target: 'taskserv', items: ['helm'] },
          { id: 'ok', type: 'check', target: 'taskserv', items: ['helm'] },
        ]),
      );
      const byOp = Object.fromEntries(p.tasks.map((t) => [t.operation, t]));
      expect(byOp['up']!.steps.map((s) => s.name)).toEqual(['install-helm', 'x']);
      expect(byOp['up']!.compensation).toEqual([]);
      expect(byOp['rm']!.steps.map((s) => s.name)).toEqual(['remove-helm']);
      expect(byOp['rm']!.health_check).toBeUndefined();
      expect(byOp['ok']!.steps).toEqual([]);
      expect(byOp['ok']!.health_check).toMatchObject({ command: 'helm' });
    });

    test('check of a taskserv without health_check needs steps', () => {
      const problems = problemsOf(
        workflow([{ id: 'ok', type: 'check', target: 'taskserv', items: ['postgres'] }]),
      );
      expect(problems.map((p) => [p.code, p.path])).toEqual([
        ['missing-health-check', 'operations[0].items[0]'],
      ]);
      const withSteps = plan(
        workflow([
          {
            id: 'ok',
            type: 'check',
            target: 'taskserv',
            items: ['postgres'],
            steps: [echo('psql')],
          },
        ]),
      );
      expect(withSteps.tasks.map((t) => t.id)).toEqual(['ok:postgres@db-1']);
    });

    test('providers filter the servers of a taskserv', () => {
      const p = plan(
        workflow([
          {
            id: 'c',
            type: 'create',
            target: 'taskserv',
            items: ['containerd'],
            providers: ['ssh'],
          },
        ]),
      );
      expect(p.tasks.map((t) => t.id)).toEqual(['c:containerd@web-2']);
    });

    test('a taskserv no server lists is a problem that shows the servers', () => {
      const [problem] = problemsOf(
        workflow([{ id: 'd', type: 'create', target: 'taskserv', items: ['docker'] }]),
      );
      expect(problem).toMatchObject({ code: 'no-servers', path: 'operations[0].items[0]' });
      expect(problem!.received).toContain('web-1 [containerd, kubernetes, helm]');
      expect(problem!.hint).toContain('add "docker" to the taskservs');
    });

    test('workflow taskservs replace catalog entries of the same name', () => {
      const p = plan(
        workflow([{ id: 'c', type: 'create', target: 'taskserv', items: ['containerd'] }], {
          taskservs: [{ name: 'containerd', install: [echo('custom')] }],
        }),
      );
      expect(p.tasks[0]!.steps.map((s) => s.name)).toEqual(['custom']);
      expect(p.tasks[0]!.health_check).toBeUndefined();
    });
  });

  describe('target cluster', () => {
    test('one task per item on the orchestrator queue', () => {
      const p = plan(
        workflow([
          {
            id: 'dns',
            type: 'update',
            target: 'cluster',
            items: ['eu', 'us'],
            steps: [echo('sync')],
          },
        ]),
      );
      expect(p.tasks.map((t) => [t.id, t.queue, t.server])).toEqual([
        ['dns:eu', 'orchestrator', undefined],
        ['dns:us', 'orchestrator', undefined],
      ]);
    });

    test('no items or no steps are problems', () => {
      const problems = problemsOf(workflow([{ id: 'dns', type: 'update', target: 'cluster' }]));
      expect(problems.map((p) => p.code)).toEqual(['missing-items', 'empty-operation']);
    });
  });

  describe('levels', () => {
    test('a diamond has three levels and operations sorted by level then file order', () => {
      const p = plan(
        workflow([
          {
            id: 'join',
            type: 'update',
            target: 'cluster',
            items: ['c'],
            steps: [echo('j')],
            depends_on: ['left', 'right'],
          },
          {
            id: 'right',
            type: 'update',
            target: 'cluster',
            items: ['c'],
            steps: [echo('r')],
            depends_on: ['root'],
          },
          {
            id: 'left',
            type: 'update',
            target: 'cluster',
            items: ['c'],
            steps: [echo('l')],
            depends_on: ['root'],
          },
          { id: 'root', type: 'update', target: 'cluster', items: ['c'], steps: [echo('0')] },
        ]),
      );
      expect(p.operations.map((o) => [o.id, o.level, o.depends_on])).toEqual([
        ['root', 0, []],
        ['right', 1, ['root']],
        ['left', 1, ['root']],
        ['join', 2, ['left', 'right']],
      ]);
      expect(p.tasks.map((t) => t.id)).toEqual(['root:c', 'right:c', 'left:c', 'join:c']);
      expect(edgeLines(p)).toEqual([
        'left:c -> join:c (hard, depends_on)',
        'right:c -> join:c (hard, depends_on)',
        'root:c -> left:c (hard, depends_on)',
        'root:c -> right:c (hard, depends_on)',
      ]);
    });

    test('depends_on connects every task of the dependency to every task of the operation', () => {
      const p = plan(
        workflow([
          { id: 'up', type: 'create', target: 'server', providers: ['local', 'ssh'] },
          {
            id: 'dns',
            type: 'update',
            target: 'cluster',
            items: ['a', 'b'],
            steps: [echo('x')],
            depends_on: ['up'],
          },
        ]),
      );
      expect(p.edges).toHaveLength(4);
      expect(new Set(Array.from(p.edges, (e) => e.to))).toEqual(new Set(['dns:a', 'dns:b']));
    });

    test("an operation's depends_on lists what it waits for once each, from every source", () => {
      const p = plan(
        workflow(
          [
            clusterOp('a'),
            clusterOp('b'),
            // Written twice, plus one from dependencies: as many entries as written, not the same.
            clusterOp('twice', ['a', 'a']),
            clusterOp('written', ['a', 'b']),
          ],
          { dependencies: [{ source: 'b', target: 'twice' }] },
        ),
      );
      const dependsOn = Object.fromEntries(p.operations.map((o) => [o.id, o.depends_on]));
      expect(dependsOn).toEqual({ a: [], b: [], twice: ['a', 'b'], written: ['a', 'b'] });
      expect(edgeLines(p)).toEqual([
        'a:c -> twice:c (hard, depends_on)',
        'a:c -> written:c (hard, depends_on)',
        'b:c -> twice:c (hard, dependency)',
        'b:c -> written:c (hard, depends_on)',
      ]);
    });
  });

  describe('barriers', () => {
    const fleet = (n: number) => Array.from({ length: n }, (_, i) => `s${i}`);
    const fleetOp = (id: string, n: number, depends_on: string[] = []) => ({
      ...clusterOp(id, depends_on),
      items: fleet(n),
    });

    test('1,000 servers after 1,000 servers are one barrier, not a million edges', () => {
      const p = plan(
        workflow([
          fleetOp('create', 1000),
          fleetOp('base', 1000, ['create']),
          fleetOp('k8s', 1000, ['base']),
        ]),
      );
      expect(p.tasks).toHaveLength(3000);
      expect(p.edges).toHaveLength(0);
      expect(p.barriers).toEqual([
        { from: 'create', to: 'base', type: 'hard', reason: 'depends_on' },
        { from: 'base', to: 'k8s', type: 'hard', reason: 'depends_on' },
      ]);
      expect(p.operations.map((o) => [o.id, o.level, o.depends_on])).toEqual([
        ['create', 0, []],
        ['base', 1, ['create']],
        ['k8s', 2, ['base']],
      ]);
    });

    test('edges while they are no more than the tasks: one task on a side, or 2 × 2', () => {
      const p = plan(
        workflow([
          fleetOp('one', 1),
          fleetOp('five', 5, ['one']),
          fleetOp('two', 2, ['five']),
          fleetOp('pair', 2, ['two']),
          fleetOp('three', 3, ['pair']),
        ]),
      );
      // 1 × 5 and 2 × 2 stay edges; 5 × 2 and 2 × 3 have more pairs than tasks.
      expect(p.barriers).toEqual([
        { from: 'five', to: 'two', type: 'hard', reason: 'depends_on' },
        { from: 'pair', to: 'three', type: 'hard', reason: 'depends_on' },
      ]);
      const from = (op: string) => edgeLines(p).filter((l) => l.startsWith(`${op}:`));
      expect(from('one')).toHaveLength(5);
      expect(from('two')).toHaveLength(4);
      expect([...from('five'), ...from('pair')]).toEqual([]);
    });

    test('dependencies between whole operations keep their type; the stronger wins', () => {
      const p = plan(
        workflow([fleetOp('a', 3), fleetOp('b', 3), fleetOp('c', 3), fleetOp('d', 3)], {
          dependencies: [
            { source: 'a', target: 'b', type: 'soft' },
            { source: 'a', target: 'c', type: 'soft' },
            { source: 'a', target: 'c', type: 'hard' },
            { source: 'nowhere', target: 'd', type: 'optional' },
            { source: 'c', target: 'd', type: 'optional' },
            // One item's tasks stay edges: 1 × 3.
            { source: 'a.s0', target: 'd' },
          ],
        }),
      );
      expect(p.barriers).toEqual([
        { from: 'a', to: 'b', type: 'soft', reason: 'dependency' },
        { from: 'a', to: 'c', type: 'hard', reason: 'dependency' },
        { from: 'c', to: 'd', type: 'soft', reason: 'dependency' },
      ]);
      expect(edgeLines(p)).toEqual([
        'a:s0 -> d:s0 (hard, dependency)',
        'a:s0 -> d:s1 (hard, dependency)',
        'a:s0 -> d:s2 (hard, dependency)',
      ]);
    });

    test('a cycle through barriers is reported with its whole path', () => {
      const problems = problemsOf(
        workflow([fleetOp('a', 3, ['c']), fleetOp('b', 3, ['a']), fleetOp('c', 3, ['b'])]),
      );
      expect(problems.find((p) => p.code === 'cycle')?.message).toBe(
        'operations wait for each other in a cycle: a → c → b → a',
      );
    });
  });

  describe('dependencies', () => {
    const ops = [
      {
        id: 'a',
        type: 'update' as const,
        target: 'cluster' as const,
        items: ['x', 'y'],
        steps: [echo('a')],
      },
      {
        id: 'b',
        type: 'update' as const,
        target: 'cluster' as const,
        items: ['x', 'y'],
        steps: [echo('b')],
      },
    ];

    test('an operation dependency is hard by default and adds the operation edge', () => {
      const p = plan(workflow(ops, { dependencies: [{ source: 'a', target: 'b' }] }));
      expect(p.operations.find((o) => o.id === 'b')!.depends_on).toEqual(['a']);
      expect([...p.edges].every((e) => e.type === 'hard' && e.reason === 'dependency')).toBe(true);
      expect(p.edges).toHaveLength(4);
    });

    test('an item dependency links only that item, soft when typed so', () => {
      const p = plan(
        workflow(ops, { dependencies: [{ source: 'a.x', target: 'b.y', type: 'soft' }] }),
      );
      expect(edgeLines(p)).toEqual(['a:x -> b:y (soft, dependency)']);
      expect(p.operations.map((o) => [o.id, o.level])).toEqual([
        ['a', 0],
        ['b', 1],
      ]);
    });

    test('items of one operation can be ordered without an operation edge', () => {
      const p = plan(workflow(ops, { dependencies: [{ source: 'a.x', target: 'a.y' }] }));
      expect(edgeLines(p)).toEqual(['a:x -> a:y (hard, dependency)']);
      expect(p.operations.map((o) => o.depends_on)).toEqual([[], []]);
    });

    test('optional dependencies are soft when both ends exist and silently dropped otherwise', () => {
      const p = plan(
        workflow(ops, {
          dependencies: [
            { source: 'a', target: 'b.x', type: 'optional' },
            { source: 'gone', target: 'b', type: 'optional' },
            { source: 'a.zz', target: 'b', type: 'optional' },
          ],
        }),
      );
      expect(edgeLines(p)).toEqual([
        'a:x -> b:x (soft, dependency)',
        'a:y -> b:x (soft, dependency)',
      ]);
    });

    test('a hard edge wins over a soft one between the same tasks', () => {
      const p = plan(
        workflow(ops, {
          dependencies: [
            { source: 'a.x', target: 'b.x', type: 'soft' },
            { source: 'a', target: 'b' },
          ],
        }),
      );
      expect(p.edges).toHaveLength(4);
      expect([...p.edges].every((e) => e.type === 'hard')).toBe(true);
    });

    test('unknown operations and items are problems with suggestions', () => {
      const problems = problemsOf(
        workflow(ops, { dependencies: [{ source: 'aa', target: 'b.yy' }] }),
      );
      expect(problems.map((p) => [p.code, p.path, p.hint])).toEqual([
        ['unknown-operation', 'dependencies[0].source', 'did you mean "a"?'],
        ['unknown-item', 'dependencies[0].target', 'did you mean "y"?'],
      ]);
    });
  });

  describe('policies', () => {
    test('the operation retry override replaces only the fields it sets', () => {
      const p = plan(
        workflow(
          [
            {
              id: 'a',
              type: 'update',
              target: 'cluster',
              items: ['c'],
              steps: [echo('a')],
              retry_policy: { max_attempts: 7 },
            },
          ],
          { retry_policy: { backoff: 'linear', initial_delay: 1 } },
        ),
      );
      expect(p.operations[0]!.retry_policy).toEqual({
        max_attempts: 7,
        backoff: 'linear',
        initial_delay: 1,
        max_delay: 300,
        non_retryable: [],
      });
    });

    test('without a rollout, parallel picks the strategy and the schema fills the rest', () => {
      const p = plan(
        workflow([
          {
            id: 'a',
            type: 'update',
            target: 'cluster',
            items: ['c'],
            steps: [echo('a')],
            parallel: false,
          },
          { id: 'b', type: 'update', target: 'cluster', items: ['c'], steps: [echo('b')] },
          {
            id: 'c',
            type: 'update',
            target: 'cluster',
            items: ['c'],
            steps: [echo('c')],
            rollout: { strategy: 'canary', canary_percentage: 25 },
          },
        ]),
      );
      expect(p.operations.map((o) => o.rollout.strategy)).toEqual([
        'sequential',
        'parallel',
        'canary',
      ]);
      expect(p.operations[0]!.rollout).toEqual({
        strategy: 'sequential',
        batch_size: 1,
        batch_delay: 0,
        max_failures: 0,
        canary_percentage: 10,
        canary_promotion: 'manual',
      });
      expect(p.operations[2]!.rollout.canary_percentage).toBe(25);
    });

    test('the workflow type is carried for the engine', () => {
      const p = plan(
        workflow(
          [{ id: 'a', type: 'update', target: 'cluster', items: ['c'], steps: [echo('a')] }],
          {
            type: 'sequential',
          },
        ),
      );
      expect(p).toMatchObject({ workflow: 'test', type: 'sequential' });
    });
  });
});
