/**
 * What makes a value a step handler, checked where handlers come in from outside the type system
 * (user modules) with messages that say what to fix.
 *
 * @module
 */
import { StepRegistryError } from './errors.ts';
import type { StepHandler } from './types.ts';

/** The type `custom` steps use; no handler may take it. */
const RESERVED_TYPES = new Set(['custom']);

/**
 * Throws a {@link StepRegistryError} naming what is wrong unless `value` looks like a
 * {@link StepHandler}: a `type`, a valibot `params` schema, an `execute` function and, if any, a
 * `rollback` function.
 *
 * @param where - How to name the value in messages, e.g. `./handlers.js default export [1]`.
 */
export function assertStepHandler(
  value: unknown,
  where = 'the step handler',
): asserts value is StepHandler<unknown> {
  const fail = (type: string | undefined, what: string): never => {
    throw new StepRegistryError(type, `${where}${type ? ` ("${type}")` : ''} ${what}`);
  };
  if (typeof value !== 'object' || value === null) {
    fail(undefined, `must be an object { type, params, execute }, found ${describe(value)}`);
  }
  const h = value as Record<string, unknown>;
  const type = typeof h['type'] === 'string' ? h['type'] : undefined;
  if (type === undefined || type.trim() === '') {
    fail(undefined, `needs a "type": the name steps use (found ${describe(h['type'])})`);
  } else if (RESERVED_TYPES.has(type)) {
    fail(type, `cannot use the reserved type "${type}"; name it after what it does`);
  }
  if (!isValibotSchema(h['params'])) {
    fail(
      type,
      `needs "params": a valibot schema such as v.object({ … }) (found ${describe(h['params'])})`,
    );
  }
  if (typeof h['execute'] !== 'function') {
    fail(
      type,
      `needs "execute": an async function (params, ctx) (found ${describe(h['execute'])})`,
    );
  }
  if (h['rollback'] !== undefined && typeof h['rollback'] !== 'function') {
    fail(type, `has a "rollback" that is not a function (found ${describe(h['rollback'])})`);
  }
}

/** Whether a value is a valibot schema (any copy of valibot: schemas carry their own `~run`). */
export function isValibotSchema(value: unknown): boolean {
  return (
    typeof value === 'object' &&
    value !== null &&
    (value as { kind?: unknown }).kind === 'schema' &&
    typeof (value as { '~run'?: unknown })['~run'] === 'function'
  );
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'function') return 'a function';
  if (typeof value === 'string') return JSON.stringify(value);
  return typeof value === 'object' ? 'an object' : `${typeof value} ${String(value)}`;
}
