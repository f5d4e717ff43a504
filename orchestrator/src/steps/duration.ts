/**
 * Durations as operators write them: a number of seconds, or a string such as `"500ms"`, `"30s"`,
 * `"5m"`, `"1h"`.
 *
 * @module
 */
import * as v from 'valibot';

const DURATION_PATTERN = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h)$/;
const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 } as const;

/** Parses a duration into milliseconds, or `undefined` when it is not one. */
export function parseDuration(value: number | string): number | undefined {
  if (typeof value === 'number')
    return Number.isFinite(value) && value >= 0 ? value * 1000 : undefined;
  const m = DURATION_PATTERN.exec(value.trim());
  if (!m) return undefined;
  return Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
}

/** A duration param, output in milliseconds. */
export const DurationSchema = v.pipe(
  v.union(
    [v.pipe(v.number(), v.minValue(0)), v.string()],
    'expected seconds (a number) or a duration such as "500ms", "30s", "5m"',
  ),
  v.rawTransform(({ dataset, addIssue, NEVER }) => {
    const ms = parseDuration(dataset.value);
    if (ms === undefined) {
      addIssue({
        message: `"${String(dataset.value)}" is not a duration; write seconds (30) or "500ms", "30s", "5m", "1h"`,
      });
      return NEVER;
    }
    return ms;
  }),
);
