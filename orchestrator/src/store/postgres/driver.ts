/**
 * The PostgreSQL driver: the `postgres` client, for deployments and scale-out.
 *
 * @module
 */
import postgres from 'postgres';
import { PgDialect } from 'drizzle-orm/pg-core';
import { drizzle } from 'drizzle-orm/postgres-js';
import { migrate } from 'drizzle-orm/postgres-js/migrator';
import { MIGRATIONS_FOLDER } from '../migrations.ts';
import type { AnyPgDatabase, Driver } from '../sql-store.ts';

/** PostgreSQL options. */
export interface PostgresOptions {
  readonly connectionString: string;
  /** Connections in the pool. @default 10 */
  readonly maxConnections?: number;
}

/** A key for the advisory lock that serialises migrations across processes. */
const MIGRATION_LOCK = 0x6d757374; // "must"

/** Connects to PostgreSQL. */
export async function createPostgresDriver(options: PostgresOptions): Promise<Driver> {
  const client = postgres(options.connectionString, {
    max: options.maxConnections ?? 10,
    onnotice: () => {},
    // A server restarting refuses connections for a moment: fail fast and let callers retry.
    connect_timeout: 10,
  });
  const db = drizzle(client) as unknown as AnyPgDatabase;
  const dialect = new PgDialect();
  return {
    name: 'postgres',
    db,
    // The client prepares it once per connection (drizzle's `execute` asks it not to), which
    // also spares a round trip: an unprepared statement with parameters is described first.
    executePrepared: (query) => {
      const { sql: text, params } = dialect.sqlToQuery(query);
      return client.unsafe(text, params as postgres.ParameterOrJSON<never>[], { prepare: true });
    },
    migrate: async () => {
      // One connection holds the lock for the whole migration: replicas starting together wait
      // for the first instead of racing on the same DDL.
      const single = postgres(options.connectionString, { max: 1, onnotice: () => {} });
      try {
        await single`select pg_advisory_lock(${MIGRATION_LOCK})`;
        await migrate(drizzle(single), { migrationsFolder: MIGRATIONS_FOLDER });
        await single`select pg_advisory_unlock(${MIGRATION_LOCK})`;
      } finally {
        await single.end();
      }
    },
    listen: async (channel, onMessage, onListen) => {
      // postgres.js keeps one connection for notifications and listens again after a reconnect.
      const { unlisten } = await client.listen(channel, onMessage, onListen);
      return unlisten;
    },
    close: () => client.end({ timeout: 5 }),
  };
}
