/**
 * Step handlers: what runs a task's steps, in the engine and on agents.
 *
 * @module
 */
export {
  assertStepHandler,
  checkStepParams,
  createStepRegistry,
  isValibotSchema,
  loadHandlerModules,
  parseHandlerList,
  rollbackStep,
  runStep,
} from './registry.ts';
export type {
  CheckStepParamsConfig,
  RunStepConfig,
  StepRegistry,
  StepRegistryOptions,
} from './registry.ts';
export type { LoadHandlerModulesConfig } from './load-handlers.ts';
export { abortFailure, StepFailure } from './types.ts';
export type {
  StepContext,
  StepFailureData,
  StepFailureOptions,
  StepHandler,
  StepLogStream,
  StepResult,
  StepServer,
} from './types.ts';
export { HandlerModuleError, StepRegistryError } from './errors.ts';
export { BUILTIN_STEP_HANDLERS } from './builtins.ts';
export { echoStep, EchoParamsSchema } from './echo.ts';
export { createScriptStep, parseOutputFile, scriptStep, ScriptParamsSchema } from './script.ts';
export type { ScriptParams, ScriptStepOptions } from './script.ts';
export { delay, sleepStep, SleepParamsSchema } from './sleep.ts';
export { fileWriteStep, FileModeSchema, FileWriteParamsSchema } from './file-write.ts';
export type { FileWriteParams, FileWriteRollbackData } from './file-write.ts';
export { httpStep, HttpParamsSchema, MAX_HTTP_BODY } from './http.ts';
export type { HttpParams } from './http.ts';
export { DurationSchema, parseDuration } from './duration.ts';
