import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  statSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'drizzle-orm';
import { afterAll, describe, expect, test } from 'vitest';
import { createSqlStore } from '../sql-store.ts';
import type { Store } from '../store.ts';
import { createPgliteDriver } from './driver.ts';
import { STALE_AFTER_MS } from './template.ts';

const root = mkdtempSync(join(tmpdir(), 'muster-template-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Opens a migrated store on `dataDir` with templates cached in `cacheDir`. */
async function open(dataDir: string, cacheDir: string) {
  const driver = await createPgliteDriver({ dataDir, cacheDir });
  const store: Store = createSqlStore(driver);
  await store.migrate();
  return { driver, store };
}

const tables = async (driver: Awaited<ReturnType<typeof open>>['driver']) => {
  const result = (await driver.db.execute(
    sql`select table_name from information_schema.tables where table_schema = 'public' order by 1`,
  )) as unknown as { rows: Array<{ table_name: string }> };
  return result.rows.map((r) => r.table_name);
};

describe('PGlite database templates', () => {
  test('new data directories start from the cached template, each its own copy', async () => {
    const cache = join(root, 'cache');
    const entries = () => readdirSync(cache).sort();

    // The first database on this machine is created the slow way, and its dump cached.
    const first = await open(join(root, 'first'), cache);
    const schema = await tables(first.driver);
    expect(schema).toContain('runs');
    await first.store.close();
    expect(entries()).toEqual([expect.stringMatching(/^pglite-\w+\.tar\.gz$/)]);

    // The next one builds the directory template from the dump, then copies it.
    const second = await open(join(root, 'second'), cache);
    expect(entries()).toEqual([
      expect.stringMatching(/^pglite-\w+$/),
      expect.stringMatching(/^pglite-\w+\.tar\.gz$/),
    ]);
    expect(await tables(second.driver)).toEqual(schema);
    // What one database holds, another copy does not: the template is never written to.
    await second.driver.db.execute(sql`create table only_in_second (id int)`);
    await second.store.close();

    const third = await open(join(root, 'third'), cache);
    expect(await tables(third.driver)).toEqual(schema);
    await third.store.close();
    expect(existsSync(join(root, 'third', 'muster-ready'))).toBe(true);
  }, 60_000);

  test('a data directory whose copy was cut short starts over', async () => {
    const cache = join(root, 'cache');
    const dataDir = join(root, 'cut-short');
    // What a process killed mid-copy leaves: files, but not the marker of a whole directory.
    mkdirSync(join(dataDir, 'base'), { recursive: true });
    writeFileSync(join(dataDir, 'PG_VERSION'), 'garbage');
    const { driver, store } = await open(dataDir, cache);
    expect(await tables(driver)).toContain('runs');
    await store.close();
  }, 60_000);

  test('a damaged template is dropped, and the database created without it', async () => {
    const cache = join(root, 'cache');
    const [directory] = readdirSync(cache).filter((e) => /^pglite-\w+$/.test(e));
    // PGlite aborts on a data directory without its control file.
    rmSync(join(cache, directory!, 'global', 'pg_control'));
    const { driver, store } = await open(join(root, 'after-damage'), cache);
    expect(await tables(driver)).toContain('runs');
    await store.close();
    // Made again from the new database: the next one starts from a sound template.
    expect(readdirSync(cache)).toEqual([expect.stringMatching(/^pglite-\w+\.tar\.gz$/)]);
    const next = await open(join(root, 'after-repair'), cache);
    expect(await tables(next.driver)).toContain('runs');
    await next.store.close();
  }, 60_000);

  test('without a usable cache, a database is still created', async () => {
    // The cache "directory" is a file: nothing can be read from or written to it.
    const cache = join(root, 'not-a-directory');
    writeFileSync(cache, '');
    const { driver, store } = await open(join(root, 'uncached'), cache);
    expect(await tables(driver)).toContain('runs');
    await store.close();
  }, 60_000);

  test("other keys' templates go once unused for a week; this key's is touched on use", async () => {
    const cache = join(root, 'prune-cache');
    cpSync(join(root, 'cache'), cache, { recursive: true });
    const own = readdirSync(cache).sort();
    expect(own).toEqual([
      expect.stringMatching(/^pglite-\w+$/),
      expect.stringMatching(/^pglite-\w+\.tar\.gz$/),
    ]);
    const old = new Date(Date.now() - STALE_AFTER_MS - 60_000);
    const recent = new Date(Date.now() - STALE_AFTER_MS / 7);
    const make = (name: string, time: Date, directory = false) => {
      const path = join(cache, name);
      if (directory) mkdirSync(path);
      else writeFileSync(path, 'x');
      utimesSync(path, time, time);
    };
    make('pglite-aaaaaaaaaaaaaaaa.tar.gz', old);
    make('pglite-aaaaaaaaaaaaaaaa', old, true);
    // Used a day ago through its dump; its directory was built long before.
    make('pglite-bbbbbbbbbbbbbbbb.tar.gz', recent);
    make('pglite-bbbbbbbbbbbbbbbb', old, true);
    make('pglite-cccccccccccccccc', old, true);
    make('pglite-dddddddddddddddd.tar.gz.123.tmp', old);
    make('notes.txt', old);
    // Even unused for a week, this key's own template stays, and opening it marks it used.
    utimesSync(join(cache, own[1]!), old, old);

    const started = Date.now();
    const { driver, store } = await open(join(root, 'pruned'), cache);
    expect(await tables(driver)).toContain('runs');
    await store.close();
    expect(readdirSync(cache).sort()).toEqual(
      [
        ...own,
        'notes.txt',
        'pglite-bbbbbbbbbbbbbbbb',
        'pglite-bbbbbbbbbbbbbbbb.tar.gz',
        'pglite-dddddddddddddddd.tar.gz.123.tmp',
      ].sort(),
    );
    expect(statSync(join(cache, own[1]!)).mtimeMs).toBeGreaterThanOrEqual(started - 1000);
  }, 60_000);
});
