/**
 * The names a workflow defines (operation ids, servers), for the problems that meet a name it does
 * not define: the choices they list and the "did you mean" they suggest.
 *
 * A file of 100k operations with 1,000 misspelt `depends_on` names took a minute to validate: each
 * problem copied the 100k ids twice, listed them, and compared the name with every one. The list
 * and its text are now made once, and a name is compared once.
 *
 * Among many names, a name one edit away from a known one (the usual typo) is found by looking up
 * each of its one-edit variants instead of comparing it with every name: a few hundred lookups
 * against 100k comparisons. Other names are compared with every known name, until
 * {@link SUGGESTION_BUDGET} comparisons are spent in all (about a second); later ones get the
 * plain hint instead.
 *
 * @module
 */
import { didYouMean } from '../../../schemas/src/problems.ts';
import { listOf } from './context.ts';

/** Name comparisons one planning may spend on suggestions. */
export const SUGGESTION_BUDGET = 10_000_000;

/** Where each name first appears, and every character the names use. */
interface Lookup {
  readonly position: ReadonlyMap<string, number>;
  readonly alphabet: readonly string[];
}

/** One kind of name a workflow defines, read when a problem first needs it. */
export class KnownNames {
  readonly #read: () => Iterable<string>;
  #names: readonly string[] | undefined;
  #choices: string | undefined;
  #lookup: Lookup | undefined;
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

  /** `a, b, … or 99988 more`: the names, as a problem's `expected` lists them. */
  choices(): string {
    return (this.#choices ??= listOf(this.#all, 12, 'or'));
  }

  /**
   * `did you mean "op-1"?` for a name close to a known one: the same answer as comparing it with
   * every known name ({@link didYouMean}), or nothing once the budget is spent.
   */
  suggest(name: string): string | undefined {
    if (this.#suggestions.has(name)) return this.#suggestions.get(name);
    const names = this.#all;
    let hint: string | undefined;
    const near = this.#withinOneEdit(name);
    if (near !== undefined) hint = `did you mean "${near}"?`;
    else if (names.length <= this.#budget) {
      this.#budget -= names.length;
      hint = didYouMean(name, names);
    }
    this.#suggestions.set(name, hint);
    return hint;
  }

  /**
   * `name` itself when known, else the first known name (in list order) one edit from it (one
   * character inserted, deleted or replaced): what comparing it with every name would pick, since
   * no other name can be closer. Undefined when there is none, or when there are too few names
   * for the lookups to cost less than the comparisons.
   */
  #withinOneEdit(name: string): string | undefined {
    const names = this.#all;
    // Even with a one-character alphabet, that many variants: no lookup table is worth building.
    if (3 * name.length + 2 >= names.length) return undefined;
    // Insertions and substitutions draw on the names' own characters only: a variant with any
    // other character cannot be a known name.
    const lookup = (this.#lookup ??= lookupOf(names));
    const variants = (2 * name.length + 1) * lookup.alphabet.length + name.length + 1;
    if (variants >= names.length) return undefined;
    if (lookup.position.has(name)) return name;
    let first = Infinity;
    const consider = (variant: string) => {
      const at = lookup.position.get(variant);
      if (at !== undefined && at < first) first = at;
    };
    for (let i = 0; i <= name.length; i++) {
      const before = name.slice(0, i);
      const after = name.slice(i);
      for (const c of lookup.alphabet) consider(before + c + after);
      if (i === name.length) break;
      const rest = name.slice(i + 1);
      consider(before + rest);
      for (const c of lookup.alphabet) if (c !== name[i]) consider(before + c + rest);
    }
    return first === Infinity ? undefined : names[first];
  }
}

function lookupOf(names: readonly string[]): Lookup {
  const position = new Map<string, number>();
  const alphabet = new Set<string>();
  names.forEach((name, i) => {
    if (!position.has(name)) position.set(name, i);
    for (let k = 0; k < name.length; k++) alphabet.add(name[k]!);
  });
  return { position, alphabet: [...alphabet] };
}
