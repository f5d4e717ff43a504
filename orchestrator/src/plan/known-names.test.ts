import { describe, expect, test } from 'vitest';
import { seededRandom } from '../../../bench/plan.ts';
import { didYouMean } from '../../../schemas/src/problems.ts';
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

describe('KnownNames among many names', () => {
  const random = seededRandom(7);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  const ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789-_';
  const word = (length: number) => Array.from({ length }, () => pick([...ALPHABET])).join('');
  /** `name` with one random insertion, deletion or substitution. */
  const edit = (name: string): string => {
    const at = Math.floor(random() * (name.length + 1));
    const kind = pick(['insert', 'delete', 'substitute'] as const);
    if (kind === 'insert') return name.slice(0, at) + pick([...ALPHABET]) + name.slice(at);
    if (at === name.length) return name;
    return name.slice(0, at) + (kind === 'delete' ? '' : pick([...ALPHABET])) + name.slice(at + 1);
  };

  test('suggest gives the answer of comparing with every name, ties to the first listed', () => {
    for (let round = 0; round < 20; round++) {
      // Short names over a small alphabet, some repeated: many names one edit from each other.
      const names = Array.from({ length: 300 + Math.floor(random() * 700) }, () =>
        word(1 + Math.floor(random() * 6)),
      );
      names.push(...names.slice(0, 20));
      const known = new KnownNames(() => names, Infinity);
      for (let q = 0; q < 60; q++) {
        const base = pick(names);
        const name = pick([edit(base), edit(edit(base)), word(1 + Math.floor(random() * 8)), '']);
        expect(known.suggest(name), `${name} among ${names.length} names`).toBe(
          didYouMean(name, names),
        );
      }
    }
  });

  test('a name one edit from one of 100k is suggested without spending the budget', () => {
    const ids = Array.from({ length: 100_000 }, (_, i) => `op-${i}`);
    const known = new KnownNames(() => ids, 0);
    expect(known.suggest('opp-45678')).toBe('did you mean "op-45678"?');
    expect(known.suggest('op-4567x8')).toBe('did you mean "op-45678"?');
    expect(known.suggest('op_99999')).toBe('did you mean "op-99999"?');
    // Two edits away: that takes comparisons, and there is no budget left for them.
    expect(known.suggest('opp-4567x')).toBeUndefined();
    expect(new KnownNames(() => ids).suggest('opp-4567x')).toBe(didYouMean('opp-4567x', ids));
  });
});
