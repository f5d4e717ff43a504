/**
 * Finds where a JSON document first breaks, with a message a person can act on. `JSON.parse` says
 * that it failed but, depending on the error, not always where.
 *
 * @module
 */

/** The first syntax error of a JSON document. */
export interface JsonSyntaxError {
  /** Offset of the offending character in the source. */
  readonly offset: number;
  readonly message: string;
}

class Stop {
  constructor(
    readonly offset: number,
    readonly message: string,
  ) {}
}

const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;

/**
 * Scans a JSON document for its first syntax error.
 *
 * @param src The document.
 * @returns The error's offset and message, or `undefined` when the document is valid JSON.
 */
export function findJsonSyntaxError(src: string): JsonSyntaxError | undefined {
  let i = 0;
  const stop = (message: string): never => {
    throw new Stop(i, message);
  };
  const unexpected = (what: string): never =>
    stop(
      i >= src.length
        ? `unexpected end of input, expected ${what}`
        : `unexpected ${JSON.stringify(src[i])}, expected ${what}`,
    );
  const space = () => {
    while (i < src.length && ' \t\n\r'.includes(src[i]!)) i += 1;
  };
  const string = () => {
    i += 1;
    for (;;) {
      if (i >= src.length) stop('unterminated string');
      const ch = src[i]!;
      if (ch === '"') {
        i += 1;
        return;
      }
      if (ch === '\\') {
        const esc = src[i + 1] ?? '';
        if (esc === 'u') {
          if (!/^[0-9a-fA-F]{4}$/.test(src.slice(i + 2, i + 6))) stop('invalid \\u escape');
          i += 6;
          continue;
        }
        if (!'"\\/bfnrt'.includes(esc) || esc === '') stop(`invalid escape "\\${esc}"`);
        i += 2;
        continue;
      }
      if (ch < ' ') stop('line break or control character inside a string');
      i += 1;
    }
  };
  const value = (): void => {
    space();
    const ch = src[i];
    if (ch === '{') return container('}', true);
    if (ch === '[') return container(']', false);
    if (ch === '"') return string();
    for (const literal of ['true', 'false', 'null']) {
      if (src.startsWith(literal, i)) {
        i += literal.length;
        return;
      }
    }
    NUMBER.lastIndex = i;
    const number = NUMBER.exec(src);
    if (number) {
      i += number[0].length;
      return;
    }
    unexpected('a value');
  };
  const container = (close: '}' | ']', object: boolean): void => {
    i += 1;
    space();
    if (src[i] === close) {
      i += 1;
      return;
    }
    for (;;) {
      space();
      if (object) {
        if (src[i] !== '"') unexpected('a double-quoted property name');
        string();
        space();
        if (src[i] !== ':') unexpected('":" after a property name');
        i += 1;
      }
      value();
      space();
      if (src[i] === ',') {
        const comma = i;
        i += 1;
        space();
        if (src[i] === close) {
          i = comma;
          stop(`trailing comma before "${close}"`);
        }
        continue;
      }
      if (src[i] === close) {
        i += 1;
        return;
      }
      unexpected(`"," or "${close}"`);
    }
  };
  try {
    value();
    space();
    if (i < src.length) unexpected('the end of the document');
    return undefined;
  } catch (e: unknown) {
    if (e instanceof Stop) return { offset: e.offset, message: e.message };
    throw e;
  }
}
