/**
 * Expands operations into tasks, one per (item, server):
 *
 * - `server` targets act on servers (all of them when `items` is empty), filtered by `providers`:
 *   create/delete/check go to the provider's queue as an action, update runs steps on the server.
 * - `taskserv` targets run on every server whose `taskservs` lists the item: create installs
 *   (compensated by uninstall), update reinstalls, delete uninstalls, check runs the health check.
 * - `cluster` targets run their steps once per item on the orchestrator.
 *
 * Problems with items (unknown, duplicated, on no server) are collected, not thrown.
 *
 * @internal
 * @module
 */
import { didYouMean, type Problem } from '../../../schemas/src/problems.ts';
import {
  SERVER_PROVIDERS,
  type Operation,
  type Step,
  type Taskserv,
} from '../../../schemas/src/workflow.ts';
import { listOf, operationPath, q, type PlanContext, type ServerEntry } from './context.ts';
import { unknownTaskserv } from './inventory.ts';
import type { PlannedTask } from './types.ts';

const NO_STEPS: readonly Step[] = Object.freeze([]);

/**
 * Creates the tasks of every planned operation, in file order.
 *
 * @param ctx The planner state; tasks are appended to `ctx.tasks`.
 */
export function expandOperations(ctx: PlanContext): void {
  const { operations, planned, taskStart } = ctx;
  for (let index = 0; index < operations.length; index++) {
    taskStart[index] = ctx.tasks.length;
    if (!planned[index]) continue;
    const op = operations[index]!;
    switch (op.target) {
      case 'server':
        expandServerOperation(ctx, index, op);
        break;
      case 'taskserv':
        expandTaskservOperation(ctx, index, op);
        break;
      case 'cluster':
        expandClusterOperation(ctx, index, op);
        break;
    }
  }
  taskStart[operations.length] = ctx.tasks.length;
  const taskOperation = new Int32Array(ctx.tasks.length);
  for (let index = 0; index < operations.length; index++) {
    taskOperation.fill(index, taskStart[index]!, taskStart[index + 1]!);
  }
  ctx.taskOperation = taskOperation;
}

/** Reports a repeated item; true when `name` was seen before in this operation. */
function isDuplicateItem(
  ctx: PlanContext,
  index: number,
  op: Operation,
  seen: Set<string> | undefined,
  name: string,
  j: number,
): boolean {
  if (seen === undefined) return false;
  if (!seen.has(name)) {
    seen.add(name);
    return false;
  }
  ctx.problems.push({
    code: 'duplicate-id',
    path: `${operationPath(index)}.items[${j}]`,
    message: `item ${q(name)} is listed twice in operation ${q(op.id)}`,
    hint: 'remove the second entry',
  });
  return true;
}

/** Reports providers that do not exist; true when all are known. */
function checkProviders(ctx: PlanContext, index: number, op: Operation): boolean {
  let ok = true;
  op.providers.forEach((provider, j) => {
    if ((SERVER_PROVIDERS as readonly string[]).includes(provider)) return;
    ok = false;
    ctx.problems.push({
      code: 'unknown-provider',
      path: `${operationPath(index)}.providers[${j}]`,
      message: `unknown provider ${q(provider)}`,
      expected: `one of ${listOf(SERVER_PROVIDERS, 8, 'or')}`,
      received: q(provider),
      ...hint(didYouMean(provider, SERVER_PROVIDERS)),
    });
  });
  return ok;
}

function hint(text: string | undefined): { hint?: string } {
  return text === undefined ? {} : { hint: text };
}

function matchesProviders(providers: readonly string[], entry: ServerEntry): boolean {
  return providers.length === 0 || providers.includes(entry.server.provider);
}

function describeServers(entries: Iterable<ServerEntry>): string {
  return listOf([...entries].map((e) => `${e.server.name} (${e.server.provider})`));
}

