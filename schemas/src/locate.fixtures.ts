import { expect } from 'vitest';
import { LineCounter, parseDocument } from 'yaml';
import type { Locate } from './issues.ts';
import { yamlLocator } from './locate.ts';
import { formatPath, type PathSegment } from './path.ts';

/** Every path in a value, outermost first, and beside each some that are not in it. */
export function pathsOf(value: unknown, at: PathSegment[] = []): string[] {
  const here = formatPath(at);
  const misses = [`${here}[999]`, `${here}${at.length ? '.' : ''}missing`, `${here}["a.b"]`];
  if (Array.isArray(value)) {
    return [here, ...misses, ...value.flatMap((v, i) => pathsOf(v, [...at, i]))];
  }
  if (value !== null && typeof value === 'object') {
    return [here, ...misses, ...Object.entries(value).flatMap(([k, v]) => pathsOf(v, [...at, k]))];
  }
  return [here, ...misses];
}

/** What the fast locators answer against: `yaml`'s node ranges over the same text. */
export function referenceLocator(source: string): Locate {
  const lineCounter = new LineCounter();
  return yamlLocator(parseDocument(source, { lineCounter, uniqueKeys: false }), lineCounter);
}

/** A workflow-like value with odd keys, unicode, every JSON type and empty containers. */
export const SAMPLE = {
  name: 'wf',
  labels: { 'app.kubernetes.io/name': 'x', ü: 'ñ', 'quote"d': 'back\\slash', 'a\nb': '' },
  operations: [
    {
      id: 'one',
      type: 'update',
      items: ['a', 'b'],
      depends_on: [],
      steps: [{ name: 's', params: { args: [['x', 1, -2.5e3, true, false, null]], env: {} } }],
    },
    { id: 'two', depends_on: ['one'], timeout: 30, nested: [[[]], [{}], [{ '': 'empty key' }]] },
  ],
};

/**
 * Asks both locators for every path of `value` (and some that are not in it) and expects the same
 * answers, some of them found.
 */
export function expectSameAnswers(locate: Locate, reference: Locate, value: unknown): void {
  const paths = pathsOf(value);
  for (const path of paths) expect(locate(path), path).toEqual(reference(path));
  // Some paths are found: the comparison is not between two locators that find nothing.
  expect(paths.filter((p) => locate(p) !== undefined).length).toBeGreaterThan(0);
  expect(locate('operations[')).toBeUndefined();
}
