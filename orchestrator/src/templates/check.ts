/**
 * Checks a workflow's templates before any run: every string param that holds template syntax
 * must parse, and every name it reads must exist when that can be known at validate time — a
 * declared input, a secret the workflow's secrets provide (names are read without decrypting), a
 * fact of the task's server, a step that runs earlier in the same task, an operation this one
 * depends on. Outputs' keys are only known at run time, where a missing one fails its step.
 *
 * @module
 */
import { formatPath } from '../../../schemas/src/path.ts';
import { didYouMean, type Problem } from '../../../schemas/src/problems.ts';
import type { Server, Step, Workflow } from '../../../schemas/src/workflow.ts';
import type { Plan, PlannedTask } from '../plan/types.ts';
import { secretsShape } from '../secrets/index.ts';
import { SecretsError, type SecretNode, type SecretTree } from '../secrets/types.ts';
import { TEMPLATE_ROOTS } from './context.ts';
import { isTemplate, templateReferences, type TemplateReference } from './references.ts';

/** What the check knows about the workflow's secrets. */
export type SecretNames = { readonly shape: SecretTree } | { readonly error: string } | undefined;

/** Options of {@link checkWorkflowTemplates}. */
export interface CheckTemplatesOptions {
  /** The secrets' names (see `secretsShape`), or why they could not be read. */
  readonly secrets?: SecretNames;
}

const SERVER_FACTS = ['name', 'address', 'labels'];
const TASK_FACTS = ['id', 'operation', 'item', 'attempt'];

/**
 * Checks the templates in every step a workflow plans.
 *
 * @param workflow The workflow.
 * @param plan Its plan (tasks know their server and their steps in order).
 * @param options The secrets' names.
 * @returns The problems, with the param's path (`operations[1].steps[0].params.args[2]`).
 */
export function checkWorkflowTemplates(
  workflow: Workflow,
  plan: Plan,
  options: CheckTemplatesOptions = {},
): Problem[] {
  const problems = new Map<string, Problem>();
  const add = (p: Problem) => {
    const key = `${p.path}\0${p.message}`;
    if (!problems.has(key)) problems.set(key, p);
  };
  // What only a template needs is made on the first one: at 100k operations without templates,
  // the check took 220 ms of a 1.9 s `muster plan`, most of it building these.
  let paths: Map<Step, string> | undefined;
  let opIndex: Map<string, number> | undefined;
  let operations: OperationGraph | undefined;
  let servers: Map<string, Server> | undefined;
  const parsed = new Map<string, ReturnType<typeof templateReferences>>();
  const refsOf = (source: string) => {
    let r = parsed.get(source);
    if (!r) parsed.set(source, (r = templateReferences(source)));
    return r;
  };
  const checkStep = (
    task: PlannedTask,
    step: Step,
    index: number,
    label: string,
    rollback: boolean,
  ) => {
    const unsafe = shellTemplate(step);
    const inParams = templatesIn(step.params);
    const inRollback = step.rollback ? templatesIn(step.rollback.params) : NONE;
    if (unsafe === undefined && inParams.length === 0 && inRollback.length === 0) return;

    paths ??= stepPaths(workflow);
    opIndex ??= new Map(workflow.operations.map((o, i) => [o.id, i]));
    const base = paths.get(step) ?? `operations[${opIndex.get(task.operation) ?? 0}]`;
    const prefix = paths.has(step) ? '' : `${label}: `;
    const scan = (found: readonly FoundTemplate[], at: string, earlier: number) => {
      for (const { source, path: within } of found) {
        const path = `${at}${within}`;
        const r = refsOf(source);
        if ('problem' in r) {
          add({
            code: 'template-syntax',
            path,
            message: `${prefix}invalid template: ${r.problem.message}`,
          });
          continue;
        }
        for (const ref of r.references) {
          servers ??= new Map(workflow.servers.map((s) => [s.name, s]));
          const message = checkReference(ref, {
            workflow,
            task,
            steps: task.steps,
            earlier,
            server: task.server === undefined ? undefined : servers.get(task.server),
            operations: (operations ??= new OperationGraph(plan)),
            secrets: options.secrets,
          });
          if (message)
            add({
              code: 'template-name',
              path,
              message: `${prefix}${message.text}`,
              ...(message.hint ? { hint: message.hint } : {}),
            });
        }
      }
    };
    if (unsafe) {
      add({
        code: 'template-shell',
        path: `${base}.params.${unsafe}`,
        message: `${prefix}a template in shell script text puts its value into the script unquoted, where a value such as "; rm -rf ~" would run`,
        hint: 'pass the value as an argument ($1, $2, … from args) or an env variable, and quote it in the script: "$1"',
      });
    }
    scan(inParams, `${base}.params`, rollback ? task.steps.length : index);
    scan(inRollback, `${base}.rollback.params`, index + 1);
  };

  for (const task of plan.tasks) {
    task.steps.forEach((step, i) => checkStep(task, step, i, `step "${step.name}"`, false));
    task.compensation.forEach((step, i) =>
      checkStep(task, step, i, `compensation step "${step.name}" of ${task.item}`, true),
    );
  }
  return [...problems.values()];
}

