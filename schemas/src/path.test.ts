import { describe, expect, test } from 'vitest';
import { formatPath, parsePath } from './path.ts';

describe('formatPath', () => {
  test('dots keys, brackets indices, quotes odd keys', () => {
    expect(formatPath(['operations', 2, 'depends_on', 0])).toBe('operations[2].depends_on[0]');
    expect(formatPath(['labels', 'app.kubernetes.io/name'])).toBe(
      'labels["app.kubernetes.io/name"]',
    );
    expect(formatPath([])).toBe('');
    expect(formatPath([0, 'a'])).toBe('[0].a');
  });
});

describe('parsePath', () => {
  test('inverts formatPath', () => {
    for (const segments of [
      ['operations', 2, 'depends_on', 0],
      ['labels', 'a.b', 'c'],
      ['x'],
      [],
    ]) {
      expect(parsePath(formatPath(segments))).toEqual(segments);
    }
  });

  test('rejects malformed paths', () => {
    expect(parsePath('.a')).toBeUndefined();
    expect(parsePath('a[x]')).toBeUndefined();
    expect(parsePath('a[1')).toBeUndefined();
  });
});
