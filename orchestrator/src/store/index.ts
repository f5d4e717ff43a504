/**
 * Creates the run store on the embedded PGlite or on PostgreSQL.
 *
 * @module
 */
import { createSqlStore } from './sql-store.ts';
import type { Store } from './store.ts';

/** Where the store lives: PostgreSQL by URL, or PGlite in a directory. */
export type StoreOptions =
  | { readonly connectionString: string; readonly maxConnections?: number }
  | { readonly pglite: { readonly dataDir: string } };

/**
 * Creates a store and migrates it.
 *
 * @example
 * ```ts
 * const store = await createStore({ pglite: { dataDir: '.muster/pglite' } });
 * ```
 */
export async function createStore(options: StoreOptions): Promise<Store> {
  // Each driver loads only when chosen: PGlite's module and `postgres` take 65 and 35 ms to import.
  const driver =
    'pglite' in options
      ? await (await import('./pglite/index.ts')).createPgliteDriver(options.pglite)
      : await (await import('./postgres/index.ts')).createPostgresDriver(options);
  const store = createSqlStore(driver);
  try {
    await store.migrate();
  } catch (e: unknown) {
    await store.close();
    throw e;
  }
  return store;
}

export type * from './store.ts';
export { StoreError, LeaseLostError, StoreLockedError } from './errors.ts';
