/**
 * Group commit for the hub's store calls: calls made in the same turn, or while the previous
 * batch is in flight, go to the store together in one statement. A rollout batch of twenty tasks
 * then costs one lease grant and one lease completion, not twenty of each.
 *
 * @module
 */

/**
 * Creates a function that batches its calls into calls of `run`.
 *
 * @param run Handles many items at once; returns one result per item, in order.
 * @param key Items with the same key never share a batch (a statement may touch a row once).
 *
 * @example
 * ```ts
 * const grant = createBatcher((grants) => store.grantLeases(grants), (g) => g.taskId);
 * const [a, b] = await Promise.all([grant(g1), grant(g2)]); // one statement
 * ```
 */
export function createBatcher<TIn, TOut>(
  run: (items: TIn[]) => Promise<TOut[]>,
  key: (item: TIn) => string,
): (item: TIn) => Promise<TOut> {
  interface Pending {
    readonly item: TIn;
    resolve(out: TOut): void;
    reject(e: unknown): void;
  }
  let pending: Pending[] = [];
  let busy = false;

  const flush = async (): Promise<void> => {
    busy = true;
    while (pending.length > 0) {
      const seen = new Set<string>();
      const now: Pending[] = [];
      const later: Pending[] = [];
      for (const p of pending) {
        const k = key(p.item);
        (seen.has(k) ? later : now).push(p);
        seen.add(k);
      }
      pending = later;
      try {
        const out = await run(now.map((p) => p.item));
        now.forEach((p, i) => p.resolve(out[i]!));
      } catch (e: unknown) {
        for (const p of now) p.reject(e);
      }
    }
    busy = false;
  };

  return (item) =>
    new Promise<TOut>((resolve, reject) => {
      pending.push({ item, resolve, reject });
      // The first call of a turn waits for the turn to end, so its siblings join it.
      if (!busy && pending.length === 1) setImmediate(() => void flush());
    });
}
