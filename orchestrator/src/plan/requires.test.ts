import { describe, expect, test } from 'vitest';
import { edgeLines, plan, problemsOf, workflow } from './plan.fixtures.ts';

const install = (id: string, items: string[], depends_on: string[] = []) => ({
  id,
  type: 'create' as const,
  target: 'taskserv' as const,
  items,
  depends_on,
});

describe('taskserv requires', () => {
  test('within one operation, a taskserv waits for what it requires on the same server', () => {
    const p = plan(workflow([install('base', ['kubernetes', 'containerd', 'helm'])]));
    expect(edgeLines(p)).toEqual([
      'base:containerd@web-1 -> base:kubernetes@web-1 (hard, requires)',
      'base:containerd@web-2 -> base:kubernetes@web-2 (hard, requires)',
      'base:kubernetes@web-1 -> base:helm@web-1 (hard, requires)',
    ]);
    expect(p.operations[0]!.depends_on).toEqual([]);
  });

  test('a requirement installed by another operation adds the operation dependency', () => {
    const p = plan(workflow([install('k8s', ['kubernetes']), install('runtime', ['containerd'])]));
    expect(p.operations.map((o) => [o.id, o.level, o.depends_on])).toEqual([
      ['runtime', 0, []],
      ['k8s', 1, ['runtime']],
    ]);
    expect(edgeLines(p)).toEqual([
      'runtime:containerd@web-1 -> k8s:kubernetes@web-1 (hard, requires)',
      'runtime:containerd@web-2 -> k8s:kubernetes@web-2 (hard, requires)',
    ]);
  });

  test('requires are transitive: helm waits for containerd when kubernetes is not planned', () => {
    const p = plan(workflow([install('helm', ['helm']), install('runtime', ['containerd'])]));
    expect(edgeLines(p)).toEqual(['runtime:containerd@web-1 -> helm:helm@web-1 (hard, requires)']);
  });

  test('interleaved requirements across operations are a cycle only when they truly are', () => {
    // containerd, then kubernetes, then helm: ops "a" and "b" each hold one end, which is fine.
    const fine = plan(workflow([install('a', ['containerd']), install('b', ['kubernetes'])]));
    expect(fine.operations.map((o) => o.id)).toEqual(['a', 'b']);
    // Here "a" holds containerd and helm, "b" kubernetes: a → b → a cannot be ordered by operation.
    const problems = problemsOf(
      workflow([install('a', ['containerd', 'helm']), install('b', ['kubernetes'])]),
    );
    expect(problems).toHaveLength(1);
    expect(problems[0]!.code).toBe('cycle');
    expect(problems[0]!.message).toContain('a → b → a');
    expect(problems[0]!.hint).toContain('helm on web-1 requires kubernetes');
  });

  test('a requirement the server does not list is a problem that says where to add it', () => {
    const problems = problemsOf(
      workflow([install('k8s', ['kubernetes'])], {
        servers: [{ name: 'web-1', taskservs: ['kubernetes'] }],
      }),
    );
    expect(problems).toEqual([
      expect.objectContaining({
        code: 'missing-requirement',
        path: 'operations[0].items[0]',
        message: "kubernetes on web-1 requires containerd; add it to web-1's taskservs",
        hint: 'edit servers[0].taskservs; an operation that installs "containerd" there then runs first',
      }),
    ]);
  });

  test('a requirement many servers lack is one problem naming them', () => {
    const servers = Array.from({ length: 8 }, (_, i) => ({
      name: `web-${i}`,
      // web-2 lists containerd; the others do not.
      taskservs: i === 2 ? ['containerd', 'kubernetes'] : ['kubernetes'],
    }));
    const problems = problemsOf(workflow([install('k8s', ['kubernetes'])], { servers }));
    expect(problems).toEqual([
      expect.objectContaining({
        code: 'missing-requirement',
        path: 'operations[0].items[0]',
        message:
          'kubernetes requires containerd on 7 servers that do not list it (web-0, web-1, web-3, web-4, web-5 and 2 more); add it to their taskservs',
        hint: 'edit the taskservs of servers[0], servers[1], servers[3], servers[4], servers[5] and 2 more; an operation that installs "containerd" there then runs first',
      }),
    ]);
  });

  test('indirect missing requirements say through what', () => {
    const problems = problemsOf(
      workflow([install('h', ['helm'])], { servers: [{ name: 'web-1', taskservs: ['helm'] }] }),
    );
    expect(problems.map((p) => p.message)).toEqual([
      "helm on web-1 requires kubernetes; add it to web-1's taskservs",
      "helm on web-1 requires containerd (through kubernetes); add it to web-1's taskservs",
    ]);
  });

  test('taskservs that require each other are reported once as a cycle', () => {
    const problems = problemsOf(
      workflow([install('x', ['a'])], {
        servers: [{ name: 'web-1', taskservs: ['a', 'b'] }],
        taskservs: [
          { name: 'a', requires: ['b'] },
          { name: 'b', requires: ['a'] },
        ],
      }),
    );
    expect(problems).toEqual([
      expect.objectContaining({
        code: 'cycle',
        path: 'taskservs[0].requires[0]',
        message: 'taskservs require each other: a → b → a',
      }),
    ]);
  });
});