interface RefScope {
  readonly workflow: Workflow;
  readonly task: PlannedTask;
  readonly steps: readonly Step[];
  /** Steps before this index have run when the template renders. */
  readonly earlier: number;
  readonly server: Server | undefined;
  readonly operations: OperationGraph;
  readonly secrets: SecretNames;
}

function checkReference(
  ref: TemplateReference,
  scope: RefScope,
): { text: string; hint?: string } | undefined {
  const [root, first, second, third] = ref.path.map(String);
  const has = (n: number) => ref.path.length > n;
  const unknown = (what: string, name: string, known: readonly string[], where: string) => ({
    text: `${where} names ${what} "${name}", which does not exist${known.length > 0 ? ` (known: ${known.join(', ')})` : ''}`,
    ...hint(didYouMean(name, known)),
  });
  const shown = `{{ ${ref.path.map(String).join('.')} }}`;
  switch (root) {
    case 'inputs': {
      if (!has(1)) return undefined;
      const known = Object.keys(scope.workflow.inputs);
      return known.includes(first!) ? undefined : unknown('input', first!, known, shown);
    }
    case 'secrets': {
      if (!scope.workflow.secrets) {
        return {
          text: `${shown} reads a secret, but the workflow has no secrets block`,
          hint: 'add secrets: { provider: "sops", files: [...] } (or "env", "file")',
        };
      }
      if (scope.secrets && 'error' in scope.secrets) {
        return {
          text: `${shown} reads a secret, but the secrets cannot be listed: ${scope.secrets.error}`,
        };
      }
      if (!scope.secrets || !has(1)) return undefined;
      let node: SecretNode = scope.secrets.shape;
      for (let i = 1; i < ref.path.length; i++) {
        const key = String(ref.path[i]);
        const known = node !== null && typeof node === 'object' ? Object.keys(node) : [];
        const next: SecretNode | undefined =
          node !== null && typeof node === 'object'
            ? (node as Record<string, SecretNode>)[key]
            : undefined;
        if (next === undefined) {
          return unknown(
            'secret',
            ref.path
              .slice(1, i + 1)
              .map(String)
              .join('.'),
            known,
            shown,
          );
        }
        node = next;
      }
      return undefined;
    }
    case 'server': {
      if (scope.task.server === undefined) {
        return {
          text: `${shown} reads a server fact, but the tasks of operation "${scope.task.operation}" run on no server`,
          hint: 'target servers or taskservs, or drop the server reference',
        };
      }
      if (!has(1)) return undefined;
      if (!SERVER_FACTS.includes(first!))
        return unknown('server fact', first!, SERVER_FACTS, shown);
      if (first === 'address' && scope.server && scope.server.address === undefined) {
        return {
          text: `${shown}: server "${scope.server.name}" has no address`,
          hint: `set servers[].address for ${scope.server.name}`,
        };
      }
      if (
        first === 'labels' &&
        has(2) &&
        scope.server &&
        scope.server.labels[second!] === undefined
      ) {
        return unknown(
          `label of server "${scope.server.name}"`,
          second!,
          Object.keys(scope.server.labels),
          shown,
        );
      }
      return undefined;
    }
    case 'steps': {
      if (!has(1)) return undefined;
      const at = scope.steps.findIndex((s) => s.name === first);
      if (at < 0)
        return unknown(
          'step',
          first!,
          scope.steps.slice(0, scope.earlier).map((s) => s.name),
          shown,
        );
      if (at >= scope.earlier) {
        return {
          text: `${shown} reads step "${first}", which runs ${at === scope.earlier ? 'as this very step' : 'after this one'}; a step can only read earlier steps' outputs`,
          hint: 'move the step earlier, or read it in a later step',
        };
      }
      if (has(2) && second !== 'outputs')
        return unknown(`field of step "${first}"`, second!, ['outputs'], shown);
      return undefined;
    }
    case 'operations': {
      if (!has(1)) return undefined;
      if (!scope.operations.has(first!)) {
        return unknown('operation', first!, [...scope.operations.ids()], shown);
      }
      if (!scope.operations.waitsFor(scope.task.operation, first!)) {
        return {
          text: `${shown} reads operation "${first}", which operation "${scope.task.operation}" does not depend on, so its outputs may not exist yet`,
          hint: `add "${first}" to depends_on of "${scope.task.operation}"`,
        };
      }
      if (has(2) && second !== 'outputs')
        return unknown(`field of operation "${first}"`, second!, ['outputs'], shown);
      return undefined;
    }
    case 'run':
      return has(1) && first !== 'id' ? unknown('run field', first!, ['id'], shown) : undefined;
    case 'task':
      return has(1) && !TASK_FACTS.includes(first!)
        ? unknown('task field', first!, TASK_FACTS, shown)
        : undefined;
    case 'env':
      return has(1)
        ? { text: `${shown}: env is the environment's name (a string), it has no "${first}"` }
        : undefined;
    default:
      void third;
      return unknown('variable', root!, [...TEMPLATE_ROOTS], shown);
  }
}

