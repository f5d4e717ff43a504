/**
 * Replicas starting at once on an empty PostgreSQL database migrate it once: the first takes an
 * advisory lock, the others wait for it and find nothing left to do. Needs `TEST_DATABASE_URL`.
 */
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createStore } from '../src/store/index.ts';
import { createTestDatabase, TEST_DATABASE_URL } from './helpers/databases.ts';

describe.skipIf(!TEST_DATABASE_URL)('migrations with several replicas starting at once', () => {
  let db: { url: string; drop: () => Promise<void> };
  beforeAll(async () => {
    db = await createTestDatabase();
  });
  afterAll(async () => db?.drop());

  test('five stores created together all succeed, and every migration is applied once', async () => {
    const stores = await Promise.all(
      Array.from({ length: 5 }, () => createStore({ connectionString: db.url, maxConnections: 2 })),
    );
    try {
      const sql = postgres(db.url, { max: 1, onnotice: () => {} });
      const applied = await sql<{ hash: string }[]>`select hash from drizzle.__drizzle_migrations`;
      const tables = await sql<{ n: number }[]>`
        select count(*)::int as n from pg_tables where schemaname = 'public' and tablename = 'runs'`;
      await sql.end();
      expect(new Set(applied.map((a) => a.hash)).size).toBe(applied.length);
      expect(applied.length).toBeGreaterThanOrEqual(3);
      expect(tables[0]!.n).toBe(1);
      for (const store of stores) await store.ping();
    } finally {
      await Promise.all(stores.map((s) => s.close()));
    }
  });
});
