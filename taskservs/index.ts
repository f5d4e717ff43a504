/**
 * The taskserv catalog: the services Muster knows how to install, one folder per taskserv with a
 * `taskserv.cue`. They are compiled into `catalog.json` by `npm run build:catalog`, so loading the
 * catalog needs no CUE evaluation at run time; a test keeps the JSON in sync with the sources.
 *
 * @module
 */
import { readFile } from 'node:fs/promises';
import * as v from 'valibot';
import { MusterError } from '../schemas/src/problems.ts';
import { TaskservSchema } from '../schemas/src/workflow.ts';
import type { Taskserv } from '../schemas/src/workflow.ts';

/**
 * The compiled catalog's location: beside this module, so it is found both from source and from
 * `dist/` (where `npm run build` copies `taskservs/`).
 */
export const CATALOG_URL = new URL('./catalog.json', import.meta.url);

/** The catalog file's shape: taskservs sorted by name. */
export const CatalogFileSchema = v.strictObject({
  taskservs: v.array(TaskservSchema),
});
/** The parsed `catalog.json`. */
export type CatalogFile = v.InferOutput<typeof CatalogFileSchema>;

/** The catalog cannot be read or does not match the taskserv schema. */
export class CatalogError extends MusterError {
  override readonly name = 'CatalogError';
  constructor(message: string, options?: { cause?: unknown }) {
    super('MUS3001', message, options);
  }
}

let cached: Promise<readonly Taskserv[]> | undefined;

/**
 * Loads the taskserv catalog, by name.
 *
 * The file is read once per process; each call returns a new map, so callers may add to it.
 *
 * @param url Where `catalog.json` is; the bundled catalog by default.
 *
 * @returns The taskservs keyed by name.
 *
 * @throws {CatalogError} When the file is missing or invalid (run `npm run build:catalog`).
 *
 * @example
 * ```ts
 * const catalog = await loadCatalog();
 * const plan = planWorkflow(workflow, { catalog });
 * ```
 */
export async function loadCatalog(url: URL = CATALOG_URL): Promise<Map<string, Taskserv>> {
  const entries = await (url === CATALOG_URL ? (cached ??= readCatalog(url)) : readCatalog(url));
  return new Map(entries.map((t) => [t.name, t]));
}

async function readCatalog(url: URL): Promise<readonly Taskserv[]> {
  let text: string;
  try {
    text = await readFile(url, 'utf8');
  } catch (e: unknown) {
    cached = undefined;
    throw new CatalogError(
      `cannot read the taskserv catalog ${url.pathname}; run \`npm run build:catalog\``,
      { cause: e },
    );
  }
  return parseCatalog(text, url.pathname);
}

/**
 * Parses and checks the text of a `catalog.json`.
 *
 * @param text The file's content.
 * @param file The file name, for messages.
 *
 * @returns The taskservs, in file order.
 *
 * @throws {CatalogError} When the text is not JSON or an entry does not match `TaskservSchema`.
 */
export function parseCatalog(text: string, file = 'catalog.json'): readonly Taskserv[] {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e: unknown) {
    throw new CatalogError(`${file} is not valid JSON; run \`npm run build:catalog\``, {
      cause: e,
    });
  }
  const result = v.safeParse(CatalogFileSchema, json);
  if (!result.success) {
    const first = result.issues[0];
    const path = first ? v.getDotPath(first) : null;
    throw new CatalogError(
      `${file} does not match the taskserv schema${path ? ` at ${path}` : ''}: ${first?.message ?? 'invalid'}; run \`npm run build:catalog\``,
    );
  }
  return result.output.taskservs;
}