const SHELLS = /^(?:.*\/)?(?:sh|bash|dash|zsh|ksh|ash)$/;

/**
 * Where a `script` step puts a template into shell script text: its `command` with `shell: true`,
 * or the argument after `-c` of a shell it runs. Returns the param's path, or undefined.
 */
function shellTemplate(step: Step): string | undefined {
  if (step.type !== 'script') return undefined;
  const { command, shell, args } = step.params as {
    command?: unknown;
    shell?: unknown;
    args?: unknown;
  };
  if (shell === true && typeof command === 'string' && isTemplate(command)) return 'command';
  if (typeof command !== 'string' || !SHELLS.test(command) || !Array.isArray(args))
    return undefined;
  const at = args.findIndex(
    (a, i) => i > 0 && args[i - 1] === '-c' && typeof a === 'string' && isTemplate(a),
  );
  return at < 0 ? undefined : `args[${at}]`;
}

function hint(text: string | undefined): { hint?: string } {
  return text === undefined ? {} : { hint: text };
}

/** A template string in a params value, and where it sits in that value (`.args[2]`). */
interface FoundTemplate {
  readonly source: string;
  readonly path: string;
}

const NONE: readonly FoundTemplate[] = [];

/**
 * The template strings in a params value, in the order they are written. A value without any
 * allocates nothing: paths are written only for what is found.
 */
function templatesIn(value: unknown): readonly FoundTemplate[] {
  let found: FoundTemplate[] | undefined;
  const keys: Array<string | number> = [];
  const walk = (v: unknown) => {
    if (typeof v === 'string') {
      if (isTemplate(v)) (found ??= []).push({ source: v, path: pathOf(keys) });
    } else if (Array.isArray(v)) {
      for (let i = 0; i < v.length; i++) {
        keys.push(i);
        walk(v[i]);
        keys.pop();
      }
    } else if (v !== null && typeof v === 'object') {
      for (const k of Object.keys(v)) {
        keys.push(k);
        walk((v as Record<string, unknown>)[k]);
        keys.pop();
      }
    }
  };
  walk(value);
  return found ?? NONE;
}

/** `.name`, `[2]` and `["odd key"]` steps, joined as every other problem path is. */
function pathOf(keys: ReadonlyArray<string | number>): string {
  const path = formatPath(keys);
  // formatPath starts a path with its first name bare; here it continues the step's path.
  return path === '' || path.startsWith('[') ? path : `.${path}`;
}

/** Where each step the workflow writes sits in the file. */
function stepPaths(workflow: Workflow): Map<Step, string> {
  const paths = new Map<Step, string>();
  workflow.operations.forEach((op, i) =>
    op.steps.forEach((s, j) => paths.set(s, `operations[${i}].steps[${j}]`)),
  );
  workflow.taskservs.forEach((t, i) => {
    t.install.forEach((s, j) => paths.set(s, `taskservs[${i}].install[${j}]`));
    t.uninstall.forEach((s, j) => paths.set(s, `taskservs[${i}].uninstall[${j}]`));
  });
  return paths;
}

/**
 * Which operation waits for which, directly or not, worked out only for the operations whose
 * templates read another's outputs. Working it out for every operation up front took 4 s of a
 * 31 s `muster plan` at 100k operations, and memory quadratic in the depth of the graph.
 */
class OperationGraph {
  private readonly dependsOn: ReadonlyMap<string, readonly string[]>;
  private readonly ancestors = new Map<string, ReadonlySet<string>>();

  constructor(plan: Plan) {
    this.dependsOn = new Map(plan.operations.map((o) => [o.id, o.depends_on]));
  }

  /** Whether `id` names a planned operation. */
  has(id: string): boolean {
    return this.dependsOn.has(id);
  }

  ids(): IterableIterator<string> {
    return this.dependsOn.keys();
  }

  /** Whether `operation` waits for `other`, directly or through others. */
  waitsFor(operation: string, other: string): boolean {
    let found = this.ancestors.get(operation);
    if (found === undefined) {
      // A walk with an explicit stack: a chain of 100k operations would overflow a recursive one.
      const seen = new Set<string>();
      const stack = [...(this.dependsOn.get(operation) ?? [])];
      while (stack.length > 0) {
        const id = stack.pop()!;
        if (seen.has(id)) continue;
        seen.add(id);
        for (const dependency of this.dependsOn.get(id) ?? []) stack.push(dependency);
      }
      this.ancestors.set(operation, (found = seen));
    }
    return found.has(other);
  }
}

/**
 * The names a workflow's secrets provide, read without decrypting, or why they cannot be read.
 *
 * @param workflow The workflow.
 * @param baseDir Relative secrets paths resolve against it (the workflow file's directory).
 * @returns `undefined` when the workflow has no secrets block.
 */
export function secretNamesOf(workflow: Workflow, baseDir: string): SecretNames {
  if (!workflow.secrets) return undefined;
  try {
    return { shape: secretsShape(workflow.secrets, { env: {}, cwd: baseDir }) };
  } catch (e: unknown) {
    if (e instanceof SecretsError) return { error: e.message };
    throw e;
  }
}
