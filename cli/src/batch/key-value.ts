/**
 * `key=value` arguments: `--set`, `--label`.
 *
 * @module
 */
import { UsageError } from '../exit.ts';

/**
 * Splits `key=value` at the first `=`: the value may hold more.
 *
 * @param text The argument.
 * @param flag The flag, for the message.
 *
 * @returns The key and the value (possibly empty).
 *
 * @throws {UsageError} Without `=`, or with an empty key.
 */
export function parseKeyValue(text: string, flag: string): [key: string, value: string] {
  const at = text.indexOf('=');
  if (at <= 0) {
    throw new UsageError(`${flag} takes key=value, not "${text}"`);
  }
  return [text.slice(0, at).trim(), text.slice(at + 1)];
}

/**
 * A commander option parser that collects repeated `key=value` flags.
 *
 * @param flag The flag, for messages.
 *
 * @returns The parser: each call checks one value and appends it.
 *
 * @example
 * ```ts
 * cmd.option('--label <k=v>', 'a label', collectKeyValues('--label'));
 * ```
 */
export function collectKeyValues(
  flag: string,
): (value: string, previous: string[] | undefined) => string[] {
  return (value, previous) => {
    parseKeyValue(value, flag);
    return [...(previous ?? []), value];
  };
}

/**
 * Turns `key=value` arguments into a record; a repeated key keeps its last value.
 *
 * @param pairs The arguments.
 * @param flag The flag, for messages.
 *
 * @returns The record, or `undefined` when there are none.
 */
export function keyValueRecord(
  pairs: readonly string[],
  flag: string,
): Record<string, string> | undefined {
  if (pairs.length === 0) return undefined;
  const record: Record<string, string> = {};
  for (const pair of pairs) {
    const [key, value] = parseKeyValue(pair, flag);
    record[key] = value;
  }
  return record;
}

/**
 * Parses a whole number flag.
 *
 * @param text The value.
 * @param flag The flag, for the message.
 * @param min The least value allowed.
 *
 * @returns The number.
 *
 * @throws {UsageError} When it is not a whole number of at least `min`.
 */
export function parseWholeNumber(text: string, flag: string, min = 0): number {
  const n = Number(text);
  if (!/^\d+$/.test(text.trim()) || !Number.isSafeInteger(n) || n < min) {
    throw new UsageError(`${flag} takes a whole number of at least ${min}, not "${text}"`);
  }
  return n;
}
