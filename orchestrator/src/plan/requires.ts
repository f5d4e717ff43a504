/**
 * Edges and problems that come from taskserv definitions rather than from the operations:
 *
 * - `requires` (transitively): on one server, installing X waits for the installation of each
 *   taskserv X requires that this workflow installs there, in the same operation or another (the
 *   operation then waits too). A requirement the server does not list is a problem.
 * - For delete operations the order is reversed: X is uninstalled before what it requires, and
 *   uninstalling something a remaining taskserv requires is a problem.
 * - `conflicts_with` (either direction): two conflicting taskservs listed on one server are a
 *   problem, unless a delete operation uninstalls one of them there; the other's installation
 *   then waits for that.
 * - Taskservs that require each other in a cycle are reported once and not ordered.
 *
 * @internal
 * @module
 */
import { connectTasks, listOf, operationPath, q, type PlanContext } from './context.ts';
import { findCycles, toCsr, topologicalLevels } from './graph.ts';
import { unknownTaskserv } from './inventory.ts';

/** For one server: taskserv name → the tasks that install (or uninstall) it there. */
type ByTaskserv = Map<string, number[]>;

/**
 * Adds requires and conflict edges and reports missing requirements, conflicts and require cycles.
 *
 * @param ctx The planner state, after expansion.
 */
export function addTaskservEdges(ctx: PlanContext): void {
  const installs = new Map<string, ByTaskserv>();
  const uninstalls = new Map<string, ByTaskserv>();
  const deletedServers = new Set<string>();
  for (let i = 0; i < ctx.operations.length; i++) {
    const { type, target } = ctx.operations[i]!;
    const start = ctx.taskStart[i]!;
    const end = ctx.taskStart[i + 1]!;
    if (target === 'server') {
      if (type !== 'delete') continue;
      for (let t = start; t < end; t++) deletedServers.add(ctx.tasks[t]!.item);
      continue;
    }
    if (target !== 'taskserv' || type === 'check') continue;
    const index = type === 'delete' ? uninstalls : installs;
    for (let t = start; t < end; t++) {
      const task = ctx.tasks[t]!;
      let byName = index.get(task.server!);
      if (byName === undefined) index.set(task.server!, (byName = new Map()));
      const list = byName.get(task.item);
      if (list === undefined) byName.set(task.item, [t]);
      else list.push(t);
    }
  }

  const cyclic = reportRequireCycles(ctx);
  const walker = new RequiresWalker(ctx, cyclic);
  const missing = new MissingRequirements();
  for (const [server, byName] of installs) {
    const available = uninstalls.get(server);
    for (const [name, tasks] of byName) {
      walker.walk(name, (required, via) => {
        const entry = ctx.servers.get(server)!;
        if (!entry.taskservs.has(required)) {
          walker.once(`missing|${server}|${name}|${required}`, () => {
            missing.add(taskPath(ctx, tasks[0]!), name, required, via, server, entry.index);
          });
          return 'descend';
        }
        if (available?.has(required) && !byName.has(required)) {
          walker.once(`gone|${server}|${name}|${required}`, () => {
            ctx.problems.push({
              code: 'missing-requirement',
              path: taskPath(ctx, tasks[0]!),
              message: `${name} on ${server} requires ${required}${via}, which ${describeOperations(ctx, available.get(required)!)} uninstalls`,
              hint: `do not uninstall ${q(required)} on ${server}, or do not install ${q(name)} there`,
            });
          });
          return 'stop';
        }
        const firsts = byName.get(required);
        if (firsts === undefined) return 'descend';
        connectTasks(ctx, firsts, tasks, true, {
          reason: 'requires',
          path: taskPath(ctx, tasks[0]!),
          detail: `${name} on ${server} requires ${required}${via}`,
        });
        return 'stop';
      });
    }
  }

  missing.report(ctx);

  for (const [server, byName] of uninstalls) {
    const entry = ctx.servers.get(server)!;
    const installed = installs.get(server);
    for (const [name, tasks] of byName) {
      walker.walk(name, (required, via) => {
        const laters = byName.get(required);
        if (laters === undefined) return 'descend';
        connectTasks(ctx, tasks, laters, true, {
          reason: 'requires',
          path: taskPath(ctx, laters[0]!),
          detail: `${name} on ${server} requires ${required}${via}, so it is uninstalled first`,
        });
        return 'stop';
      });
    }
    if (deletedServers.has(server)) continue;
    // What stays on the server must not lose a requirement.
    for (const name of entry.taskservs) {
      if (byName.has(name) || installed?.has(name)) continue;
      walker.walk(name, (required, via) => {
        const removers = byName.get(required);
        // A requirement listed here is checked on its own walk; saying it twice helps nobody.
        if (removers === undefined) return entry.taskservs.has(required) ? 'stop' : 'descend';
        walker.once(`gone|${server}|${name}|${required}`, () => {
          ctx.problems.push({
            code: 'missing-requirement',
            path: taskPath(ctx, removers[0]!),
            message: `${name} on ${server} requires ${required}${via}, which ${describeOperations(ctx, removers)} uninstalls`,
            hint: `also delete ${q(name)} on ${server}, or keep ${q(required)}`,
          });
        });
        return 'stop';
      });
    }
  }

  checkConflicts(ctx, installs, uninstalls);
}

