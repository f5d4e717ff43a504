/**
 * Compiles the taskserv sources (`taskservs/<name>/taskserv.cue`) into the catalog that
 * `loadCatalog` reads, and checks the catalog as a whole: folder names match taskserv names, and
 * `requires` / `conflicts_with` name taskservs that exist.
 *
 * Used by `scripts/build-catalog.ts` and by the test that keeps `catalog.json` in sync.
 *
 * @module
 */
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { loadTaskservFile } from '../schemas/src/load.ts';
import { didYouMean, formatProblem } from '../schemas/src/problems.ts';
import type { Problem } from '../schemas/src/problems.ts';
import type { Taskserv } from '../schemas/src/workflow.ts';
import { CatalogError } from './index.ts';
import type { CatalogFile } from './index.ts';

/** The folder holding one sub-folder per taskserv: this module's own folder. */
export const TASKSERVS_DIR = fileURLToPath(new URL('.', import.meta.url));

/** The file each taskserv folder holds. */
export const TASKSERV_FILE = 'taskserv.cue';

/**
 * Lists the taskserv source files, sorted by folder name.
 *
 * @param dir The catalog folder.
 *
 * @returns Absolute paths of every `<dir>/<name>/taskserv.cue`.
 */
export async function listTaskservSources(dir: string = TASKSERVS_DIR): Promise<string[]> {
  const entries = await readdir(dir, { withFileTypes: true });
  const folders = entries
    .filter((e) => e.isDirectory() && !e.name.startsWith('.') && e.name !== 'node_modules')
    .map((e) => e.name)
    .sort();
  const files: string[] = [];
  for (const folder of folders) {
    const inner = await readdir(join(dir, folder));
    if (inner.includes(TASKSERV_FILE)) files.push(join(dir, folder, TASKSERV_FILE));
  }
  return files;
}

/**
 * Compiles every taskserv source of a folder into a catalog, sorted by name.
 *
 * @param dir The catalog folder.
 *
 * @returns The catalog, defaults filled in.
 *
 * @throws {InvalidWorkflowError} When a source does not validate (from the loader).
 * @throws {CatalogError} When the catalog as a whole is inconsistent (see `checkCatalog`).
 */
export async function compileCatalog(dir: string = TASKSERVS_DIR): Promise<CatalogFile> {
  const files = await listTaskservSources(dir);
  const entries: Array<{ folder: string; taskserv: Taskserv; file: string }> = [];
  // One at a time: CUE evaluation is serialised anyway.
  for (const file of files) {
    const taskserv = await loadTaskservFile(file);
    entries.push({ folder: file.split(/[\\/]/).at(-2) ?? '', taskserv, file });
  }
  const problems = checkCatalog(entries);
  if (problems.length > 0) {
    throw new CatalogError(
      `the taskserv catalog has ${problems.length} problem${problems.length === 1 ? '' : 's'}:\n` +
        problems.map((p) => `  ${formatProblem(p)}`).join('\n'),
    );
  }
  const taskservs = entries.map((e) => e.taskserv).sort((a, b) => compare(a.name, b.name));
  return { taskservs };
}

/**
 * Checks a catalog as a whole.
 *
 * @param entries The taskservs, each with the folder it came from and, optionally, its file.
 *
 * @returns Every problem: a folder/name mismatch, a duplicate name, a `requires` or
 * `conflicts_with` naming no taskserv, a taskserv requiring itself or one it conflicts with, and
 * cycles through `requires`.
 */
export function checkCatalog(
  entries: ReadonlyArray<{ folder?: string; taskserv: Taskserv; file?: string }>,
): Problem[] {
  const problems: Problem[] = [];
  const names = new Set<string>();
  for (const { folder, taskserv, file } of entries) {
    const at = file === undefined ? {} : { file };
    if (folder !== undefined && folder !== taskserv.name) {
      problems.push({
        code: 'catalog-name',
        path: 'name',
        message: `the taskserv in folder "${folder}" is named "${taskserv.name}"`,
        expected: `"${folder}"`,
        received: `"${taskserv.name}"`,
        hint: 'rename the folder or the taskserv so they match',
        ...at,
      });
    }
    if (names.has(taskserv.name)) {
      problems.push({
        code: 'duplicate-id',
        path: 'name',
        message: `taskserv "${taskserv.name}" is defined twice`,
        ...at,
      });
    }
    names.add(taskserv.name);
  }
  for (const { taskserv, file } of entries) {
    const at = file === undefined ? {} : { file };
    for (const field of ['requires', 'conflicts_with'] as const) {
      taskserv[field].forEach((name, i) => {
        if (name === taskserv.name) {
          problems.push({
            code: 'self-reference',
            path: `${field}[${i}]`,
            message: `taskserv "${taskserv.name}" lists itself in ${field}`,
            ...at,
          });
        } else if (!names.has(name)) {
          const hint = didYouMean(name, names);
          problems.push({
            code: 'unknown-taskserv',
            path: `${field}[${i}]`,
            message: `taskserv "${taskserv.name}" names "${name}", which is not in the catalog`,
            ...(hint === undefined ? {} : { hint }),
            ...at,
          });
        }
      });
    }
    taskserv.requires.forEach((name, i) => {
      if (taskserv.conflicts_with.includes(name)) {
        problems.push({
          code: 'conflict',
          path: `requires[${i}]`,
          message: `taskserv "${taskserv.name}" both requires and conflicts with "${name}"`,
          ...at,
        });
      }
    });
  }
  problems.push(...findRequireCycles(entries.map((e) => e.taskserv)));
  return problems;
}

/** Cycles through `requires`, each reported once as `a → b → a`. */
function findRequireCycles(taskservs: readonly Taskserv[]): Problem[] {
  const byName = new Map(taskservs.map((t) => [t.name, t]));
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const problems: Problem[] = [];
  const visit = (name: string): void => {
    state.set(name, 'open');
    stack.push(name);
    for (const next of byName.get(name)?.requires ?? []) {
      if (!byName.has(next)) continue;
      const seen = state.get(next);
      if (seen === 'open') {
        const cycle = [...stack.slice(stack.indexOf(next)), next];
        problems.push({
          code: 'cycle',
          path: 'requires',
          message: `taskservs require each other: ${cycle.join(' → ')}`,
          hint: 'remove one of these requires',
        });
      } else if (seen === undefined) {
        visit(next);
      }
    }
    stack.pop();
    state.set(name, 'done');
  };
  for (const t of taskservs) if (!state.has(t.name)) visit(t.name);
  return problems;
}

/**
 * Renders a catalog as stable, pretty JSON (the content of `catalog.json`, before prettier).
 *
 * @param catalog The compiled catalog.
 *
 * @returns JSON text ending in a newline.
 */
export function renderCatalog(catalog: CatalogFile): string {
  return `${JSON.stringify(catalog, null, 2)}\n`;
}

function compare(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
