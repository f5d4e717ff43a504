/**
 * Loads a workflow file and plans it against the taskserv catalog, with every problem located in
 * the file: what `muster validate`, `muster plan` and (later) the API's submit route share.
 * Inputs' types and step params' templates are checked here too (names a template reads that
 * cannot exist, such as an undeclared input or a step that runs later).
 *
 * The loader reports schema problems with their line; the planner works on the parsed workflow and
 * only knows field paths (`operations[2].depends_on[0]`), so its problems get their file and line
 * here, through the loaded file's `locate`. Step params (a `script` step without `command`) are
 * checked here too, against the step handlers' own schemas, so they fail before a run starts.
 *
 * @module
 */
import { dirname } from 'node:path';
import { checkInputs } from '../../../schemas/src/inputs.ts';
import { fileNameOf, loadWorkflowFile } from '../../../schemas/src/load.ts';
import type { LoadedWorkflow, WorkflowFormat } from '../../../schemas/src/load.ts';
import { InvalidWorkflowError, MusterError } from '../../../schemas/src/problems.ts';
import type { Problem } from '../../../schemas/src/problems.ts';
import type { Step, Taskserv, Workflow } from '../../../schemas/src/workflow.ts';
import { loadCatalog } from '../../../taskservs/index.ts';
import { checkStepParams, createStepRegistry } from '../steps/index.ts';
import type { StepRegistry } from '../steps/index.ts';
import { checkWorkflowTemplates, secretNamesOf } from '../templates/check.ts';
import { planWorkflow } from './index.ts';
import type { Plan } from './types.ts';

/** Options of `loadAndPlanFile` and `validateWorkflowFile`. */
export interface LoadAndPlanOptions {
  /**
   * The taskserv catalog to plan against.
   *
   * @default the bundled catalog (`loadCatalog()`)
   */
  readonly catalog?: ReadonlyMap<string, Taskserv>;
  /**
   * The step handlers whose params schemas steps are checked against. Steps of `type: "custom"`
   * whose handler is not registered are not checked (their handlers are loaded at run time).
   *
   * @default the built-in handlers
   */
  readonly registry?: StepRegistry;
  /**
   * The file's format, whatever it is named; for `-` (standard input), CUE needs saying.
   *
   * @default from the extension; for `-`, JSON when it starts with `{` or `[`, else YAML
   */
  readonly format?: WorkflowFormat | undefined;
}

/** A loaded and planned workflow file. */
export interface LoadedPlan {
  readonly loaded: LoadedWorkflow;
  readonly plan: Plan;
}

/**
 * Loads a workflow file (`.cue`, `.json`, `.yaml`) and plans it.
 *
 * @param path The file, as the user gave it (it names the file in problems).
 * @param options The catalog to plan against.
 *
 * @returns The loaded workflow and its plan.
 *
 * @throws {InvalidWorkflowError} With every problem of the file, each with its file and, where
 * known, line: schema problems (from the loader) or planning problems (unknown names, cycles,
 * conflicts), not both, as planning needs a valid workflow.
 * @throws {MusterError} When the file cannot be read.
 *
 * @example
 * ```ts
 * const { loaded, plan } = await loadAndPlanFile('examples/four-phase.cue');
 * console.log(renderPlan(plan, 'table'));
 * ```
 */
export async function loadAndPlanFile(
  path: string,
  options: LoadAndPlanOptions = {},
): Promise<LoadedPlan> {
  const loaded = await loadWorkflowFile(path, { format: options.format });
  const catalog = options.catalog ?? (await loadCatalog());
  return { loaded, plan: planLoadedWorkflow(loaded, catalog, options.registry) };
}

/**
 * Plans a loaded workflow and checks its steps' params, locating every problem in its file.
 *
 * @param loaded The loaded workflow file.
 * @param catalog The taskserv catalog.
 * @param registry The step handlers to check params against; the built-ins by default.
 *
 * @returns The plan.
 *
 * @throws {InvalidWorkflowError} With every planning and step-params problem, located.
 */
export function planLoadedWorkflow(
  loaded: LoadedWorkflow,
  catalog: ReadonlyMap<string, Taskserv>,
  registry: StepRegistry = builtinRegistry(),
): Plan {
  const problems = [
    ...checkInputs(loaded.workflow),
    ...checkWorkflowSteps(loaded.workflow, registry),
  ];
  let plan: Plan | undefined;
  try {
    plan = planWorkflow(loaded.workflow, { catalog });
  } catch (e: unknown) {
    if (!(e instanceof InvalidWorkflowError)) throw e;
    problems.unshift(...e.problems);
  }
  if (plan !== undefined) {
    // Template names are checked against the plan: it knows each task's server and step order.
    const baseDir = loaded.file.startsWith('<') ? process.cwd() : dirname(loaded.file);
    const secrets = secretNamesOf(loaded.workflow, baseDir);
    problems.push(...checkWorkflowTemplates(loaded.workflow, plan, { secrets }));
  }
  if (problems.length > 0 || plan === undefined) {
    throw new InvalidWorkflowError(
      problems.map((p) => locateProblem(p, loaded)),
      loaded.file,
    );
  }
  return plan;
}

