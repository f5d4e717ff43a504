/**
 * Compiles `taskservs/<name>/taskserv.cue` into `taskservs/catalog.json`, the catalog Muster loads
 * at run time (`npm run build:catalog`). With `--check`, writes nothing and exits 1 when the file
 * is out of date, for CI.
 *
 * @module
 */
import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import * as prettier from 'prettier';
import { formatProblem, InvalidWorkflowError } from '../schemas/src/problems.ts';
import { CATALOG_URL } from '../taskservs/index.ts';
import { compileCatalog, renderCatalog } from '../taskservs/compile.ts';

const check = process.argv.includes('--check');
const target = fileURLToPath(CATALOG_URL);

try {
  const started = performance.now();
  const catalog = await compileCatalog();
  // Format as `npm run lint` expects, so the generated file passes `prettier --check`.
  const options = (await prettier.resolveConfig(target)) ?? {};
  const text = await prettier.format(renderCatalog(catalog), { ...options, filepath: target });
  const current = await readFile(target, 'utf8').catch(() => undefined);
  const ms = Math.round(performance.now() - started);
  if (check) {
    if (current !== text) {
      process.stderr.write(`${target} is out of date; run \`npm run build:catalog\`\n`);
      process.exit(1);
    }
    process.stdout.write(`${target} is up to date (${catalog.taskservs.length} taskservs)\n`);
  } else {
    if (current !== text) await writeFile(target, text);
    process.stdout.write(
      `${current === text ? 'unchanged' : 'wrote'} ${target}: ${catalog.taskservs.length} taskservs in ${ms} ms\n`,
    );
  }
} catch (e: unknown) {
  if (e instanceof InvalidWorkflowError) {
    const file = e.file === undefined ? {} : { file: e.file };
    process.stderr.write(`${e.problems.map((p) => formatProblem({ ...file, ...p })).join('\n')}\n`);
  } else {
    process.stderr.write(`${e instanceof Error ? e.message : String(e)}\n`);
  }
  process.exit(1);
}
