/**
 * `muster batch submit`: sends a workflow file's source to the orchestrator to validate, plan, or
 * run it, and optionally follows the run to its end.
 *
 * @module
 */
import { renderPlan } from '../../../orchestrator/src/plan/render.ts';
import type { Plan } from '../../../orchestrator/src/plan/types.ts';
import type { WorkflowFormat } from '../../../schemas/src/load.ts';
import type { SubmitBody } from '../client.ts';
import { ApiError } from '../client-errors.ts';
import { EXIT_OK, EXIT_RUN_FAILED } from '../exit.ts';
import { renderData } from '../output/format.ts';
import type { BatchContext } from './context.ts';
import { followRun } from './follow.ts';
import { keyValueRecord } from './key-value.ts';
import { renderRunStatus } from './render.ts';
import { readWorkflowSource } from './workflow-source.ts';

/** What `batch submit` was asked to do. */
export interface SubmitOptions {
  /** Only validate: print the problems, create no run. */
  readonly validate?: boolean;
  /** Only plan: print the plan, create no run. */
  readonly dryRun?: boolean;
  /** Follow the run to its end. */
  readonly watch?: boolean;
  /** `key=value` inputs. */
  readonly set?: readonly string[];
  /** One of the workflow's environments. */
  readonly env?: string;
  /** `key=value` labels. */
  readonly label?: readonly string[];
  readonly idempotencyKey?: string;
  /** The source format, when the extension does not tell it. */
  readonly format?: WorkflowFormat;
}

/**
 * Submits a workflow file, and prints the run (its id with `-o table`), the validation verdict,
 * the plan, or with `watch` the run's final status.
 *
 * @param ctx The command's context.
 * @param file The workflow file, or `-` for standard input.
 * @param options What to do.
 *
 * @returns 0, or with `watch` 3 when the run did not succeed.
 *
 * @throws {ApiError} With the server's problems (each located in `file`) for an invalid workflow.
 */
export async function submitWorkflow(
  ctx: BatchContext,
  file: string,
  options: SubmitOptions,
): Promise<number> {
  const workflow = await readWorkflowSource(file, options.format);
  const labels = keyValueRecord(options.label ?? [], '--label');
  const inputs = keyValueRecord(options.set ?? [], '--set');
  const body: SubmitBody = {
    source: workflow.source,
    format: workflow.format,
    ...(labels ? { labels } : {}),
    ...(inputs ? { inputs } : {}),
    ...(options.env ? { environment: options.env } : {}),
    ...(options.idempotencyKey ? { idempotency_key: options.idempotencyKey } : {}),
  };
  try {
    if (options.validate) {
      const result = await ctx.client.validate(body);
      ctx.out(renderData(result, ctx.output, () => `ok ${workflow.file}\n`));
      return EXIT_OK;
    }
    if (options.dryRun) {
      const plan = await ctx.client.dryRun(body);
      ctx.out(renderData(plan, ctx.output, () => renderPlan(plan as unknown as Plan, 'table')));
      return EXIT_OK;
    }
    const result = await ctx.client.submit(body);
    ctx.note(
      result.created
        ? `submitted run ${result.id} (${result.name}), ${result.status}`
        : `run ${result.id} (${result.name}) was already submitted with idempotency key ` +
            `"${options.idempotencyKey}"; it is ${result.status}`,
    );
    if (!options.watch) {
      ctx.out(renderData(result, ctx.output, () => `${result.id}\n`));
      return EXIT_OK;
    }
    ctx.note(`following run ${result.id}; Ctrl-C stops watching, the run goes on`);
    const summary = await followRun(ctx.client, result.id);
    ctx.out(renderData(summary, ctx.output, () => renderRunStatus(summary)));
    return summary.status === 'succeeded' ? EXIT_OK : EXIT_RUN_FAILED;
  } catch (e: unknown) {
    // 422: problems in the workflow, which the user's file holds; other statuses are about the
    // request itself and stay as the server put them.
    if (!(e instanceof ApiError) || e.status !== 422 || e.problems.length === 0) throw e;
    const located = locateIn(e, workflow.file);
    // For tools, the verdict is data too: `{ valid: false, problems }` on stdout, as with
    // `muster validate -o json`.
    if (options.validate && ctx.output !== 'table') {
      ctx.out(renderData({ valid: false, problems: located.problems }, ctx.output, () => ''));
    }
    throw located;
  }
}

/**
 * The server read the source without a file name; problems name the user's file instead.
 *
 * @param e The server's error with problems.
 * @param file The file the user gave.
 *
 * @returns The same error, its problems and message naming `file`.
 */
export function locateIn(e: ApiError, file: string): ApiError {
  // The server names a source it got without a file `<request body> source`, `<cue source>`, …
  const unnamed = (name: string | undefined) => name === undefined || name.startsWith('<');
  const serverNames = new Set(e.problems.map((p) => p.file).filter((f) => f !== undefined));
  const problems = e.problems.map((p) => (unnamed(p.file) ? { ...p, file } : p));
  // The problems are printed one per line: the server's pointer to them is dropped.
  let detail = (e.details.detail ?? '').split('\n')[0]!.replace(/; see problems$/, '');
  for (const name of serverNames) if (unnamed(name)) detail = detail.split(name).join(file);
  return new ApiError(
    e.status,
    { ...e.details, detail: detail || `${file} has ${problems.length} problem(s)`, problems },
    'POST /workflows/batch',
  );
}
