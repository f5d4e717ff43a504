import { describe, expect, test } from 'vitest';
import { findJsonSyntaxError } from './json-syntax.ts';

describe('findJsonSyntaxError', () => {
  test('accepts what JSON.parse accepts', () => {
    for (const src of [
      '{}',
      '[]',
      ' {"a": [1, -2.5e3, true, false, null, "x\\n\\u00e9"]} ',
      '"s"',
      '0',
    ]) {
      expect(JSON.parse(src)).toBeDefined();
      expect(findJsonSyntaxError(src)).toBeUndefined();
    }
  });

  test.each([
    ['{"a": 1,}', 7, 'trailing comma before "}"'],
    ['[1 2]', 3, 'unexpected "2", expected "," or "]"'],
    ['{a: 1}', 1, 'unexpected "a", expected a double-quoted property name'],
    ['{"a" 1}', 5, 'unexpected "1", expected ":" after a property name'],
    ['{"a": "b', 8, 'unterminated string'],
    ['{"a": [', 7, 'unexpected end of input, expected a value'],
    ['{} x', 3, 'unexpected "x", expected the end of the document'],
    ['["\\x"]', 2, 'invalid escape "\\x"'],
  ])('%s', (src, offset, message) => {
    expect(() => JSON.parse(src)).toThrow();
    expect(findJsonSyntaxError(src)).toEqual({ offset, message });
  });
});
