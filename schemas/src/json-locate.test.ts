import { describe, expect, test } from 'vitest';
import { jsonLocator } from './json-locate.ts';
import { expectSameAnswers, referenceLocator, SAMPLE } from './locate.fixtures.ts';

const documents: Record<string, string> = {
  compact: JSON.stringify(SAMPLE),
  indented: JSON.stringify(SAMPLE, null, 2),
  'tabs and CRLF': JSON.stringify(SAMPLE, null, '\t').replace(/\n/g, '\r\n'),
  'spaces everywhere': ` \n ${JSON.stringify(SAMPLE, null, 1).replace(/([,:[\]{}])/g, ' $1 ')} \n`,
  'escapes in keys and strings':
    '{"a\\u0062": {"c\\"d": ["\\\\", "\\"", "\\u00fc\\n"]}, "e": "x\\\\"}',
  'a repeated key': '{"id": 1, "other": {"id": 2}, "id": 3}',
  'a list at the top': '[1, [2, 3], {"x": [4]}]',
  'a scalar at the top': '  "just text"  ',
};

describe('jsonLocator', () => {
  for (const [name, source] of Object.entries(documents)) {
    test(`answers as yamlLocator does: ${name}`, () => {
      const reference = referenceLocator(source);
      const locate = jsonLocator(source);
      expectSameAnswers(locate, reference, JSON.parse(source));
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
