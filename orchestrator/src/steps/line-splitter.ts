/**
 * Splits a process's output stream into log lines, for the `script` step run here and over ssh.
 *
 * @module
 */

/** The longest line passed on; longer ones are split, so one runaway line cannot fill memory. */
export const MAX_LINE = 64 * 1024;

/** What {@link lineSplitter} returns: feed it chunks, then flush the unterminated rest. */
export interface LineSplitter {
  push(chunk: string): void;
  flush(): void;
}

/**
 * Splits a text stream into lines (without `\n` or `\r\n`), passing each to `emit`, in pieces of
 * at most {@link MAX_LINE} characters.
 *
 * @param emit Receives each line.
 * @returns The splitter.
 */
export function lineSplitter(emit: (line: string) => void): LineSplitter {
  let rest = '';
  const out = (line: string) => {
    const text = line.endsWith('\r') ? line.slice(0, -1) : line;
    for (let i = 0; i < text.length || i === 0; i += MAX_LINE) emit(text.slice(i, i + MAX_LINE));
  };
  return {
    push: (chunk) => {
      const parts = (rest + chunk).split('\n');
      rest = parts.pop() ?? '';
      for (const part of parts) out(part);
      while (rest.length > MAX_LINE) {
        emit(rest.slice(0, MAX_LINE));
        rest = rest.slice(MAX_LINE);
      }
    },
    flush: () => {
      if (rest !== '') out(rest);
      rest = '';
    },
  };
}
