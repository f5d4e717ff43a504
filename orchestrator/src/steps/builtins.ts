/**
 * The built-in step handlers, one per step type a workflow can name besides `custom`.
 *
 * @module
 */
import { echoStep } from './echo.ts';
import { fileWriteStep } from './file-write.ts';
import { httpStep } from './http.ts';
import { scriptStep } from './script.ts';
import { sleepStep } from './sleep.ts';
import type { StepHandler } from './types.ts';

/** `echo`, `script`, `sleep`, `file_write` and `http`. */
export const BUILTIN_STEP_HANDLERS: readonly StepHandler<unknown>[] = [
  echoStep,
  scriptStep,
  sleepStep,
  fileWriteStep,
  httpStep,
];
