/**
 * Templates of a new, migrated PGlite database, cached per PGlite version and migrations, so
 * that a new data directory need not run PGlite's initdb and every migration (4-5 s here).
 *
 * Two forms, in the cache directory:
 * - `pglite-KEY.tar.gz`: PGlite's own dump of the database, written by the first database
 *   created on this machine. `memory://` databases load it.
 * - `pglite-KEY/`: a closed data directory built from that dump on first need. A new data
 *   directory on disk is a copy of it: 0.2-0.4 s, where loading the dump (gunzip, untar, a file
 *   write at a time through PGlite's file system) took 1.0-1.6 s.
 *
 * Either is only a cache: when one cannot be read, made or opened (a damaged copy makes PGlite
 * abort), both are dropped and the database is created the slow way, which caches them again.
 *
 * Each use touches the dump, and the templates of other keys (another PGlite version, older
 * migrations: 45 MB each) go once unused for {@link STALE_AFTER_MS}: an upgrade leaves no
 * template behind for long, and two versions of muster used side by side keep both.
 *
 * @internal
 * @module
 */
import { createHash } from 'node:crypto';
import {
  cpSync,
  existsSync,
  mkdirSync,
  readFileSync,
  readdirSync,
  renameSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { basename, join } from 'node:path';
import type { PGlite } from '@electric-sql/pglite';

/** How long the template of another key stays after its last use: a week. */
export const STALE_AFTER_MS = 7 * 24 * 60 * 60 * 1000;

/** Opens PGlite on a data directory, loading a dump into it when given one. */
export type OpenPglite = (dataDir: string, dump?: Buffer) => Promise<PGlite>;

/** A new database: PGlite open on it, and whether it came from a template. */
export interface NewDatabase {
  readonly client: PGlite;
  /** False when it was created from nothing: migrate it, then {@link DatabaseTemplate.save} it. */
  readonly fromTemplate: boolean;
}

/** The template of one PGlite version and set of migrations. */
export interface DatabaseTemplate {
  /**
   * Opens a new database in an empty data directory (or `memory://`): a copy of the directory
   * template, built from the dump first when there is none; in memory, the dump loaded; else
   * created from nothing.
   *
   * @param skip The caller's marker of a complete data directory, left out of the copy: the
   *   caller writes it once the database is whole.
   */
  openNew(dataDir: string, skip: string): Promise<NewDatabase>;
  /** Caches the dump of a new, migrated database; never throws. */
  save(client: PGlite): Promise<void>;
}

/**
 * The template for these migrations and PGlite version.
 *
 * @param options.cacheDir Where templates are kept (default `$XDG_CACHE_HOME/muster`).
 * @param options.key What the template depends on: the PGlite version and the migrations.
 * @param options.open How to open PGlite (the driver's settings).
 */
export function databaseTemplate(options: {
  readonly cacheDir?: string;
  readonly key: string;
  readonly open: OpenPglite;
}): DatabaseTemplate {
  const cacheDir = options.cacheDir ?? defaultCacheDir();
  const dumpFile = join(cacheDir, `pglite-${options.key}.tar.gz`);
  const directory = join(cacheDir, `pglite-${options.key}`);

  const readDump = (): Buffer | undefined => {
    try {
      return readFileSync(dumpFile);
    } catch {
      return undefined;
    }
  };

  /** Builds the directory template from the dump: loaded into a data directory, then closed. */
  const buildDirectory = async (): Promise<boolean> => {
    const dump = readDump();
    if (dump === undefined) return false;
    const building = `${directory}.${process.pid}.tmp`;
    try {
      rmSync(building, { recursive: true, force: true });
      mkdirSync(building, { recursive: true });
      const client = await options.open(building, dump);
      await client.close();
      try {
        renameSync(building, directory);
      } catch (e: unknown) {
        // Another process built it first: theirs is as good.
        if (!existsSync(directory)) throw e;
      }
      return true;
    } catch {
      return false;
    } finally {
      rmSync(building, { recursive: true, force: true });
    }
  };

  /** Fills an empty data directory with a copy of the directory template; false without one. */
  const copyInto = async (dataDir: string, skip: string): Promise<boolean> => {
    if (!existsSync(directory) && !(await buildDirectory())) return false;
    try {
      cpSync(directory, dataDir, { recursive: true, filter: (from) => basename(from) !== skip });
      return true;
    } catch {
      // Removed while we copied, or the disk is full: this directory starts over the slow way.
      emptyDirectory(dataDir);
      return false;
    }
  };

  /** Drops both forms: one of them would not open. */
  const discard = () => {
    rmSync(directory, { recursive: true, force: true });
    rmSync(dumpFile, { force: true });
  };

  /** Marks this key's template as used now, and removes other keys' that have gone stale. */
  const touchAndPrune = () => {
    try {
      const now = new Date();
      utimesSync(dumpFile, now, now);
      pruneStaleTemplates(cacheDir, options.key, now.getTime() - STALE_AFTER_MS);
    } catch {
      // Only a cache: a template that stays is disk space, nothing more.
    }
  };

  return {
    async openNew(dataDir, skip) {
      const inMemory = dataDir.startsWith('memory://');
      try {
        if (!inMemory && (await copyInto(dataDir, skip))) {
          const client = await options.open(dataDir);
          touchAndPrune();
          return { client, fromTemplate: true };
        }
        const dump = readDump();
        if (dump !== undefined) {
          const client = await options.open(dataDir, dump);
          touchAndPrune();
          return { client, fromTemplate: true };
        }
      } catch {
        discard();
        if (!inMemory) emptyDirectory(dataDir);
      }
      return { client: await options.open(dataDir), fromTemplate: false };
    },
    async save(client) {
      try {
        const dump = await client.dumpDataDir('gzip');
        mkdirSync(cacheDir, { recursive: true });
        const tmp = `${dumpFile}.${process.pid}.tmp`;
        writeFileSync(tmp, Buffer.from(await dump.arrayBuffer()));
        renameSync(tmp, dumpFile);
        pruneStaleTemplates(cacheDir, options.key, Date.now() - STALE_AFTER_MS);
      } catch {
        // Only a cache: without it the next new database takes longer, nothing more.
      }
    },
  };
}

/**
 * Removes the templates of keys other than `key` whose last use (their dump's modification time,
 * or the directory's when the dump is gone) is before `before`. Builds in progress (`.tmp`) and
 * anything not named like a template are left alone.
 */
function pruneStaleTemplates(cacheDir: string, key: string, before: number): void {
  const dumps = new Map<string, number>();
  const directories = new Map<string, number>();
  for (const entry of readdirSync(cacheDir)) {
    const match = /^pglite-([0-9a-f]{16})(\.tar\.gz)?$/.exec(entry);
    if (match === null || match[1] === key) continue;
    const time = statSync(join(cacheDir, entry)).mtimeMs;
    (match[2] === undefined ? directories : dumps).set(match[1]!, time);
  }
  // The dump is touched on each use; a directory only when it was built.
  const lastUse = new Map([...directories, ...dumps]);
  for (const [other, time] of lastUse) {
    if (time >= before) continue;
    rmSync(join(cacheDir, `pglite-${other}`), { recursive: true, force: true });
    rmSync(join(cacheDir, `pglite-${other}.tar.gz`), { force: true });
  }
}

function emptyDirectory(dir: string): void {
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
}

/** A key that changes with the PGlite version and with every migration file. */
export function templateKey(pgliteVersion: string, migrationsFolder: string): string {
  const hash = createHash('sha256');
  hash.update(pgliteVersion);
  for (const file of readdirSync(migrationsFolder)
    .filter((f) => f.endsWith('.sql'))
    .sort()) {
    hash.update(file).update(readFileSync(join(migrationsFolder, file)));
  }
  return hash.digest('hex').slice(0, 16);
}

function defaultCacheDir(): string {
  const base = process.env['XDG_CACHE_HOME'] || join(homedir() || tmpdir(), '.cache');
  return join(base, 'muster');
}
