/**
 * Loading custom step handlers from user modules (`--handlers ./my-handlers.js`, or the comma list
 * in `MUSTER_HANDLERS`).
 *
 * A module's default export is one handler or an array of them. Every module is imported and every
 * handler checked before any is registered, so a bad module leaves the registry as it was.
 *
 * @module
 */
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as v from 'valibot';
import { coerceError } from '../errors.ts';
import { HandlerModuleError, StepRegistryError } from './errors.ts';
import { assertStepHandler } from './handler-shape.ts';
import type { StepHandler, StepRegistry } from './types.ts';

/** Per-call settings of {@link loadHandlerModules}. */
export interface LoadHandlerModulesConfig {
  /**
   * Directory relative module paths resolve against.
   *
   * @default process.cwd()
   */
  readonly cwd?: string;
}

/** What a handler without `params` accepts: any params object, passed through as is. */
const AnyParamsSchema = v.record(v.string(), v.unknown());

/**
 * Imports handler modules and registers the handlers they export by default.
 *
 * A handler may leave out `params` (when its module cannot import valibot); it then receives the
 * step's params unchecked.
 *
 * @example
 * ```ts
 * await loadHandlerModules(registry, ['./my-handlers.js', ...parseHandlerList(env.MUSTER_HANDLERS)]);
 * ```
 * @throws {HandlerModuleError} Naming the module and what is wrong with it.
 */
export async function loadHandlerModules(
  registry: StepRegistry,
  paths: readonly string[],
  config: LoadHandlerModulesConfig = {},
): Promise<void> {
  const cwd = config.cwd ?? process.cwd();
  const pending = new Map<string, { handler: StepHandler<unknown>; from: string }>();
  const seen = new Set<string>();
  for (const path of paths) {
    const file = resolve(cwd, path);
    if (seen.has(file)) continue;
    seen.add(file);
    for (const handler of await importHandlers(path, file)) {
      const taken = pending.get(handler.type);
      if (taken || registry.get(handler.type)) {
        throw new HandlerModuleError(
          path,
          `exports a handler of type "${handler.type}", which ${taken ? `${taken.from} already exports` : 'is already registered'}; rename one`,
        );
      }
      pending.set(handler.type, { handler, from: path });
    }
  }
  for (const { handler } of pending.values()) registry.register(handler);
}

/**
 * Splits a comma-separated list of module paths (the `MUSTER_HANDLERS` format), dropping blanks.
 */
export function parseHandlerList(list: string | undefined): string[] {
  return (list ?? '')
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p !== '');
}

async function importHandlers(path: string, file: string): Promise<StepHandler<unknown>[]> {
  const info = await stat(file).catch(() => undefined);
  if (!info) throw new HandlerModuleError(path, `not found (looked for ${file})`);
  if (!info.isFile()) throw new HandlerModuleError(path, `${file} is not a file`);

  let mod: Record<string, unknown>;
  try {
    mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
  } catch (e: unknown) {
    const error = coerceError(e);
    const hint =
      (e as { code?: unknown }).code === 'ERR_UNKNOWN_FILE_EXTENSION'
        ? '; compile it to JavaScript (.js or .mjs) first'
        : '';
    throw new HandlerModuleError(path, `cannot be imported: ${error.message}${hint}`, { cause: e });
  }

  const exported = mod['default'];
  if (exported === undefined) {
    const named = Object.keys(mod).filter((k) => k !== 'default');
    throw new HandlerModuleError(
      path,
      `has no default export; end it with \`export default [myHandler]\`${named.length > 0 ? ` (it exports ${named.join(', ')})` : ''}`,
    );
  }
  const list: unknown[] = Array.isArray(exported) ? exported : [exported];
  if (list.length === 0) throw new HandlerModuleError(path, 'exports an empty array of handlers');
  return list.map((value, i) => {
    const handler = withDefaultParams(value);
    try {
      assertStepHandler(handler, `the default export${Array.isArray(exported) ? `[${i}]` : ''}`);
    } catch (e: unknown) {
      if (e instanceof StepRegistryError) {
        throw new HandlerModuleError(path, e.message.replace(/^\[\w+\] /, ''), { cause: e });
      }
      throw e;
    }
    return handler;
  });
}

/** The handler, with a pass-through `params` schema when it has none. */
function withDefaultParams(value: unknown): unknown {
  if (typeof value !== 'object' || value === null || 'params' in value) return value;
  // Object.create keeps methods a class-based handler has on its prototype.
  return Object.create(value, { params: { value: AnyParamsSchema, enumerable: true } }) as unknown;
}
