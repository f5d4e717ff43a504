/**
 * Writes text made in pieces to a stream as it is made, in writes of about a megabyte, waiting
 * when the stream's buffer is full: a large output never sits in memory whole, and a slow reader
 * (a pipe to `less`, say) holds the writer back instead of growing the buffer.
 *
 * @module
 */
import { once } from 'node:events';
import type { Writable } from 'node:stream';
import { joinPieces } from '../../../orchestrator/src/pieces.ts';

const WRITE_SIZE = 1 << 20;

/**
 * Writes `pieces` to `stream` in order.
 *
 * @param stream Where to write, e.g. `process.stdout`.
 * @param pieces The text, in pieces of any size.
 */
export async function writePieces(stream: Writable, pieces: Iterable<string>): Promise<void> {
  for (const text of joinPieces(pieces, WRITE_SIZE)) {
    if (!stream.write(text)) await once(stream, 'drain');
  }
}
