/**
 * Running the real CLI from source as a child process, from any working directory.
 *
 * @module
 */
import { join } from 'node:path';

/** The repository root. */
export const ROOT = join(import.meta.dirname, '..', '..', '..');

/** `node` arguments that start `muster` from source, before the command's own arguments. */
export const MUSTER_NODE_ARGS: readonly string[] = [
  '--import',
  import.meta.resolve('tsx'),
  join(ROOT, 'cli', 'src', 'main.ts'),
];