/**
 * Requirements that servers do not list, one problem for each taskserv, requirement and place in
 * the file, naming every server it applies to: a fleet of 10k servers that all lack one taskserv
 * is one problem, not 10k lines that differ only in the server's name.
 */
class MissingRequirements {
  readonly #found = new Map<
    string,
    { path: string; name: string; required: string; via: string; servers: Array<[string, number]> }
  >();

  add(path: string, name: string, required: string, via: string, server: string, index: number) {
    const key = `${path}\0${name}\0${required}\0${via}`;
    let found = this.#found.get(key);
    if (found === undefined)
      this.#found.set(key, (found = { path, name, required, via, servers: [] }));
    found.servers.push([server, index]);
  }

  report(ctx: PlanContext): void {
    for (const { path, name, required, via, servers } of this.#found.values()) {
      const installs = `an operation that installs ${q(required)} there then runs first`;
      if (servers.length === 1) {
        const [server, index] = servers[0]!;
        ctx.problems.push({
          code: 'missing-requirement',
          path,
          message: `${name} on ${server} requires ${required}${via}; add it to ${server}'s taskservs`,
          hint: `edit servers[${index}].taskservs; ${installs}`,
        });
        continue;
      }
      ctx.problems.push({
        code: 'missing-requirement',
        path,
        message: `${name} requires ${required}${via} on ${servers.length} servers that do not list it (${listOf(
          servers.map(([server]) => server),
          5,
        )}); add it to their taskservs`,
        hint: `edit the taskservs of ${listOf(
          servers.map(([, index]) => `servers[${index}]`),
          5,
        )}; ${installs}`,
      });
    }
  }
}

/** `operations[i].items[j]` of a task: where the user asked for it. */
function taskPath(ctx: PlanContext, task: number): string {
  const index = ctx.taskOperation[task]!;
  const path = operationPath(index);
  // A repeated item makes no task, so a task's item is the first entry with its name; a task
  // of an operation without items (every server) has no entry.
  const item = ctx.operations[index]!.items.indexOf(ctx.tasks[task]!.item);
  return item < 0 ? path : `${path}.items[${item}]`;
}

function describeOperations(ctx: PlanContext, tasks: readonly number[]): string {
  const ids = [...new Set(tasks.map((t) => ctx.tasks[t]!.operation))];
  return `operation${ids.length > 1 ? 's' : ''} ${ids.map(q).join(', ')}`;
}

/** What a visitor tells the walk: look at the requirement's own requirements, or not. */
type Visit = 'descend' | 'stop';

/** Walks taskservs' `requires` transitively, reporting unknown requirements of catalog entries once. */
class RequiresWalker {
  private readonly reported = new Set<string>();

  constructor(
    private readonly ctx: PlanContext,
    private readonly cyclic: ReadonlySet<string>,
  ) {}

  /** Runs `report` the first time `key` is seen. */
  once(key: string, report: () => void): void {
    if (this.reported.has(key)) return;
    this.reported.add(key);
    report();
  }

  /**
   * Visits what `start` requires, depth first, each name once; `via` reads ` (through a, b)` when
   * the requirement is indirect. Taskservs in a require cycle are neither walked nor visited.
   */
  walk(start: string, visit: (required: string, via: string) => Visit): void {
    if (this.cyclic.has(start)) return;
    const seen = new Set([start]);
    const stack: Array<{ name: string; chain: readonly string[] }> = [{ name: start, chain: [] }];
    while (stack.length > 0) {
      const { name, chain } = stack.pop()!;
      const entry = this.ctx.taskservs.get(name);
      if (entry === undefined) continue;
      const requires = entry.taskserv.requires;
      for (let j = requires.length - 1; j >= 0; j--) {
        const required = requires[j]!;
        if (seen.has(required) || this.cyclic.has(required)) continue;
        seen.add(required);
        if (!this.ctx.taskservs.has(required)) {
          // Workflow taskservs were checked up front, with their own path.
          if (entry.path === undefined) {
            this.once(`unknown|${name}|${required}`, () => {
              const problem = unknownTaskserv(required, '', this.ctx.taskservs);
              this.ctx.problems.push({
                ...problem,
                message: `taskserv ${q(name)} of the catalog requires ${q(required)}, which is not defined`,
              });
            });
          }
          continue;
        }
        const via = chain.length > 0 ? ` (through ${chain.join(', ')})` : '';
        if (visit(required, via) === 'descend') {
          stack.push({ name: required, chain: [...chain, required] });
        }
      }
    }
  }
}

