import { describe, expect, test } from 'vitest';
import { createBatcher } from './batcher.ts';

describe('createBatcher', () => {
  test('calls of one turn, and those made while a batch runs, go together', async () => {
    const batches: number[][] = [];
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const double = createBatcher(async (items: number[]) => {
      batches.push(items);
      if (batches.length === 1) await gate;
      return items.map((i) => i * 2);
    }, String);
    const first = [double(1), double(2), double(3)];
    await new Promise((r) => setImmediate(r));
    const second = [double(4), double(5)];
    release();
    expect(await Promise.all([...first, ...second])).toEqual([2, 4, 6, 8, 10]);
    expect(batches).toEqual([
      [1, 2, 3],
      [4, 5],
    ]);
  });

  test('items with the same key never share a batch', async () => {
    const batches: string[][] = [];
    const echo = createBatcher(
      async (items: string[]) => {
        batches.push(items);
        return items;
      },
      (s) => s.split(':')[0]!,
    );
    await Promise.all([echo('a:1'), echo('b:1'), echo('a:2')]);
    expect(batches).toEqual([['a:1', 'b:1'], ['a:2']]);
  });

  test('a failed batch rejects its own calls only', async () => {
    const flaky = createBatcher(async (items: number[]) => {
      if (items.includes(0)) throw new Error('boom');
      return items;
    }, String);
    const bad = flaky(0);
    await expect(bad).rejects.toThrow('boom');
    expect(await flaky(1)).toBe(1);
  });
});
