/**
 * Output formats of the `muster batch` commands: `table` for people, `json`, `yaml` and `nuon`
 * (Nushell) for tools. Each command renders its own table; the other formats are the data as is.
 *
 * @module
 */
import { yamlLibrary } from '../../../schemas/src/yaml-library.ts';
import { toNuon } from './nuon.ts';

/** The formats of `-o/--output`. */
export const OUTPUT_FORMATS = ['table', 'json', 'yaml', 'nuon'] as const;

/** An output format. */
export type OutputFormat = (typeof OUTPUT_FORMATS)[number];

/**
 * Renders data in a format.
 *
 * @param data The data: records, lists, strings, numbers, booleans, null.
 * @param format The output format.
 * @param table Renders `data` for people, used for `table`.
 *
 * @returns The text, ending in a newline.
 *
 * @example
 * ```ts
 * process.stdout.write(renderData(page.items, flags.output, () => renderRunList(page.items)));
 * ```
 */
export function renderData(data: unknown, format: OutputFormat, table: () => string): string {
  switch (format) {
    case 'table':
      return ensureNewline(table());
    case 'json':
      return `${JSON.stringify(data, null, 2)}\n`;
    case 'yaml':
      return ensureNewline(yamlLibrary().stringify(data, { lineWidth: 0 }));
    case 'nuon':
      return `${toNuon(data, { indent: 2 })}\n`;
  }
}

/**
 * Renders one item of a stream (`logs --follow`): one line per item for `json` (NDJSON) and
 * `nuon`, one YAML document per item for `yaml`, so a reader can act on each as it arrives.
 *
 * @param data The item.
 * @param format The output format.
 * @param line Renders the item for people, used for `table`.
 *
 * @returns The text, ending in a newline.
 */
export function renderStreamItem(data: unknown, format: OutputFormat, line: () => string): string {
  switch (format) {
    case 'table':
      return ensureNewline(line());
    case 'json':
      return `${JSON.stringify(data)}\n`;
    case 'yaml':
      return `---\n${ensureNewline(yamlLibrary().stringify(data, { lineWidth: 0 }))}`;
    case 'nuon':
      return `${toNuon(data)}\n`;
  }
}

function ensureNewline(s: string): string {
  return s === '' || s.endsWith('\n') ? s : `${s}\n`;
}
