/**
 * The names a workflow defines (operation ids, servers), for the problems that meet a name it does
 * not define: the choices they list and the "did you mean" they suggest.
 *
 * A file of 100k operations with 1,000 misspelt `depends_on` names took a minute to validate: each
 * problem copied the 100k ids twice, listed them, and compared the name with every one. The list
 * and its text are now made once, a name is compared once, and comparisons stop after
 * {@link SUGGESTION_BUDGET} in all (about a second): later names get the plain hint instead.
 *
 * @module
 */
import { didYouMean } from '../../../schemas/src/problems.ts';
import { listOf } from './context.ts';

/** Name comparisons one planning may spend on suggestions. */
export const SUGGESTION_BUDGET = 10_000_000;

/** One kind of name a workflow defines, read when a problem first needs it. */
export class KnownNames {
  readonly #read: () => Iterable<string>;
  #names: readonly string[] | undefined;
  #choices: string | undefined;
  readonly #suggestions = new Map<string, string | undefined>();
  #budget: number;

  /**
   * @param read The names, in the order to list them.
   * @param budget Comparisons the suggestions may spend, one per known name each.
   */
  constructor(read: () => Iterable<string>, budget = SUGGESTION_BUDGET) {
    this.#read = read;
    this.#budget = budget;
  }

  get #all(): readonly string[] {
    return (this.#names ??= [...this.#read()]);
  }

  /** How many names there are. */
  get size(): number {
    return this.#all.length;
  }

  /** `a, b, … or 99988 more`: the names, as a problem's `expected` lists them. */
  choices(): string {
    return (this.#choices ??= listOf(this.#all, 12, 'or'));
  }

  /** `did you mean "op-1"?` for a name close to a known one; nothing once the budget is spent. */
  suggest(name: string): string | undefined {
    if (this.#suggestions.has(name)) return this.#suggestions.get(name);
    const names = this.#all;
    let hint: string | undefined;
    if (names.length <= this.#budget) {
      this.#budget -= names.length;
      hint = didYouMean(name, names);
    }
    this.#suggestions.set(name, hint);
    return hint;
  }
}
