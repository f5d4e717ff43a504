/**
 * Run controls (`rollback`, `retry`, `pause`, `resume`, `cancel`, `terminate`): one request, and
 * the run's new state.
 *
 * @module
 */
import type { ControlAction } from '../client.ts';
import { renderData } from '../output/format.ts';
import type { BatchContext } from './context.ts';
import { renderControlResult } from './render.ts';

/**
 * Asks the orchestrator to act on a run and prints its answer.
 *
 * @param ctx The command's context.
 * @param id The run.
 * @param action The control.
 * @param body The control's arguments (`to_checkpoint`, `operation`).
 *
 * @returns 0.
 *
 * @throws {ApiError} `ORC1002` when the run's state forbids the action, `ORC1001` for no such run.
 */
export async function controlRun(
  ctx: BatchContext,
  id: string,
  action: ControlAction,
  body: Record<string, unknown> = {},
): Promise<number> {
  const result = await ctx.client.control(id, action, body);
  ctx.out(renderData(result, ctx.output, () => renderControlResult(result, action)));
  return 0;
}
