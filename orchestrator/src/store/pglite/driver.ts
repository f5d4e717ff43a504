/**
 * The embedded driver: PGlite (PostgreSQL in WASM), file-backed, in this process.
 *
 * PGlite writes through to its data directory, so a killed process loses nothing it committed,
 * but it runs with fsync off: a power loss can. One process may open a data directory at a time;
 * a lock file with our pid enforces it.
 *
 * @module
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { PGlite } from '@electric-sql/pglite';
import type { SQL } from 'drizzle-orm';
import { PgDialect } from 'drizzle-orm/pg-core';
import { drizzle } from 'drizzle-orm/pglite';
import { migrate } from 'drizzle-orm/pglite/migrator';
import { MIGRATIONS_FOLDER } from '../migrations.ts';
import type { AnyPgDatabase, Driver } from '../sql-store.ts';
import { StoreLockedError } from '../errors.ts';
import { databaseTemplate, templateKey } from './template.ts';

const PGLITE_VERSION = pgliteVersion();

/** Written once the database is migrated: a data directory without it is incomplete. */
const READY_MARKER = 'muster-ready';

/** PGlite options. */
export interface PgliteOptions {
  /** The data directory; `memory://` for a throwaway in-memory database. */
  readonly dataDir: string;
  /**
   * Where templates of a new, migrated database are cached (see template.ts): creating one takes
   * 4-5 s, copying the template 0.2-0.4 s.
   *
   * @default `$XDG_CACHE_HOME/muster` or `~/.cache/muster`
   */
  readonly cacheDir?: string;
}

/**
 * PGlite's buffer pool. Postgres's default, 128 MB, is set up page by page at every start: it
 * made opening a data directory take 1.0-1.1 s (0.6 s at 32 MB) and 250 MB of memory (130 MB),
 * and every `muster run` and test waited for it. Measured at 32 MB against the default, in the
 * same minutes: the engine bench as fast (1k-10k tasks 4,800-7,400 tasks/s against
 * 4,800-6,400; 100k flat 5,234 against 5,417), a 20k-task `muster run` as long (23.3 s against
 * 23.9-24.8 s) in 500 MB instead of 660-720.
 */
const SHARED_BUFFERS = '32MB';

/** Opens PGlite. */
export async function createPgliteDriver(options: PgliteOptions): Promise<Driver> {
  const inMemory = options.dataDir.startsWith('memory://');
  const release = inMemory ? () => {} : lockDataDir(options.dataDir);
  const readyMarker = join(options.dataDir, READY_MARKER);
  if (!inMemory && !existsSync(readyMarker)) {
    // Killed before its first migration finished: nothing of ours was in it yet; start over.
    rmSync(options.dataDir, { recursive: true, force: true });
    mkdirSync(options.dataDir, { recursive: true });
  }
  const fresh = inMemory || !existsSync(readyMarker);
  const template = databaseTemplate({
    ...(options.cacheDir !== undefined ? { cacheDir: options.cacheDir } : {}),
    key: templateKey(PGLITE_VERSION, MIGRATIONS_FOLDER),
    open: openPglite,
  });
  let client: PGlite;
  let fromTemplate = true;
  try {
    if (fresh) ({ client, fromTemplate } = await template.openNew(options.dataDir, READY_MARKER));
    else client = await openPglite(options.dataDir);
  } catch (e: unknown) {
    release();
    throw e;
  }
  const db = drizzle(client) as unknown as AnyPgDatabase;
  return {
    name: 'pglite',
    db,
    executePrepared: preparedExecutor(client),
    migrate: async () => {
      await migrate(drizzle(client), { migrationsFolder: MIGRATIONS_FOLDER });
      if (!fromTemplate) await template.save(client);
      if (!inMemory) writeFileSync(readyMarker, 'migrated\n');
    },
    listen: async (channel, onMessage, onListen) => {
      const unlisten = await client.listen(channel, onMessage);
      onListen?.();
      return unlisten;
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

/** Opens PGlite on a data directory with our settings, loading a dump into it when given one. */
function openPglite(dataDir: string, dump?: Buffer): Promise<PGlite> {
  return PGlite.create(dataDir, {
    ...(dump ? { loadDataDir: new Blob([new Uint8Array(dump)]) } : {}),
    startParams: [...PGlite.defaultStartParams, '-c', `shared_buffers=${SHARED_BUFFERS}`],
  });
}

/** Statement texts prepared in one session at most; past it, a statement runs unprepared. */
const MAX_PREPARED = 16;

/**
 * Runs statements as prepared statements of this PGlite session, one per statement text.
 *
 * PGlite's client parses and plans every statement it is given, and keeps none: `PREPARE` once,
 * then `EXECUTE` with the values. `EXECUTE` takes no bind parameters, so the values travel as
 * literals, each quoted whole, read by the parameter's type as a bind value would be.
 */
function preparedExecutor(client: PGlite): (query: SQL) => Promise<unknown> {
  const dialect = new PgDialect();
  // By text; a promise, so that commits of two runs racing to prepare the same text share one.
  const names = new Map<string, Promise<string>>();
  let count = 0;
  return async (query) => {
    const { sql: text, params } = dialect.sqlToQuery(query);
    let name = names.get(text);
    if (name === undefined) {
      if (names.size >= MAX_PREPARED) return client.query(text, params);
      const fresh = `muster_prepared_${++count}`;
      name = client.query(`prepare ${fresh} as ${text}`).then(() => fresh);
      names.set(text, name);
      // A statement that failed to prepare fails here again next time, with its own error.
      name.catch(() => names.delete(text));
    }
    const values = params.map(literal);
    const args = values.length ? `(${values.join(', ')})` : '';
    return client.query(`execute ${await name}${args}`);
  };
}

/** A value as an SQL literal that any standard_conforming_strings setting reads the same. */
function literal(value: unknown): string {
  if (value === null || value === undefined) return 'null';
  let text: string;
  if (typeof value === 'string') text = value;
  else if (typeof value === 'number' || typeof value === 'bigint') text = String(value);
  else if (typeof value === 'boolean') text = value ? 'true' : 'false';
  else if (value instanceof Date) text = value.toISOString();
  else throw new TypeError('a prepared statement takes text, numbers, booleans or dates');
  // NUL would end the statement text early; PostgreSQL text cannot hold it anyway.
  if (text.includes('\0')) throw new TypeError('a prepared statement value holds a NUL character');
  return `E'${text.replace(/\\/g, '\\\\').replace(/'/g, "''")}'`;
}

function pgliteVersion(): string {
  // The package does not export its package.json: find it above its entry point.
  let dir = fileURLToPath(import.meta.resolve('@electric-sql/pglite'));
  for (let i = 0; i < 5; i++) {
    dir = join(dir, '..');
    try {
      const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
        name?: string;
        version?: string;
      };
      if (manifest.name === '@electric-sql/pglite') return manifest.version ?? 'unknown';
    } catch {
      // not this folder
    }
  }
  return 'unknown';
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
  } catch (e: unknown) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
  try {
    // A killed process nobody has reaped yet is a zombie: it holds nothing.
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true; // no /proc here: trust kill(0)
  }
}
