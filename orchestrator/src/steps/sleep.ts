/**
 * The `sleep` step: waits, and stops waiting at once when aborted.
 *
 * @module
 */
import * as v from 'valibot';
import { DurationSchema } from './duration.ts';
import { abortFailure, type StepHandler } from './types.ts';

/** Params of the `sleep` step: `duration` in seconds or as `"500ms"`, `"30s"`, `"5m"`. */
export const SleepParamsSchema = v.strictObject({ duration: DurationSchema });
/** Sleep params after parsing: the duration in milliseconds. */
export type SleepParams = v.InferOutput<typeof SleepParamsSchema>;

/** Waits for `duration`. */
export const sleepStep: StepHandler<SleepParams> = {
  type: 'sleep',
  params: SleepParamsSchema,
  execute: ({ duration }, ctx) => delay(duration, ctx.signal),
};

/** The longest single `setTimeout` (about 24.8 days); longer sleeps are chained. */
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Resolves after `ms`, or rejects with the abort's {@link StepFailure} when `signal` aborts first. */
export function delay(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    if (signal.aborted) {
      reject(abortFailure(signal));
      return;
    }
    let timer: NodeJS.Timeout | undefined;
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortFailure(signal));
    };
    const deadline = Date.now() + ms;
    const arm = () => {
      const left = deadline - Date.now();
      if (left <= 0) {
        signal.removeEventListener('abort', onAbort);
        resolve();
        return;
      }
      timer = setTimeout(arm, Math.min(left, MAX_TIMER_MS));
    };
    signal.addEventListener('abort', onAbort, { once: true });
    arm();
  });
}