function expandServerOperation(ctx: PlanContext, index: number, op: Operation): void {
  const path = operationPath(index);
  const providersKnown = checkProviders(ctx, index, op);
  let itemsKnown = true;
  const candidates: ServerEntry[] = [];
  if (op.items.length === 0) {
    for (const entry of ctx.servers.values()) candidates.push(entry);
  } else {
    const seen = op.items.length > 1 ? new Set<string>() : undefined;
    op.items.forEach((name, j) => {
      if (isDuplicateItem(ctx, index, op, seen, name, j)) return;
      const entry = ctx.servers.get(name);
      if (entry !== undefined) {
        candidates.push(entry);
        return;
      }
      itemsKnown = false;
      ctx.problems.push({
        code: 'unknown-server',
        path: `${path}.items[${j}]`,
        message: `unknown server ${q(name)} in operation ${q(op.id)}`,
        expected: ctx.servers.size > 0 ? `one of ${ctx.knownServers.choices()}` : 'a server',
        received: q(name),
        hint:
          ctx.knownServers.suggest(name) ??
          `add ${q(name)} to the workflow's servers, or remove it from items`,
      });
    });
  }

  const selected = candidates.filter((entry) => matchesProviders(op.providers, entry));
  if (selected.length === 0 && itemsKnown && providersKnown) {
    ctx.problems.push(noServersProblem(ctx, index, op, candidates));
  }
  if (op.type === 'update' && op.steps.length === 0) {
    ctx.problems.push({
      code: 'empty-operation',
      path: `${path}.steps`,
      message: `operation ${q(op.id)} updates servers but has no steps`,
      hint: 'add the steps to run on each server',
    });
  }
  if (op.type === 'delete' && op.steps.length > 0) {
    ctx.problems.push({
      code: 'invalid-steps',
      path: `${path}.steps`,
      message: `operation ${q(op.id)} deletes servers, so its steps would run on servers that no longer exist`,
      hint: 'move the steps to an update operation that the delete depends on',
    });
  }

  for (const entry of selected) {
    const { name, provider } = entry.server;
    const id = `${op.id}:${name}@${name}`;
    if (op.type === 'update') {
      ctx.tasks.push({
        id,
        operation: op.id,
        item: name,
        server: name,
        queue: `server:${name}`,
        steps: op.steps,
        compensation: NO_STEPS,
      });
      continue;
    }
    const action = op.type === 'check' ? 'status' : op.type;
    ctx.tasks.push({
      id,
      operation: op.id,
      item: name,
      server: name,
      queue: `provider:${provider}`,
      action,
      provider,
      steps: op.steps,
      // The engine deletes a created server through its provider on rollback; nothing to add.
      compensation: NO_STEPS,
    });
  }
}

function noServersProblem(
  ctx: PlanContext,
  index: number,
  op: Operation,
  candidates: readonly ServerEntry[],
): Problem {
  const path = operationPath(index);
  const message = `operation ${q(op.id)} has no servers to act on`;
  if (ctx.servers.size === 0) {
    return {
      code: 'no-servers',
      path: `${path}.target`,
      message: `${message}: the workflow lists no servers`,
      hint: "add servers to the workflow's servers",
    };
  }
  return {
    code: 'no-servers',
    path: `${path}.providers`,
    message: `${message}: no ${op.items.length > 0 ? 'listed ' : ''}server uses provider ${listOf(op.providers.map(q), 8, 'or')}`,
    expected: `a server with provider ${listOf(op.providers, 8, 'or')}`,
    received: describeServers(candidates),
    hint: 'change providers, or target servers of those providers',
  };
}

