/**
 * Indexes what a workflow acts on: its servers by name and the known taskservs (the catalog, with
 * the workflow's own taskservs replacing entries of the same name), reporting duplicates and
 * references to taskservs that exist nowhere.
 *
 * @internal
 * @module
 */
import { didYouMean, type Problem } from '../../../schemas/src/problems.ts';
import type { Taskserv, Workflow } from '../../../schemas/src/workflow.ts';
import { listOf, q, type ServerEntry, type TaskservEntry } from './context.ts';

/** The indexed inventory. */
export interface Inventory {
  readonly servers: Map<string, ServerEntry>;
  readonly taskservs: Map<string, TaskservEntry>;
}

/**
 * Indexes servers and taskservs and reports what is wrong with them.
 *
 * @param workflow The workflow (valibot output).
 * @param catalog Taskservs known outside the workflow.
 * @param problems Where problems go.
 * @returns The servers (first of each name) and taskservs (workflow entries win).
 */
export function indexInventory(
  workflow: Workflow,
  catalog: ReadonlyMap<string, Taskserv>,
  problems: Problem[],
): Inventory {
  const taskservs = new Map<string, TaskservEntry>();
  for (const [name, taskserv] of catalog) taskservs.set(name, { taskserv, path: undefined });
  const defined = new Map<string, number>();
  workflow.taskservs.forEach((taskserv, i) => {
    const first = defined.get(taskserv.name);
    if (first !== undefined) {
      problems.push({
        code: 'duplicate-id',
        path: `taskservs[${i}].name`,
        message: `taskserv ${q(taskserv.name)} is defined twice, first at taskservs[${first}]`,
        hint: 'rename or remove one of them',
      });
      return;
    }
    defined.set(taskserv.name, i);
    taskservs.set(taskserv.name, { taskserv, path: `taskservs[${i}]` });
  });

  for (const [name, index] of defined) {
    const taskserv = taskservs.get(name)!.taskserv;
    for (const field of ['requires', 'conflicts_with'] as const) {
      taskserv[field].forEach((other, j) => {
        if (taskservs.has(other)) return;
        problems.push(unknownTaskserv(other, `taskservs[${index}].${field}[${j}]`, taskservs));
      });
    }
  }

  const servers = new Map<string, ServerEntry>();
  workflow.servers.forEach((server, i) => {
    const first = servers.get(server.name);
    if (first !== undefined) {
      problems.push({
        code: 'duplicate-id',
        path: `servers[${i}].name`,
        message: `server ${q(server.name)} is listed twice, first at servers[${first.index}]`,
        hint: 'server names must be unique; rename or merge them',
      });
      return;
    }
    const listed = new Set<string>();
    server.taskservs.forEach((name, j) => {
      const path = `servers[${i}].taskservs[${j}]`;
      if (listed.has(name)) {
        problems.push({
          code: 'duplicate-id',
          path,
          message: `taskserv ${q(name)} is listed twice on server ${q(server.name)}`,
          hint: 'remove the second entry',
        });
      } else if (!taskservs.has(name)) {
        problems.push(unknownTaskserv(name, path, taskservs));
      }
      listed.add(name);
    });
    servers.set(server.name, { server, index: i, taskservs: listed });
  });
  return { servers, taskservs };
}

/**
 * The problem for a taskserv name that is neither in the catalog nor in the workflow.
 *
 * @param name The name as written.
 * @param path Where it was written.
 * @param known The known taskservs, for the suggestion.
 * @returns An `unknown-taskserv` problem.
 */
export function unknownTaskserv(
  name: string,
  path: string,
  known: ReadonlyMap<string, unknown>,
): Problem {
  const suggestion = didYouMean(name, known.keys());
  return {
    code: 'unknown-taskserv',
    path,
    message: `unknown taskserv ${q(name)}`,
    expected:
      known.size > 0 ? `one of ${listOf([...known.keys()].sort(), 12, 'or')}` : 'a taskserv',
    received: q(name),
    hint: suggestion ?? `define it in the workflow's taskservs or add it to the catalog`,
  };
}
