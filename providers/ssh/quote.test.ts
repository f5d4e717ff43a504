import { execFileSync } from 'node:child_process';
import { describe, expect, test } from 'vitest';
import { shellCommand, shellQuote, UnquotableError } from './quote.ts';

/** What a real `sh -c` makes of a command line: its words, one per NUL-terminated chunk. */
function wordsOf(commandLine: string): string[] {
  const out = execFileSync('/bin/sh', ['-c', `${commandLine}`], { encoding: 'utf8' });
  return out.split('\0').slice(0, -1);
}

const NASTY = [
  '',
  'plain',
  'two words',
  "it's",
  "''",
  '"double" quotes',
  '$HOME and ${PATH} and $(id) and `id`',
  '*.txt ?',
  '~',
  '~root/x',
  'a\nnew line',
  'tab\there',
  'back\\slash\\',
  '; rm -rf / #',
  '&& || | > < 2>&1',
  '!history',
  'if',
  'A=b',
  '-n',
  'ünïcödé ✓',
];

describe('shellQuote', () => {
  test.each(NASTY)('a real sh reads %j back unchanged', (word) => {
    expect(wordsOf(`printf '%s\\0' ${shellQuote(word)}`)).toEqual([word]);
  });

  test('quotes even plain words, so a first word is never a keyword or an assignment', () => {
    expect(shellQuote('if')).toBe("'if'");
    expect(wordsOf(`${shellQuote('printf')} '%s\\0' x`)).toEqual(['x']);
  });

  test('refuses a NUL byte, which no argument can hold', () => {
    expect(() => shellQuote('a\0b')).toThrow(UnquotableError);
  });
});

describe('shellCommand', () => {
  test('a real sh splits the line into the same argv', () => {
    const argv = ['printf', '%s\\0', ...NASTY];
    expect(wordsOf(shellCommand(argv))).toEqual(NASTY);
  });
});
