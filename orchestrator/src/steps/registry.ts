/**
 * The step registry: handlers by type, the built-ins plus custom handlers that users load.
 *
 * Running steps lives in `run-step.ts` and loading user modules in `load-handlers.ts`; both are
 * re-exported here so the engine and agents import one module.
 *
 * @module
 */
import { BUILTIN_STEP_HANDLERS } from './builtins.ts';
import { StepRegistryError } from './errors.ts';
import { assertStepHandler } from './handler-shape.ts';
import type { StepHandler, StepRegistry } from './types.ts';

export type { StepRegistry } from './types.ts';
export { assertStepHandler, isValibotSchema } from './handler-shape.ts';
export { runStep, rollbackStep, checkStepParams } from './run-step.ts';
export type { RunStepConfig, CheckStepParamsConfig } from './run-step.ts';
export { loadHandlerModules, parseHandlerList } from './load-handlers.ts';

/** Options of {@link createStepRegistry}. */
export interface StepRegistryOptions {
  /**
   * Register the built-in handlers (`echo`, `script`, `sleep`, `file_write`, `http`).
   *
   * @default true
   */
  readonly builtins?: boolean;
}

/**
 * Creates a step registry.
 *
 * @example
 * ```ts
 * const registry = createStepRegistry();
 * registry.register(myHandler);
 * await runStep(registry, step, ctx);
 * ```
 */
export function createStepRegistry(options: StepRegistryOptions = {}): StepRegistry {
  const handlers = new Map<string, StepHandler<unknown>>();
  const registry: StepRegistry = {
    register(handler) {
      assertStepHandler(handler);
      const existing = handlers.get(handler.type);
      if (existing) {
        throw new StepRegistryError(
          handler.type,
          `a step handler of type "${handler.type}" is already registered; give yours another name`,
        );
      }
      handlers.set(handler.type, handler as StepHandler<unknown>);
    },
    get: (type) => handlers.get(type),
    types: () => [...handlers.keys()].sort(),
  };
  if (options.builtins ?? true)
    for (const handler of BUILTIN_STEP_HANDLERS) registry.register(handler);
  return registry;
}
