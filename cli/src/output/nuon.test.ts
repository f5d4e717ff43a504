import { describe, expect, test } from 'vitest';
import { nuonKey, nuonNumber, nuonString, toNuon } from './nuon.ts';

describe('toNuon', () => {
  describe('records', () => {
    test('writes bare keys bare and quotes the others', () => {
      expect(toNuon({ a: 1, 'b c': 'x', 'run-id': 'r1', _x: true })).toBe(
        '{a: 1, "b c": "x", run-id: "r1", _x: true}',
      );
    });

    test('quotes keys Nushell would read as something else', () => {
      expect(toNuon({ true: 1, null: 2, '1a': 3, '': 4, 'a:b': 5 })).toBe(
        '{"true": 1, "null": 2, "1a": 3, "": 4, "a:b": 5}',
      );
    });

    test('leaves out undefined fields, as JSON does', () => {
      expect(toNuon({ a: undefined, b: null })).toBe('{b: null}');
    });

    test('writes empty records and lists', () => {
      expect(toNuon({ e: {}, l: [] })).toBe('{e: {}, l: []}');
    });
  });

  describe('lists and nesting', () => {
    test('writes lists of mixed values', () => {
      expect(toNuon([1, 'two', null, false, [3], { k: 'v' }])).toBe(
        '[1, "two", null, false, [3], {k: "v"}]',
      );
    });

    test('indents nested values when asked', () => {
      expect(toNuon({ run: { id: 'r1', tags: ['a', 'b'] }, n: 1 }, { indent: 2 })).toBe(
        [
          '{',
          '  run: {',
          '    id: "r1",',
          '    tags: [',
          '      "a",',
          '      "b"',
          '    ]',
          '  },',
          '  n: 1',
          '}',
        ].join('\n'),
      );
    });
  });

  describe('strings', () => {
    test('escapes quotes, backslashes and control characters', () => {
      expect(nuonString('say "hi"\\ now\n\ttab\r')).toBe('"say \\"hi\\"\\\\ now\\n\\ttab\\r"');
      expect(nuonString('bell\u0007 esc\u001b del\u007f')).toBe(
        '"bell\\u{7} esc\\u{1b} del\\u{7f}"',
      );
    });

    test('keeps interpolation characters and unicode as they are', () => {
      expect(nuonString('$x (y) {z} é ✓ 🚀')).toBe('"$x (y) {z} é ✓ 🚀"');
    });

    test('writes dates as ISO strings', () => {
      expect(toNuon(new Date('2026-01-02T03:04:05.000Z'))).toBe('"2026-01-02T03:04:05.000Z"');
    });
  });

  describe('numbers', () => {
    test('writes integers as ints and other numbers as floats', () => {
      expect([0, 42, -7, 1.5, -0.25].map(nuonNumber)).toEqual(['0', '42', '-7', '1.5', '-0.25']);
    });

    test('keeps a decimal point or an exponent on every float', () => {
      expect(nuonNumber(1e21)).toBe('1e21');
      expect(nuonNumber(1.5e-7)).toBe('1.5e-7');
      expect(nuonNumber(-0)).toBe('-0.0');
    });

    test('writes the special floats as Nushell spells them', () => {
      expect([NaN, Infinity, -Infinity].map(nuonNumber)).toEqual(['NaN', 'inf', '-inf']);
    });

    test('writes bigints within an i64 and refuses larger ones', () => {
      expect(toNuon({ n: 9007199254740993n })).toBe('{n: 9007199254740993}');
      expect(() => toNuon({ n: 2n ** 63n })).toThrow(/n: .* does not fit a Nushell int/);
    });
  });

  test('refuses values Nushell could not read back, naming where they are', () => {
    expect(() => toNuon({ a: [1, () => 1] })).toThrow('a[1]: cannot write a function as NUON');
    expect(() => toNuon([undefined])).toThrow('[0]: cannot write a undefined as NUON');
  });

  test('nuonKey quotes keys with spaces', () => {
    expect(nuonKey('b c')).toBe('"b c"');
    expect(nuonKey('bc')).toBe('bc');
  });
});
