/**
 * Test databases: a fresh PostgreSQL database per test file (when TEST_DATABASE_URL is set), or an
 * in-memory PGlite.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import type { StoreOptions } from '../../src/store/index.ts';

/** The PostgreSQL server for tests, if any. */
export const TEST_DATABASE_URL = process.env['TEST_DATABASE_URL'];

/** Creates an empty database `orch_test_<hex>` and returns its URL and a function dropping it. */
export async function createTestDatabase(
  server: string | undefined = TEST_DATABASE_URL,
): Promise<{ url: string; drop: () => Promise<void> }> {
  if (!server) throw new Error('TEST_DATABASE_URL is not set');
  const name = `orch_test_${randomBytes(6).toString('hex')}`;
  const admin = postgres(server, { max: 1, onnotice: () => {} });
  await admin.unsafe(`create database ${name}`);
  await admin.end();
  const url = new URL(server);
  url.pathname = `/${name}`;
  return {
    url: url.toString(),
    drop: async () => {
      const a = postgres(server, { max: 1, onnotice: () => {} });
      await a.unsafe(`drop database if exists ${name} with (force)`);
      await a.end();
    },
  };
}

/** Store options for each driver under test: PGlite always, PostgreSQL when configured. */
export function driversUnderTest(): Array<{ name: 'pglite' | 'postgres' }> {
  return TEST_DATABASE_URL ? [{ name: 'pglite' }, { name: 'postgres' }] : [{ name: 'pglite' }];
}

/** Options for a fresh store of the given driver, and a cleanup. */
export async function freshStoreOptions(
  driver: 'pglite' | 'postgres',
): Promise<{ options: StoreOptions; cleanup: () => Promise<void> }> {
  if (driver === 'pglite')
    return { options: { pglite: { dataDir: 'memory://' } }, cleanup: async () => {} };
  const db = await createTestDatabase();
  return { options: { connectionString: db.url, maxConnections: 4 }, cleanup: db.drop };
}
