/**
 * How tests and tools start the `muster` CLI as a child process: the compiled CLI in dist/ when
 * it is the build of the current sources (about half the start-up time), else the sources
 * through tsx.
 *
 * @module
 */
import { join } from 'node:path';
import { distIsFresh, ROOT } from './source-stamp.mjs';

export { ROOT };

let fresh: boolean | undefined;

/** Whether dist/ is the build of the current sources (checked once per process). */
export function useDist(): boolean {
  fresh ??= process.env['MUSTER_FROM_SOURCE'] ? false : distIsFresh();
  return fresh;
}

/**
 * `node` arguments that start `muster` (or, with `agent`, the lean agent entry the local provider
 * starts), before the command's own arguments.
 */
export function musterNodeArgs(entry: 'main' | 'agent' = 'main'): string[] {
  const file = entry === 'main' ? 'main' : 'agent-main';
  if (useDist()) return [join(ROOT, 'dist', 'cli', 'src', `${file}.js`)];
  return ['--import', import.meta.resolve('tsx'), join(ROOT, 'cli', 'src', `${file}.ts`)];
}
