/**
 * Text made in pieces, joined into texts of about a given size: few enough writes or reads for
 * a large output, and never the whole of it in memory. The CLI writes `muster plan -o json` this
 * way and the API streams a plan this way.
 *
 * @module
 */

/**
 * Joins consecutive pieces until they reach `size` characters, lazily: a piece is taken only when
 * the text it belongs to is asked for, and stopping early stops `pieces` too. A piece of a quarter
 * of `size` or more is passed on as it is, after the text before it: joining would copy it (at
 * 100k operations, copying the plan's 132 MB of JSON this way cost a third of writing it).
 *
 * @param pieces The text, in pieces of any size.
 * @param size Characters at which a text is complete (the last one may be shorter).
 * @returns The texts, in order; none for no pieces.
 */
export function* joinPieces(pieces: Iterable<string>, size: number): Generator<string> {
  let batch: string[] = [];
  let length = 0;
  for (const piece of pieces) {
    if (piece.length >= size / 4) {
      if (batch.length > 0) yield batch.join('');
      batch = [];
      length = 0;
      yield piece;
      continue;
    }
    batch.push(piece);
    length += piece.length;
    if (length >= size) {
      yield batch.join('');
      batch = [];
      length = 0;
    }
  }
  if (batch.length > 0) yield batch.join('');
}
