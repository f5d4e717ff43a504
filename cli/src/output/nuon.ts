/**
 * NUON, the Nushell Object Notation: what `to nuon` writes and `from nuon` reads. Records are
 * `{a: 1, "b c": "x"}`, lists `[1, 2]`, strings always double-quoted with Nushell's escapes, and
 * `null`, `true`, `false`, ints and floats as Nushell writes them.
 *
 * @see https://www.nushell.sh/book/loading_data.html#nuon
 * @module
 */

/** Keys that can stand bare in a record; anything else is quoted. */
const BARE_KEY = /^[A-Za-z_][A-Za-z0-9_-]*$/;

/** Words Nushell would read as something other than a string, even as a record key. */
const RESERVED = new Set(['true', 'false', 'null']);

/** The largest magnitude an integer can have in Nushell (an `i64`). */
const I64_LIMIT = 2n ** 63n;

/** Options of `toNuon`. */
export interface NuonOptions {
  /**
   * Indent nested records and lists by this many spaces; 0 writes everything on one line.
   *
   * @default 0
   */
  readonly indent?: number;
}

/**
 * Serialises a JSON-like value as NUON.
 *
 * `undefined` record fields are left out, as `JSON.stringify` does; `undefined` elsewhere, bigints
 * beyond an `i64` and functions are refused, as Nushell could not read them back.
 *
 * @param value A value made of records, arrays, strings, numbers, booleans and null.
 * @param options Indentation.
 *
 * @returns The NUON text, without a trailing newline.
 *
 * @example
 * ```ts
 * toNuon({ a: 1, 'b c': 'x', tags: ['web', null] }); // '{a: 1, "b c": "x", tags: ["web", null]}'
 * ```
 */
export function toNuon(value: unknown, options: NuonOptions = {}): string {
  return write(value, options.indent ?? 0, 0, '');
}

function write(value: unknown, indent: number, depth: number, path: string): string {
  if (value === null) return 'null';
  switch (typeof value) {
    case 'string':
      return nuonString(value);
    case 'boolean':
      return value ? 'true' : 'false';
    case 'number':
      return nuonNumber(value);
    case 'bigint':
      if (value >= I64_LIMIT || value < -I64_LIMIT) {
        throw new RangeError(`${path || 'value'}: ${value} does not fit a Nushell int (i64)`);
      }
      return value.toString();
    case 'object':
      break;
    default:
      throw new TypeError(`${path || 'value'}: cannot write a ${typeof value} as NUON`);
  }
  if (value instanceof Date) return nuonString(value.toISOString());
  if (Array.isArray(value)) {
    const items = value.map((v, i) => write(v, indent, depth + 1, `${path}[${i}]`));
    return wrap('[', items, ']', indent, depth);
  }
  const fields: string[] = [];
  for (const [key, v] of Object.entries(value)) {
    if (v === undefined) continue;
    fields.push(`${nuonKey(key)}: ${write(v, indent, depth + 1, path ? `${path}.${key}` : key)}`);
  }
  return wrap('{', fields, '}', indent, depth);
}

function wrap(open: string, items: string[], close: string, indent: number, depth: number) {
  if (items.length === 0) return `${open}${close}`;
  if (indent === 0) return `${open}${items.join(', ')}${close}`;
  const inner = ' '.repeat(indent * (depth + 1));
  const outer = ' '.repeat(indent * depth);
  return `${open}\n${items.map((i) => `${inner}${i}`).join(',\n')}\n${outer}${close}`;
}

/**
 * A record key: bare when Nushell reads it back as the same string, quoted otherwise.
 *
 * @param key The key.
 *
 * @returns `name`, or `"b c"` for a key that needs quotes.
 */
export function nuonKey(key: string): string {
  return BARE_KEY.test(key) && !RESERVED.has(key) ? key : nuonString(key);
}

/**
 * A double-quoted Nushell string: `"` and `\` escaped, control characters as `\n`, `\t`, … or
 * `\u{…}`. Nushell does not interpolate plain double-quoted strings, so `(` and `$` stay as they are.
 *
 * @param s The string.
 *
 * @returns The quoted string.
 */
export function nuonString(s: string): string {
  let out = '"';
  for (const ch of s) {
    const code = ch.codePointAt(0)!;
    switch (ch) {
      case '"':
        out += '\\"';
        break;
      case '\\':
        out += '\\\\';
        break;
      case '\n':
        out += '\\n';
        break;
      case '\r':
        out += '\\r';
        break;
      case '\t':
        out += '\\t';
        break;
      default:
        // C0 controls, DEL and the C1 controls: spelt out so the text stays printable.
        out += code < 0x20 || (code >= 0x7f && code < 0xa0) ? `\\u{${code.toString(16)}}` : ch;
    }
  }
  return `${out}"`;
}

/**
 * A number as Nushell reads it: integers as ints, others as floats that always carry a decimal
 * point or an exponent, and `NaN`, `inf`, `-inf`.
 *
 * @param n The number.
 *
 * @returns The literal.
 */
export function nuonNumber(n: number): string {
  if (Number.isNaN(n)) return 'NaN';
  if (n === Infinity) return 'inf';
  if (n === -Infinity) return '-inf';
  if (Number.isInteger(n) && BigInt(n) < I64_LIMIT && BigInt(n) >= -I64_LIMIT) {
    // `Object.is` keeps -0 a float: as an int it would lose its sign.
    return Object.is(n, -0) ? '-0.0' : BigInt(n).toString();
  }
  const text = String(n);
  if (/[.eE]/.test(text)) return text.replace('e+', 'e');
  return `${text}.0`;
}
