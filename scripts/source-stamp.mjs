// A hash of what `npm run build` compiles into dist/, so that tools can tell whether dist/ is
// the build of the sources beside it: tests then start the compiled CLI (about half the start-up
// time of tsx) and fall back to the sources when it is stale.
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('..', import.meta.url));
/** Where the stamp of the last build is written. */
export const STAMP_FILE = join(ROOT, 'dist', '.source-stamp');

const INPUTS = ['schemas', 'orchestrator/src', 'cli/src', 'providers', 'taskservs'];
const SKIP = /(^|\/)(node_modules|test|fixtures)(\/|$)|\.test\.ts$|\.test-d\.ts$/;

/** The hash of every build input (paths and contents), in a stable order. */
export function sourceStamp() {
  const hash = createHash('sha256');
  const files = [];
  const walk = (dir) => {
    for (const entry of readdirSync(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      const rel = relative(ROOT, path);
      if (SKIP.test(rel)) continue;
      if (entry.isDirectory()) walk(path);
      else if (statSync(path).isFile()) files.push(rel);
    }
  };
  for (const input of INPUTS) walk(join(ROOT, input));
  for (const file of files.sort())
    hash
      .update(file)
      .update('\0')
      .update(readFileSync(join(ROOT, file)));
  for (const config of ['tsconfig.json', 'tsconfig.build.json', 'package-lock.json']) {
    hash.update(readFileSync(join(ROOT, config)));
  }
  return hash.digest('hex');
}

/** Whether dist/ is the build of the current sources. */
export function distIsFresh() {
  try {
    return readFileSync(STAMP_FILE, 'utf8').trim() === sourceStamp();
  } catch {
    return false;
  }
}