/**
 * Reports taskservs that require each other (or themselves), among those listed on servers and
 * what they require.
 *
 * @returns The names on a cycle.
 */
function reportRequireCycles(ctx: PlanContext): Set<string> {
  const names: string[] = [];
  const ids = new Map<string, number>();
  const visit = (name: string) => {
    if (ids.has(name) || !ctx.taskservs.has(name)) return;
    ids.set(name, names.length);
    names.push(name);
  };
  for (const server of ctx.servers.values()) for (const name of server.taskservs) visit(name);
  const from: number[] = [];
  const to: number[] = [];
  const cyclic = new Set<string>();
  for (let i = 0; i < names.length; i++) {
    const requires = ctx.taskservs.get(names[i]!)!.taskserv.requires;
    for (const required of requires) {
      visit(required);
      const j = ids.get(required);
      if (j === undefined) continue;
      if (j === i) {
        cyclic.add(names[i]!);
        ctx.problems.push({
          code: 'cycle',
          path: requirePath(ctx, names[i]!, required),
          message: `taskserv ${q(names[i]!)} requires itself: ${names[i]} → ${names[i]}`,
          hint: `remove ${q(required)} from its requires`,
        });
        continue;
      }
      from.push(i);
      to.push(j);
    }
  }
  const graph = toCsr(names.length, from, to);
  const { unsorted } = topologicalLevels(graph);
  if (unsorted.length === 0) return cyclic;
  for (const cycle of findCycles(graph, unsorted)) {
    const path = cycle.map((i) => names[i]!);
    for (const name of path) cyclic.add(name);
    ctx.problems.push({
      code: 'cycle',
      path: requirePath(ctx, path[0]!, path[1]!),
      message: `taskservs require each other: ${[...path, path[0]].join(' → ')}`,
      hint: 'remove one of these requires; a taskserv cannot be installed before itself',
    });
  }
  return cyclic;
}

/** Where `name` requires `required`: its workflow definition, else where a server lists it. */
function requirePath(ctx: PlanContext, name: string, required: string): string {
  const entry = ctx.taskservs.get(name)!;
  if (entry.path !== undefined) {
    return `${entry.path}.requires[${entry.taskserv.requires.indexOf(required)}]`;
  }
  for (const server of ctx.servers.values()) {
    const j = server.server.taskservs.indexOf(name);
    if (j >= 0) return `servers[${server.index}].taskservs[${j}]`;
  }
  return '';
}

function checkConflicts(
  ctx: PlanContext,
  installs: ReadonlyMap<string, ByTaskserv>,
  uninstalls: ReadonlyMap<string, ByTaskserv>,
): void {
  for (const entry of ctx.servers.values()) {
    const listed = entry.server.taskservs;
    if (listed.length < 2) continue;
    const server = entry.server.name;
    const removed = uninstalls.get(server);
    const installed = installs.get(server);
    for (let b = 1; b < listed.length; b++) {
      for (let a = 0; a < b; a++) {
        const first = listed[a]!;
        const second = listed[b]!;
        if (first === second || !conflicts(ctx, first, second)) continue;
        const firstGoes = removed?.has(first) ?? false;
        const secondGoes = removed?.has(second) ?? false;
        if (firstGoes || secondGoes) {
          if (firstGoes && secondGoes) continue;
          const [gone, stays] = firstGoes ? [first, second] : [second, first];
          const installers = installed?.get(stays);
          if (installers !== undefined) {
            connectTasks(ctx, removed!.get(gone)!, installers, true, {
              reason: 'requires',
              path: taskPath(ctx, installers[0]!),
              detail: `${stays} conflicts with ${gone} on ${server}, so ${gone} is uninstalled first`,
            });
          }
          continue;
        }
        ctx.problems.push({
          code: 'conflict',
          path: `servers[${entry.index}].taskservs[${b}]`,
          message: `${second} and ${first} conflict, but server ${server} lists both`,
          hint: `remove one of them from servers[${entry.index}].taskservs, or uninstall one of them there in a delete operation`,
        });
      }
    }
  }
}

function conflicts(ctx: PlanContext, a: string, b: string): boolean {
  const first = ctx.taskservs.get(a)?.taskserv;
  const second = ctx.taskservs.get(b)?.taskserv;
  return (
    (first?.conflicts_with.includes(b) ?? false) || (second?.conflicts_with.includes(a) ?? false)
  );
}
