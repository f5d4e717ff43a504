/**
 * Creates the run store on the embedded PGlite or on PostgreSQL.
 *
 * @module
 */
import { createPgliteDriver } from './pglite/index.ts';
import { createPostgresDriver } from './postgres/index.ts';
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
  const driver =
    'pglite' in options
      ? await createPgliteDriver(options.pglite)
      : await createPostgresDriver(options);
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
