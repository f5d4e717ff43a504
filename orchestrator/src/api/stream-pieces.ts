/**
 * A response body made from text in pieces, read as the client reads: a large plan (132 MB of
 * JSON at 100k operations) is never one string or one buffer in the server.
 *
 * @module
 */
import { joinPieces } from '../pieces.ts';

const READ_SIZE = 1 << 20;

/**
 * Streams `pieces` as UTF-8, about a megabyte per read.
 *
 * @param pieces The text, in pieces of any size; taken one read at a time.
 * @returns A body for `c.body(...)`.
 */
export function streamPieces(pieces: Iterable<string>): ReadableStream<Uint8Array> {
  const texts = joinPieces(pieces, READ_SIZE);
  const encoder = new TextEncoder();
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      const next = texts.next();
      if (next.done) controller.close();
      else controller.enqueue(encoder.encode(next.value));
    },
    cancel() {
      texts.return(undefined);
    },
  });
}
