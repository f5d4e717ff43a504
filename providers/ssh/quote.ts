/**
 * Quoting for the remote shell. sshd hands a command to the user's login shell as one string, so
 * every word Muster sends is single-quoted: inside single quotes a POSIX shell expands nothing
 * (no `$`, backquote, glob, `~` or keyword), and a `'` in the word is closed, escaped and reopened
 * as `'\''`. Every word is quoted, even plain ones, so a first word such as `if` or `A=b` is a
 * command name and never a keyword or an assignment.
 *
 * @module
 */

/** A word no shell can carry: an argument with a NUL byte. */
export class UnquotableError extends Error {
  override readonly name = 'UnquotableError';
  constructor(readonly word: string) {
    super(`an argument cannot contain a NUL byte: ${JSON.stringify(word)}`);
  }
}

/**
 * Quotes one word for a POSIX shell.
 *
 * @example
 * ```ts
 * shellQuote("it's"); // 'it'\''s'
 * ```
 * @throws {UnquotableError} For a word with a NUL byte, which no argv can hold.
 */
export function shellQuote(word: string): string {
  if (word.includes('\0')) throw new UnquotableError(word);
  return `'${word.replaceAll("'", "'\\''")}'`;
}

/**
 * Quotes an argv into one command line, so the remote shell splits it back into the same words.
 *
 * @example
 * ```ts
 * shellCommand(['printf', '%s\n', 'a b']); // 'printf' '%s\n' 'a b'
 * ```
 */
export function shellCommand(argv: readonly string[]): string {
  return argv.map(shellQuote).join(' ');
}
