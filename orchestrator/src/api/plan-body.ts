/**
 * Response bodies that carry a plan: the plan's JSON streamed as it is written, after the other
 * fields, so a dry run of a large workflow is never one string in the server (132 MB at 100k
 * operations).
 *
 * @module
 */
import { renderJsonChunks } from '../plan/render-json.ts';
import type { Plan } from '../plan/types.ts';
import { streamPieces } from './stream-pieces.ts';

/**
 * The body `{ ...fields, "plan": <the plan> }`.
 *
 * @param fields The fields before the plan, as JSON values.
 * @param plan The plan.
 * @returns A body for `c.body(...)`.
 */
export function planBody(
  fields: Readonly<Record<string, unknown>>,
  plan: Plan,
): ReadableStream<Uint8Array> {
  const head = JSON.stringify(fields);
  const open = head === '{}' ? '{"plan":' : `${head.slice(0, -1)},"plan":`;
  function* pieces() {
    yield open;
    yield* renderJsonChunks(plan);
    yield '}\n';
  }
  return streamPieces(pieces());
}