describe('delete operations', () => {
  test('uninstall in reverse: kubernetes goes before containerd, helm before kubernetes', () => {
    const p = plan(
      workflow([
        { id: 'rm-runtime', type: 'delete', target: 'taskserv', items: ['containerd'] },
        { id: 'rm-k8s', type: 'delete', target: 'taskserv', items: ['kubernetes', 'helm'] },
      ]),
    );
    expect(p.operations.map((o) => [o.id, o.depends_on])).toEqual([
      ['rm-k8s', []],
      ['rm-runtime', ['rm-k8s']],
    ]);
    expect(edgeLines(p)).toEqual([
      'rm-k8s:helm@web-1 -> rm-k8s:kubernetes@web-1 (hard, requires)',
      'rm-k8s:kubernetes@web-1 -> rm-runtime:containerd@web-1 (hard, requires)',
      'rm-k8s:kubernetes@web-2 -> rm-runtime:containerd@web-2 (hard, requires)',
    ]);
  });

  test('removing what a remaining taskserv requires is a problem', () => {
    const problems = problemsOf(
      workflow([{ id: 'rm', type: 'delete', target: 'taskserv', items: ['containerd'] }]),
    );
    expect(problems.map((p) => [p.code, p.path, p.message])).toEqual([
      [
        'missing-requirement',
        'operations[0].items[0]',
        'kubernetes on web-1 requires containerd, which operation "rm" uninstalls',
      ],
      [
        'missing-requirement',
        'operations[0].items[0]',
        'kubernetes on web-2 requires containerd, which operation "rm" uninstalls',
      ],
    ]);
  });
});

describe('conflicts_with', () => {
  const servers = [{ name: 'box', taskservs: ['podman', 'docker'] }];

  test('conflicting taskservs on one server are a problem in either direction', () => {
    // docker declares the conflict; podman, listed first, does not.
    const problems = problemsOf(workflow([install('d', ['docker'])], { servers }));
    expect(problems).toEqual([
      expect.objectContaining({
        code: 'conflict',
        path: 'servers[0].taskservs[1]',
        message: 'docker and podman conflict, but server box lists both',
      }),
    ]);
  });

  test('uninstalling one side is allowed, and the other is installed after it', () => {
    const p = plan(
      workflow(
        [
          install('d', ['docker']),
          { id: 'rm', type: 'delete', target: 'taskserv', items: ['podman'] },
        ],
        { servers },
      ),
    );
    expect(edgeLines(p)).toEqual(['rm:podman@box -> d:docker@box (hard, requires)']);
    expect(p.operations.map((o) => o.id)).toEqual(['rm', 'd']);
  });
});
