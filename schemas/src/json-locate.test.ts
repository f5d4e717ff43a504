import { describe, expect, test } from 'vitest';
import { LineCounter, parseDocument } from 'yaml';
import { jsonLocator } from './json-locate.ts';
import { yamlLocator } from './locate.ts';
import { formatPath, type PathSegment } from './path.ts';

/** Every path in a value, outermost first, and some that are not in it. */
function pathsOf(value: unknown, at: PathSegment[] = []): string[] {
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

const workflow = {
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

const documents: Record<string, string> = {
  compact: JSON.stringify(workflow),
  indented: JSON.stringify(workflow, null, 2),
  'tabs and CRLF': JSON.stringify(workflow, null, '\t').replace(/\n/g, '\r\n'),
  'spaces everywhere': ` \n ${JSON.stringify(workflow, null, 1).replace(/([,:[\]{}])/g, ' $1 ')} \n`,
  'escapes in keys and strings':
    '{"a\\u0062": {"c\\"d": ["\\\\", "\\"", "\\u00fc\\n"]}, "e": "x\\\\"}',
  'a repeated key': '{"id": 1, "other": {"id": 2}, "id": 3}',
  'a list at the top': '[1, [2, 3], {"x": [4]}]',
  'a scalar at the top': '  "just text"  ',
};

describe('jsonLocator', () => {
  for (const [name, source] of Object.entries(documents)) {
    test(`answers as yamlLocator does: ${name}`, () => {
      const lineCounter = new LineCounter();
      const reference = yamlLocator(
        parseDocument(source, { lineCounter, uniqueKeys: false }),
        lineCounter,
      );
      const locate = jsonLocator(source);
      const paths = pathsOf(JSON.parse(source));
      expect(paths.length).toBeGreaterThan(3);
      for (const path of paths) expect(locate(path), path).toEqual(reference(path));
      // Some paths are found: the comparison is not between two locators that find nothing.
      expect(paths.filter((p) => locate(p) !== undefined).length).toBeGreaterThan(0);
      expect(locate('operations[')).toBeUndefined();
    });
  }

  test('points an entry at its key and an element at the element, line and column from 1', () => {
    const locate = jsonLocator('{\n  "a": [\n    10,\n    {"b": null}\n  ]\n}');
    expect(locate('')).toEqual({ line: 1, column: 1 });
    expect(locate('a')).toEqual({ line: 2, column: 3 });
    expect(locate('a[0]')).toEqual({ line: 3, column: 5 });
    expect(locate('a[1].b')).toEqual({ line: 4, column: 6 });
    expect(locate('a[1].b.c')).toBeUndefined();
    expect(locate('a[2]')).toBeUndefined();
  });
});
