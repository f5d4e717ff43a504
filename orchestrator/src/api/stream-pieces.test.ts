import { describe, expect, test } from 'vitest';
import { streamPieces } from './stream-pieces.ts';

async function readAll(
  stream: ReadableStream<Uint8Array>,
): Promise<{ text: string; reads: number }> {
  const decoder = new TextDecoder();
  let text = '';
  let reads = 0;
  for await (const chunk of stream) {
    text += decoder.decode(chunk, { stream: true });
    reads++;
  }
  return { text: text + decoder.decode(), reads };
}

describe('streamPieces', () => {
  test('gives the pieces in order as UTF-8, about a megabyte per read', async () => {
    const pieces = Array.from({ length: 40_000 }, (_, i) => `«${i}» ü\n`);
    const { text, reads } = await readAll(streamPieces(pieces));
    expect(text).toBe(pieces.join(''));
    expect(reads).toBe(1);
    const big = Array.from({ length: 300 }, () => 'x'.repeat(10_000));
    expect((await readAll(streamPieces(big))).reads).toBe(3);
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
    expect(await readAll(streamPieces([]))).toEqual({ text: '', reads: 0 });
  });
});
