import * as v from 'valibot';
import { describe, expect, test } from 'vitest';
import { InvalidWorkflowError } from '../../../schemas/src/problems.ts';
import { WorkflowSchema } from '../../../schemas/src/workflow.ts';
import { planWorkflow } from './index.ts';
import { clusterOp as op, problemsOf, workflow } from './plan.fixtures.ts';

describe('planWorkflow problems', () => {
  describe('cycles', () => {
    test('a self-loop names the field and the one-step cycle', () => {
      expect(problemsOf(workflow([op('a', ['a'])]))).toEqual([
        expect.objectContaining({
          code: 'cycle',
          path: 'operations[0].depends_on[0]',
          message: 'operation "a" depends on itself: a → a',
        }),
      ]);
    });

    test('a two-node cycle is reported once with its whole path', () => {
      const problems = problemsOf(workflow([op('a', ['b']), op('b', ['a'])]));
      expect(problems).toEqual([
        expect.objectContaining({
          code: 'cycle',
          path: 'operations[0].depends_on[0]',
          message: 'operations wait for each other in a cycle: a → b → a',
        }),
      ]);
      expect(problems[0]!.hint).toBe(
        'break one link: operations[0].depends_on[0] (a depends on b); operations[1].depends_on[0] (b depends on a)',
      );
    });

    test('a three-node cycle through a dependency entry shows every link', () => {
      const problems = problemsOf(
        workflow([op('root'), op('a', ['root', 'b']), op('b', ['c']), op('c')], {
          dependencies: [{ source: 'a', target: 'c' }],
        }),
      );
      expect(problems).toHaveLength(1);
      expect(problems[0]!.message).toBe('operations wait for each other in a cycle: a → b → c → a');
      expect(problems[0]!.path).toBe('operations[1].depends_on[1]');
      expect(problems[0]!.hint).toContain('dependencies[0] (c waits for a)');
    });

    test('distinct cycles are each reported once', () => {
      const problems = problemsOf(
        workflow([
          op('a', ['b', 'c']),
          op('b', ['a']),
          op('c', ['a']),
          op('x', ['y']),
          op('y', ['x']),
        ]),
      );
      expect(problems.map((p) => p.message)).toEqual([
        'operations wait for each other in a cycle: a → b → a',
        'operations wait for each other in a cycle: a → c → a',
        'operations wait for each other in a cycle: x → y → x',
      ]);
    });

    test('operations behind a cycle are not reported as cyclic', () => {
      const problems = problemsOf(workflow([op('a', ['b']), op('b', ['a']), op('after', ['a'])]));
      expect(problems).toHaveLength(1);
      expect(problems[0]!.message).not.toContain('after');
    });

    test('item dependencies inside one operation can form a task cycle', () => {
      const problems = problemsOf(
        workflow([{ ...op('a'), items: ['x', 'y'] }], {
          dependencies: [
            { source: 'a.x', target: 'a.y' },
            { source: 'a.y', target: 'a.x' },
          ],
        }),
      );
      expect(problems).toEqual([
        expect.objectContaining({
          code: 'cycle',
          message: 'tasks of operation "a" wait for each other in a cycle: a:x → a:y → a:x',
        }),
      ]);
    });

    test('a dependency from an operation to its own item is a cycle', () => {
      const problems = problemsOf(
        workflow([{ ...op('a'), items: ['x', 'y'] }], {
          dependencies: [{ source: 'a', target: 'a.x' }],
        }),
      );
      expect(problems.map((p) => [p.code, p.path])).toEqual([['cycle', 'dependencies[0]']]);
    });
  });

  describe('unknown names', () => {
    test('a misspelt depends_on gets a suggestion and the list of ids', () => {
      const [problem] = problemsOf(workflow([op('install-base'), op('deploy', ['instal-base'])]));
      expect(problem).toMatchObject({
        code: 'unknown-operation',
        path: 'operations[1].depends_on[0]',
        message:
          'operation "deploy" depends on "instal-base", which is not an operation of this workflow',
        expected: 'one of install-base or deploy',
        received: '"instal-base"',
        hint: 'did you mean "install-base"?',
      });
    });

    test('unknown servers and taskservs are matched against the inventory and the catalog', () => {
      const problems = problemsOf(
        workflow([
          { id: 'up', type: 'create', target: 'server', items: ['web1'] },
          { id: 'k', type: 'create', target: 'taskserv', items: ['kubernets'] },
        ]),
      );
      expect(problems.map((p) => [p.code, p.path, p.hint])).toEqual([
        ['unknown-server', 'operations[0].items[0]', 'did you mean "web-1"?'],
        ['unknown-taskserv', 'operations[1].items[0]', 'did you mean "kubernetes"?'],
      ]);
    });

    test('workflow taskservs count as known, and their own references are checked', () => {
      const problems = problemsOf(
        workflow([op('a')], {
          servers: [{ name: 'box', taskservs: ['my-agent', 'containred'] }],
          taskservs: [{ name: 'my-agent', requires: ['containerd', 'loggr'] }],
        }),
      );
      expect(problems.map((p) => [p.code, p.path])).toEqual([
        ['unknown-taskserv', 'taskservs[0].requires[1]'],
        ['unknown-taskserv', 'servers[0].taskservs[1]'],
      ]);
      expect(problems[1]!.hint).toBe('did you mean "containerd"?');
    });

    test('an unknown provider is named with the known ones', () => {
      const [problem] = problemsOf(
        workflow([{ id: 'up', type: 'create', target: 'server', providers: ['upclod'] }]),
      );
      expect(problem).toMatchObject({
        code: 'unknown-provider',
        path: 'operations[0].providers[0]',
        hint: 'did you mean "upcloud"?',
      });
    });
  });

  describe('duplicates', () => {
    test('operation ids, server names and items must be unique', () => {
      const problems = problemsOf(
        workflow([op('a'), { ...op('a'), items: ['c', 'c'] }], {
          servers: [{ name: 's' }, { name: 's' }],
        }),
      );
      expect(problems.map((p) => [p.code, p.path])).toEqual([
        ['duplicate-id', 'servers[1].name'],
        ['duplicate-id', 'operations[1].id'],
      ]);
    });

    test('an item listed twice in one operation', () => {
      const problems = problemsOf(workflow([{ ...op('a'), items: ['c', 'd', 'c'] }]));
      expect(problems.map((p) => [p.code, p.path])).toEqual([
        ['duplicate-id', 'operations[0].items[2]'],
      ]);
    });
  });

  test('every problem is collected before throwing', () => {
    const problems = problemsOf(
      workflow(
        [
          op('a', ['b']),
          op('b', ['a']),
          op('c', ['missing']),
          { id: 'up', type: 'create', target: 'server', items: ['nope'] },
          { id: 'k', type: 'create', target: 'taskserv', items: ['kubernetes'] },
        ],
        {
          servers: [{ name: 'web-1', taskservs: ['kubernetes', 'docker', 'podman'] }],
          dependencies: [{ source: 'zz', target: 'a' }],
        },
      ),
    );
    expect(problems.map((p) => p.code).sort()).toEqual([
      'conflict',
      'cycle',
      'missing-requirement',
      'unknown-operation',
      'unknown-operation',
      'unknown-server',
    ]);
  });

  test('the error carries the problems and a message listing them', () => {
    const workflowOutput = v.parse(WorkflowSchema, workflow([op('a', ['b'])]));
    const thrown = (() => {
      try {
        planWorkflow(workflowOutput);
      } catch (e: unknown) {
        return e;
      }
    })();
    expect(thrown).toBeInstanceOf(InvalidWorkflowError);
    const error = thrown as InvalidWorkflowError;
    expect(error.code).toBe('MUS2001');
    expect(error.message).toContain('operations[0].depends_on[0]: operation "a" depends on "b"');
  });
});
