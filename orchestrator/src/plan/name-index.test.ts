import { describe, expect, test } from 'vitest';
import { NameIndex } from './name-index.ts';

describe('NameIndex', () => {
  test('keeps the first number of each name and lists names in the order they came', () => {
    const index = new NameIndex(4);
    expect(index.add('b', 0)).toBeUndefined();
    expect(index.add('a', 1)).toBeUndefined();
    expect(index.add('b', 2)).toBe(0);
    expect(index.get('a')).toBe(1);
    expect(index.get('b')).toBe(0);
    expect(index.get('c')).toBeUndefined();
    expect(index.get('')).toBeUndefined();
    expect(index.size).toBe(2);
    expect([...index.keys()]).toEqual(['b', 'a']);
  });

  test('finds every one of many names, and none of the names it was not given', () => {
    const index = new NameIndex(20_000);
    for (let i = 0; i < 20_000; i++) expect(index.add(`op-${i}`, i)).toBeUndefined();
    for (let i = 0; i < 20_000; i++) {
      expect(index.get(`op-${i}`)).toBe(i);
      expect(index.get(`op-${i}x`)).toBeUndefined();
    }
    expect(index.add('op-123', 7)).toBe(123);
  });

  test('goes on working through a Map past the size it was made for', () => {
    const index = new NameIndex(0);
    for (let i = 0; i < 1000; i++) expect(index.add(`n${i}`, i * 2)).toBeUndefined();
    expect(index.add('n10', 1)).toBe(20);
    for (let i = 0; i < 1000; i++) expect(index.get(`n${i}`)).toBe(i * 2);
    expect(index.get('n1000')).toBeUndefined();
    expect([...index.keys()].slice(0, 3)).toEqual(['n0', 'n1', 'n2']);
    expect(index.size).toBe(1000);
  });
});
