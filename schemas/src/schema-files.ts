/**
 * The CUE package of the workflow language (`schemas/*.cue`), found beside this module both in the
 * source tree and in `dist/` (where `npm run build` copies it).
 *
 * @module
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The name the package's files declare: `package muster`. */
export const SCHEMA_PACKAGE = 'muster';

/** The module path of the package, for `import "muster.dev/schemas:muster"`. */
export const SCHEMA_MODULE = 'muster.dev/schemas';

/** One file of the CUE package. */
export interface SchemaFile {
  /** The file name, e.g. `workflow.cue`. */
  readonly name: string;
  readonly source: string;
}

let cached: Promise<SchemaFile[]> | undefined;

/**
 * The directory that holds the CUE package.
 *
 * @returns An absolute path: `…/schemas` (or `…/dist/schemas`).
 */
export function schemaDir(): string {
  return fileURLToPath(new URL('..', import.meta.url));
}

/**
 * Reads the package's `.cue` files, once per process.
 *
 * @returns The files, sorted by name.
 */
export function readSchemaFiles(): Promise<SchemaFile[]> {
  cached ??= (async () => {
    const dir = schemaDir();
    const names = (await readdir(dir)).filter((n) => n.endsWith('.cue')).sort();
    return Promise.all(
      names.map(async (name) => ({ name, source: await readFile(join(dir, name), 'utf8') })),
    );
  })();
  return cached;
}
