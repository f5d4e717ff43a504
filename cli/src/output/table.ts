/**
 * Plain text tables for people: a header row in capitals, columns padded to the widest cell,
 * two spaces between them, no trailing blanks.
 *
 * @module
 */

/** One column: its header and how to read a row's cell. */
export interface Column<TRow> {
  readonly header: string;
  readonly cell: (row: TRow) => string;
}

/**
 * Renders rows as a text table.
 *
 * @param rows The rows.
 * @param columns The columns, left to right.
 *
 * @returns Lines ending in a newline; only the header when there are no rows.
 *
 * @example
 * ```ts
 * renderTable([{ id: 'r1' }], [{ header: 'ID', cell: (r) => r.id }]); // 'ID\nr1\n'
 * ```
 */
export function renderTable<TRow>(rows: readonly TRow[], columns: readonly Column<TRow>[]): string {
  const cells = [
    columns.map((c) => c.header),
    ...rows.map((r) => columns.map((c) => oneLine(c.cell(r)))),
  ];
  const widths = columns.map((_, i) => Math.max(...cells.map((r) => r[i]!.length)));
  return cells
    .map(
      (r) =>
        `${r
          .map((c, i) => c.padEnd(widths[i]!))
          .join('  ')
          .trimEnd()}\n`,
    )
    .join('');
}

/** Keeps a cell on one line, so a multi-line error cannot break the table's columns. */
function oneLine(s: string): string {
  return s.replace(/\s*\n\s*/g, ' ⏎ ');
}

/**
 * Shortens text to a width, marking the cut with `…`.
 *
 * @param s The text.
 * @param width The most characters to keep, the `…` included.
 *
 * @returns The text, or its first `width - 1` characters and `…`.
 */
export function truncate(s: string, width: number): string {
  return s.length <= width ? s : `${s.slice(0, Math.max(0, width - 1))}…`;
}
