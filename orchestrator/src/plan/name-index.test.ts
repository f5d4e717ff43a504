import { describe, expect, test } from 'vitest';
import { hashOf, NameIndex } from './name-index.ts';

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

  test('addAll numbers names by position and getAll answers as get does, name by name', () => {
    const ids = Array.from({ length: 5000 }, (_, i) => ({ id: `op-${i % 4000}` }));
    const index = new NameIndex(ids.length);
    const earlier = index.addAll(ids, (o) => o.id);
    // The last 1000 repeat the first 1000: each gets the number of its first use.
    expect(Array.from(earlier.subarray(0, 4000)).every((n) => n === -1)).toBe(true);
    expect(Array.from(earlier.subarray(4000))).toEqual(Array.from({ length: 1000 }, (_, i) => i));
    expect(index.size).toBe(4000);

    const lists = [['op-3', 'op-3999', 'nope'], [], ['op-0', '', 'op-4000', 'op-12']];
    const found = index.getAll(lists, (list) => list);
    expect(Array.from(found)).toEqual(lists.flat().map((name) => index.get(name) ?? -1));
    expect(Array.from(found)).toEqual([3, 3999, -1, 0, -1, -1, 12]);
  });

  test('getAll also answers once the index has moved to a Map', () => {
    const index = new NameIndex(0);
    for (let i = 0; i < 100; i++) index.add(`n${i}`, i);
    expect(Array.from(index.getAll([['n5', 'x'], ['n99']], (list) => list))).toEqual([5, -1, 99]);
  });

  test('names with the same hash are told apart, added or looked up, one by one or all at once', () => {
    // Found once by a birthday search over `n0`, `n1`, …
    const [seed, a, b] = [7, 'n116048', 'n1308084'];
    expect(hashOf(a, seed)).toBe(hashOf(b, seed));
    const one = new NameIndex(4, seed);
    one.add(a, 1);
    expect(one.get(b)).toBeUndefined();
    expect(Array.from(one.getAll([[b, a]], (list) => list))).toEqual([-1, 1]);
    expect(one.add(b, 2)).toBeUndefined();
    expect(Array.from(one.getAll([[b, a]], (list) => list))).toEqual([2, 1]);
    expect([one.get(a), one.get(b)]).toEqual([1, 2]);
  });
});