function expandTaskservOperation(ctx: PlanContext, index: number, op: Operation): void {
  const path = operationPath(index);
  const providersKnown = checkProviders(ctx, index, op);
  if (op.items.length === 0) {
    ctx.problems.push({
      code: 'missing-items',
      path: `${path}.items`,
      message: `operation ${q(op.id)} targets taskservs but lists none in items`,
      hint: `list the taskservs to ${op.type}, e.g. items: ["containerd"]`,
    });
  }
  const seen = op.items.length > 1 ? new Set<string>() : undefined;
  op.items.forEach((name, j) => {
    if (isDuplicateItem(ctx, index, op, seen, name, j)) return;
    const itemPath = `${path}.items[${j}]`;
    const entry = ctx.taskservs.get(name);
    if (entry === undefined) {
      ctx.problems.push(unknownTaskserv(name, itemPath, ctx.taskservs));
      return;
    }
    const taskserv = entry.taskserv;
    const servers: ServerEntry[] = [];
    for (const server of ctx.servers.values()) {
      if (server.taskservs.has(name) && matchesProviders(op.providers, server))
        servers.push(server);
    }
    if (servers.length === 0 && providersKnown) {
      const holders = [...ctx.servers.values()].filter((s) => s.taskservs.has(name));
      ctx.problems.push({
        code: 'no-servers',
        path: itemPath,
        message:
          holders.length === 0
            ? `taskserv ${q(name)} is on no server, so operation ${q(op.id)} has nothing to ${op.type}`
            : `taskserv ${q(name)} is on no server of provider ${listOf(op.providers, 8, 'or')}`,
        expected: `a server whose taskservs list ${q(name)}`,
        received:
          ctx.servers.size === 0
            ? 'no servers'
            : listOf(
                [...ctx.servers.values()].map(
                  (s) => `${s.server.name} [${[...s.taskservs].join(', ')}]`,
                ),
              ),
        hint:
          holders.length === 0
            ? `add ${q(name)} to the taskservs of the servers that should run it`
            : `its servers are ${describeServers(holders)}; change providers`,
      });
      return;
    }
    if (op.type === 'check' && taskserv.health_check === undefined && op.steps.length === 0) {
      ctx.problems.push({
        code: 'missing-health-check',
        path: itemPath,
        message: `operation ${q(op.id)} checks taskserv ${q(name)}, which has no health_check, and has no steps`,
        hint: `add a health_check to taskserv ${q(name)}${entry.path ? ` (${entry.path})` : ''} or steps to the operation`,
      });
      return;
    }
    const body = taskservTaskBody(op.type, taskserv, op.steps);
    for (const server of servers) {
      const host = server.server.name;
      ctx.tasks.push({
        id: `${op.id}:${name}@${host}`,
        operation: op.id,
        item: name,
        server: host,
        queue: `server:${host}`,
        ...body,
      });
    }
  });
}

/** Steps, compensation and health check of a taskserv task, shared by all of its servers. */
function taskservTaskBody(
  type: 'create' | 'update' | 'delete' | 'check',
  taskserv: Taskserv,
  steps: readonly Step[],
): Pick<PlannedTask, 'steps' | 'compensation' | 'health_check'> {
  const health = taskserv.health_check === undefined ? {} : { health_check: taskserv.health_check };
  switch (type) {
    case 'create':
      return {
        steps: [...taskserv.install, ...steps],
        compensation: taskserv.uninstall,
        ...health,
      };
    case 'update':
      return { steps: [...taskserv.install, ...steps], compensation: NO_STEPS, ...health };
    case 'delete':
      return { steps: [...taskserv.uninstall, ...steps], compensation: NO_STEPS };
    case 'check':
      return { steps, compensation: NO_STEPS, ...health };
  }
}

function expandClusterOperation(ctx: PlanContext, index: number, op: Operation): void {
  if (op.items.length === 0) {
    ctx.problems.push({
      code: 'missing-items',
      path: `${operationPath(index)}.items`,
      message: `operation ${q(op.id)} targets clusters but lists none in items`,
      hint: 'list the cluster names in items; each one becomes a task',
    });
  }
  if (op.steps.length === 0) {
    ctx.problems.push({
      code: 'empty-operation',
      path: `${operationPath(index)}.steps`,
      message: `operation ${q(op.id)} targets clusters but has no steps`,
      hint: 'add the steps to run for each cluster',
    });
  }
  const seen = op.items.length > 1 ? new Set<string>() : undefined;
  const items = op.items;
  for (let j = 0; j < items.length; j++) {
    const item = items[j]!;
    if (isDuplicateItem(ctx, index, op, seen, item, j)) continue;
    ctx.tasks.push({
      id: `${op.id}:${item}`,
      operation: op.id,
      item,
      queue: 'orchestrator',
      steps: op.steps,
      compensation: NO_STEPS,
    });
  }
}
