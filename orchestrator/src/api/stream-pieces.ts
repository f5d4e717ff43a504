/**
 * A response body made from text in pieces, read as the client reads: a large plan (132 MB of
 * JSON at 100k operations) is never one string or one buffer in the server.
 *
 * @module
 */

const READ_SIZE = 1 << 20;

/**
 * Streams `pieces` as UTF-8, about a megabyte per read.
 *
 * @param pieces The text, in pieces of any size; taken one read at a time.
 * @returns A body for `c.body(...)`.
 */
export function streamPieces(pieces: Iterable<string>): ReadableStream<Uint8Array> {
  const iterator = pieces[Symbol.iterator]();
  const encoder = new TextEncoder();
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      const batch: string[] = [];
      let size = 0;
      while (size < READ_SIZE) {
        const next = iterator.next();
        if (next.done) {
          if (batch.length > 0) controller.enqueue(encoder.encode(batch.join('')));
          controller.close();
          return;
        }
        batch.push(next.value);
        size += next.value.length;
      }
      controller.enqueue(encoder.encode(batch.join('')));
    },
    cancel() {
      iterator.return?.();
    },
  });
}
