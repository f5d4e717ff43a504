/**
 * The `echo` step: logs a message.
 *
 * @module
 */
import * as v from 'valibot';
import type { StepHandler } from './types.ts';

/** Params of the `echo` step. */
export const EchoParamsSchema = v.strictObject({ message: v.string() });
export type EchoParams = v.InferOutput<typeof EchoParamsSchema>;

/** Logs `message` as info, one log line per line of text; outputs nothing. */
export const echoStep: StepHandler<EchoParams> = {
  type: 'echo',
  params: EchoParamsSchema,
  async execute({ message }, ctx) {
    for (const line of message.split(/\r?\n/)) ctx.log('info', line);
  },
};
