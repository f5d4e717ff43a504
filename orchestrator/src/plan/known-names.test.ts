import { describe, expect, test } from 'vitest';
import { KnownNames } from './known-names.ts';

describe('KnownNames', () => {
  test('reads the names once, on first need, and lists them as problems do', () => {
    let reads = 0;
    const names = new KnownNames(() => {
      reads++;
      return Array.from({ length: 20 }, (_, i) => `op-${i}`);
    });
    expect(reads).toBe(0);
    expect(names.choices()).toBe(
      'op-0, op-1, op-2, op-3, op-4, op-5, op-6, op-7, op-8, op-9, op-10, op-11 or 8 more',
    );
    expect(names.suggest('op-1x')).toBe('did you mean "op-1"?');
    expect(names.size).toBe(20);
    expect(reads).toBe(1);
  });

  test('suggests until its budget of comparisons is spent; a name asked again costs nothing', () => {
    // 10 names, 25 comparisons: two suggestions.
    const names = new KnownNames(() => Array.from({ length: 10 }, (_, i) => `server-${i}`), 25);
    expect(names.suggest('servr-1')).toBe('did you mean "server-1"?');
    expect(names.suggest('servr-1')).toBe('did you mean "server-1"?');
    expect(names.suggest('srver-2')).toBe('did you mean "server-2"?');
    expect(names.suggest('server-3x')).toBeUndefined();
    expect(names.suggest('servr-1')).toBe('did you mean "server-1"?');
  });

  test('suggests nothing for a name close to none', () => {
    const names = new KnownNames(() => ['alpha', 'beta']);
    expect(names.suggest('zzzzzz')).toBeUndefined();
    expect(new KnownNames(() => []).suggest('x')).toBeUndefined();
  });
});
