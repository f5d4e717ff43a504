import { describe, expect, test } from 'vitest';
import { resolveConnection } from './connection.ts';
import { collectKeyValues, keyValueRecord, parseKeyValue, parseWholeNumber } from './key-value.ts';

describe('parseKeyValue', () => {
  test('splits at the first =', () => {
    expect(parseKeyValue('url=http://x/?a=b', '--set')).toEqual(['url', 'http://x/?a=b']);
    expect(parseKeyValue('empty=', '--set')).toEqual(['empty', '']);
  });

  test('refuses a pair without = or without a key', () => {
    expect(() => parseKeyValue('novalue', '--label')).toThrow(
      '[CLI2001] --label takes key=value, not "novalue"',
    );
    expect(() => parseKeyValue('=v', '--set')).toThrow('--set takes key=value');
  });

  test('collects repeated flags and keeps the last value of a key', () => {
    const collect = collectKeyValues('--set');
    const values = collect('b=2', collect('a=1', undefined));
    expect(values).toEqual(['a=1', 'b=2']);
    expect(keyValueRecord([...values, 'a=3'], '--set')).toEqual({ a: '3', b: '2' });
    expect(keyValueRecord([], '--set')).toBeUndefined();
    expect(() => collect('bad', [])).toThrow('--set takes key=value, not "bad"');
  });
});

describe('parseWholeNumber', () => {
  test('reads whole numbers and refuses the rest', () => {
    expect(parseWholeNumber('12', '--limit', 1)).toBe(12);
    for (const bad of ['0', '-1', '1.5', 'ten', '', '1e3']) {
      expect(() => parseWholeNumber(bad, '--limit', 1)).toThrow(
        `--limit takes a whole number of at least 1, not "${bad}"`,
      );
    }
  });
});

describe('resolveConnection', () => {
  test('defaults to the local orchestrator without a token', () => {
    expect(resolveConnection({}, {})).toEqual({
      server: 'http://127.0.0.1:7070',
      token: undefined,
    });
  });

  test('prefers flags to the environment', () => {
    const env = { MUSTER_SERVER: 'http://env:1', MUSTER_TOKEN: 'env-token' };
    expect(resolveConnection({}, env)).toEqual({ server: 'http://env:1', token: 'env-token' });
    expect(resolveConnection({ server: 'https://flag:2/', token: 'flag-token' }, env)).toEqual({
      server: 'https://flag:2',
      token: 'flag-token',
    });
  });

  test('adds http:// to a bare host and keeps a path prefix', () => {
    expect(resolveConnection({ server: 'localhost:7070' }, {}).server).toBe(
      'http://localhost:7070',
    );
    expect(resolveConnection({ server: 'https://proxy/muster/' }, {}).server).toBe(
      'https://proxy/muster',
    );
  });

  test('refuses what is not an http(s) URL, naming where it came from', () => {
    expect(() => resolveConnection({}, { MUSTER_SERVER: 'ftp://x' })).toThrow(
      'MUSTER_SERVER "ftp://x" must be an http:// or https:// URL',
    );
    expect(() => resolveConnection({ server: 'http://[bad' }, {})).toThrow(
      '--server "http://[bad" is not a URL',
    );
    expect(() => resolveConnection({ server: 'http://x/?a=1' }, {})).toThrow(
      'must not have a query',
    );
  });
});
