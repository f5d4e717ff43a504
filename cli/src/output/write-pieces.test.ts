import { Writable } from 'node:stream';
import { describe, expect, test } from 'vitest';
import { writePieces } from './write-pieces.ts';

/** A slow reader that keeps what it is given and notes how much waited in its buffer. */
function slowReader() {
  const chunks: string[] = [];
  let mostBuffered = 0;
  const stream: Writable = new Writable({
    highWaterMark: 1 << 16,
    write(chunk: Buffer, _encoding, done) {
      mostBuffered = Math.max(mostBuffered, stream.writableLength);
      chunks.push(chunk.toString());
      setTimeout(done, 1);
    },
  });
  return { stream, text: () => chunks.join(''), mostBuffered: () => mostBuffered };
}

describe('writePieces', () => {
  test('writes every piece in order, in writes of about a megabyte', async () => {
    const reader = slowReader();
    const pieces = Array.from({ length: 50_000 }, (_, i) => `piece ${i};`);
    await writePieces(reader.stream, pieces);
    expect(reader.text()).toBe(pieces.join(''));
  });

  test('waits for a slow reader instead of piling everything into its buffer', async () => {
    const reader = slowReader();
    // 8 MB in 80-byte pieces: without waiting for `drain`, all of it would sit in the buffer.
    const piece = 'x'.repeat(79) + '\n';
    function* pieces() {
      for (let i = 0; i < 100_000; i++) yield piece;
    }
    await writePieces(reader.stream, pieces());
    expect(reader.text().length).toBe(8_000_000);
    expect(reader.mostBuffered()).toBeLessThan(3 << 20);
  });

  test('writes a large piece as it is, after the small ones before it', async () => {
    const writes: string[] = [];
    const stream = new Writable({
      decodeStrings: false,
      write(chunk: string, _encoding, done) {
        writes.push(chunk);
        done();
      },
    });
    const large = 'x'.repeat(300_000);
    await writePieces(stream, ['a', 'b', large, 'c']);
    expect(writes).toEqual(['ab', large, 'c']);
  });
});
