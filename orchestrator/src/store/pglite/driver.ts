/**
 * The embedded driver: PGlite (PostgreSQL in WASM), file-backed, in this process.
 *
 * PGlite writes through to its data directory, so a killed process loses nothing it committed,
 * but it runs with fsync off: a power loss can. One process may open a data directory at a time;
 * a lock file with our pid enforces it.
 *
 * @module
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { drizzle } from 'drizzle-orm/pglite';
import { migrate } from 'drizzle-orm/pglite/migrator';
import { MIGRATIONS_FOLDER } from '../migrations.ts';
import type { AnyPgDatabase, Driver } from '../sql-store.ts';
import { StoreLockedError } from '../errors.ts';

/** PGlite options. */
export interface PgliteOptions {
  /** The data directory; `memory://` for a throwaway in-memory database. */
  readonly dataDir: string;
}

/** Opens PGlite. */
export async function createPgliteDriver(options: PgliteOptions): Promise<Driver> {
  const inMemory = options.dataDir.startsWith('memory://');
  const release = inMemory ? () => {} : lockDataDir(options.dataDir);
  let client: PGlite;
  try {
    client = await PGlite.create(options.dataDir);
  } catch (e: unknown) {
    release();
    throw e;
  }
  const db = drizzle(client) as unknown as AnyPgDatabase;
  return {
    name: 'pglite',
    db,
    migrate: async () => {
      await migrate(drizzle(client), { migrationsFolder: MIGRATIONS_FOLDER });
    },
    close: async () => {
      try {
        await client.close();
      } finally {
        release();
      }
    },
  };
}

function lockDataDir(dataDir: string): () => void {
  mkdirSync(dataDir, { recursive: true });
  const lockFile = join(dataDir, '..', `${dataDir.split('/').pop() ?? 'pglite'}.lock`);
  for (let tries = 0; tries < 2; tries++) {
    try {
      writeFileSync(lockFile, String(process.pid), { flag: 'wx' });
      return () => rmSync(lockFile, { force: true });
    } catch (e: unknown) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const holder = Number(readFileSync(lockFile, 'utf8'));
      if (holder && holder !== process.pid && isAlive(holder)) {
        throw new StoreLockedError(dataDir, holder);
      }
      // The holder died (killed, crashed): its lock is stale.
      rmSync(lockFile, { force: true });
    }
  }
  throw new StoreLockedError(dataDir, 0);
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e: unknown) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
