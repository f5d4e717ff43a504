/**
 * Writes text made in pieces to a stream as it is made, in writes of about a megabyte, waiting
 * when the stream's buffer is full: a large output never sits in memory whole, and a slow reader
 * (a pipe to `less`, say) holds the writer back instead of growing the buffer.
 *
 * @module
 */
import { once } from 'node:events';
import type { Writable } from 'node:stream';

const WRITE_SIZE = 1 << 20;

/**
 * Writes `pieces` to `stream` in order.
 *
 * @param stream Where to write, e.g. `process.stdout`.
 * @param pieces The text, in pieces of any size.
 */
export async function writePieces(stream: Writable, pieces: Iterable<string>): Promise<void> {
  let batch: string[] = [];
  let size = 0;
  const flush = async () => {
    const text = batch.join('');
    batch = [];
    size = 0;
    if (!stream.write(text)) await once(stream, 'drain');
  };
  for (const piece of pieces) {
    batch.push(piece);
    size += piece.length;
    if (size >= WRITE_SIZE) await flush();
  }
  if (size > 0) await flush();
}