/**
 * Checks the params of every step a workflow writes (its operations' steps, and its own
 * taskservs' install and uninstall steps) against the handlers' schemas.
 *
 * @param workflow The workflow.
 * @param registry The step handlers.
 *
 * @returns The problems, with paths such as `operations[1].steps[0].params.command`.
 */
export function checkWorkflowSteps(workflow: Workflow, registry: StepRegistry): Problem[] {
  const problems: Problem[] = [];
  const check = (steps: readonly Step[], path: string) =>
    steps.forEach((step, i) => {
      if (!isCheckable(step, registry)) return;
      // A rollback through an unregistered custom handler is left out; the step itself is checked.
      const { rollback, ...rest } = step;
      const target = rollback && !isCheckable(rollback, registry) ? rest : step;
      problems.push(...checkStepParams(registry, target, { path: `${path}[${i}]` }));
    });
  workflow.operations.forEach((op, i) => check(op.steps, `operations[${i}].steps`));
  workflow.taskservs.forEach((t, i) => {
    check(t.install, `taskservs[${i}].install`);
    check(t.uninstall, `taskservs[${i}].uninstall`);
  });
  return problems;
}

/** Built-in steps always; custom ones only when their handler is registered. */
function isCheckable(step: Pick<Step, 'type' | 'handler'>, registry: StepRegistry): boolean {
  if (step.type !== 'custom') return true;
  return step.handler !== undefined && registry.get(step.handler) !== undefined;
}

let builtins: StepRegistry | undefined;
function builtinRegistry(): StepRegistry {
  return (builtins ??= createStepRegistry());
}

/** The verdict on one workflow file. */
export interface FileValidation {
  /** The file, as given. */
  readonly file: string;
  readonly valid: boolean;
  /** Every problem, located; empty when valid. */
  readonly problems: readonly Problem[];
  /** The plan's size, when valid. */
  readonly operations?: number;
  readonly tasks?: number;
}

/**
 * Validates one workflow file: loads it and plans it, turning every problem a user can fix into
 * data (an unreadable file included).
 *
 * @param path The file, as the user gave it.
 * @param options The catalog to plan against.
 *
 * @returns The verdict with every problem, located.
 *
 * @throws Anything that is not the file's fault: a broken catalog, a bug.
 */
export async function validateWorkflowFile(
  path: string,
  options: LoadAndPlanOptions = {},
): Promise<FileValidation> {
  const file = fileNameOf(path);
  let loaded: LoadedWorkflow;
  try {
    loaded = await loadWorkflowFile(path, { format: options.format });
  } catch (e: unknown) {
    if (e instanceof InvalidWorkflowError) return invalid(file, e.problems);
    if (isFileError(e)) {
      return invalid(file, [{ code: 'file', path: '', message: e.message, file }]);
    }
    throw e;
  }
  const catalog = options.catalog ?? (await loadCatalog());
  try {
    const plan = planLoadedWorkflow(loaded, catalog, options.registry);
    return {
      file,
      valid: true,
      problems: [],
      operations: plan.operations.length,
      tasks: plan.tasks.length,
    };
  } catch (e: unknown) {
    if (e instanceof InvalidWorkflowError) return invalid(file, e.problems);
    throw e;
  }
}

/** Loader error codes that are about the file itself, not its content. */
const FILE_ERROR_CODES: ReadonlySet<string> = new Set([
  'MUS2002', // missing or unreadable
  'MUS2003', // unknown extension
]);

/**
 * Tells whether an error is about the workflow file itself: missing, unreadable, or of an unknown
 * format. Like an invalid workflow, it is the user's to fix (exit code 2), unlike a broken
 * catalog or a bug.
 *
 * @param e Anything thrown by `loadWorkflowFile`.
 *
 * @returns True for the loader's file errors.
 */
export function isFileError(e: unknown): e is MusterError {
  return e instanceof MusterError && FILE_ERROR_CODES.has(e.code);
}

function invalid(file: string, problems: readonly Problem[]): FileValidation {
  return { file, valid: false, problems: problems.map((p) => (p.file ? p : { ...p, file })) };
}

/**
 * Fills in a problem's file and line from where its path is in the loaded file.
 *
 * A path that cannot be found is retried without its last segments (`operations[2].steps[0].x`,
 * then `operations[2].steps[0]`, …), so the line points at least at the enclosing entry.
 *
 * @param problem A problem, typically from the planner.
 * @param loaded The file it is about.
 *
 * @returns The problem with `file` set and `line`/`column` when they are known.
 */
export function locateProblem(problem: Problem, loaded: LoadedWorkflow): Problem {
  const file = problem.file ?? loaded.file;
  if (problem.line !== undefined) return { ...problem, file };
  for (let path = problem.path; path !== ''; path = parentPath(path)) {
    const where = loaded.locate(path);
    if (where) {
      return {
        ...problem,
        file,
        line: where.line,
        ...(where.column === undefined ? {} : { column: where.column }),
      };
    }
  }
  return { ...problem, file };
}

/** `a.b[2]` → `a.b`, `a.b` → `a`, `a` → ``. */
function parentPath(path: string): string {
  const cut = Math.max(path.lastIndexOf('.'), path.lastIndexOf('['));
  return cut <= 0 ? '' : path.slice(0, cut);
}
