import { describe, expect, test } from 'vitest';
import { lineSplitter, MAX_LINE } from './line-splitter.ts';

function split(chunks: readonly string[]): string[] {
  const lines: string[] = [];
  const splitter = lineSplitter((line) => lines.push(line));
  for (const chunk of chunks) splitter.push(chunk);
  splitter.flush();
  return lines;
}

describe('lineSplitter', () => {
  test('lines across chunk boundaries, with \\n or \\r\\n, empty lines kept', () => {
    expect(split(['one\r\ntw', 'o\n\nthr', 'ee'])).toEqual(['one', 'two', '', 'three']);
    expect(split(['a\r', '\nb\n'])).toEqual(['a', 'b']);
  });

  test('nothing written, nothing emitted; the unterminated rest comes on flush', () => {
    expect(split([])).toEqual([]);
    const lines: string[] = [];
    const splitter = lineSplitter((line) => lines.push(line));
    splitter.push('no newline yet');
    expect(lines).toEqual([]);
    splitter.flush();
    splitter.flush();
    expect(lines).toEqual(['no newline yet']);
  });

  test('a line longer than MAX_LINE comes in pieces, also before its end is seen', () => {
    const long = 'x'.repeat(2 * MAX_LINE + 5);
    expect(split([`${long}\nnext`]).map((l) => l.length)).toEqual([MAX_LINE, MAX_LINE, 5, 4]);
    const lines: string[] = [];
    const splitter = lineSplitter((line) => lines.push(line));
    splitter.push('y'.repeat(MAX_LINE + 1));
    // Held back no more than one line's worth: the first piece is out before any newline.
    expect(lines).toEqual(['y'.repeat(MAX_LINE)]);
    splitter.flush();
    expect(lines).toEqual(['y'.repeat(MAX_LINE), 'y']);
  });
});
