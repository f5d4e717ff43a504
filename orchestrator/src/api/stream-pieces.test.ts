import { describe, expect, test } from 'vitest';
import { readBody } from './body.fixtures.ts';
import { streamPieces } from './stream-pieces.ts';

describe('streamPieces', () => {
  test('gives the pieces in order as UTF-8, about a megabyte per read', async () => {
    const pieces = Array.from({ length: 40_000 }, (_, i) => `«${i}» ü\n`);
    const { text, reads } = await readBody(streamPieces(pieces));
    expect(text).toBe(pieces.join(''));
    expect(reads).toBe(1);
    const big = Array.from({ length: 300 }, () => 'x'.repeat(10_000));
    expect((await readBody(streamPieces(big))).reads).toBe(3);
  });

  test('makes the pieces only as they are read, and stops when the reader does', async () => {
    let made = 0;
    let stopped = false;
    function* pieces() {
      try {
        for (let i = 0; i < 1000; i++) {
          made++;
          yield 'y'.repeat(100_000);
        }
      } finally {
        stopped = true;
      }
    }
    const reader = streamPieces(pieces()).getReader();
    await reader.read();
    expect(made).toBeLessThan(30);
    await reader.cancel();
    expect(stopped).toBe(true);
    expect(made).toBeLessThan(40);
  });

  test('an empty text is an empty body', async () => {
    expect(await readBody(streamPieces([]))).toEqual({ text: '', reads: 0 });
  });
});
