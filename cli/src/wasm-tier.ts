/**
 * How V8 compiles the WebAssembly a command runs: the CUE evaluator and PGlite's Postgres.
 *
 * By default V8 compiles each function with Liftoff, its baseline compiler, then the hot ones
 * again with TurboFan in the background, and waits for those compiles at exit. A command that
 * lives a second or two pays for them without living long enough to gain. Measured on 2 cores:
 * - `muster run` of one task: 2.0-2.2 s -> 1.3-1.4 s; 1k and 5k echo tasks as fast or faster
 *   with 30% less CPU and 80 MB less memory; 10k tasks 5-13% slower.
 * - `muster validate` of a CUE file not in the cache: quick start 1.35 -> 0.8 s, 200 operations
 *   (32 KB) 1.6 -> 1.2 s, 600 (96 KB) the same, 2,000 (320 KB) 4.1 -> 4.9 s.
 *
 * So the one-shot commands (`validate`, `plan`, `run`) use Liftoff alone, `validate` and `plan`
 * only for CUE sources up to {@link SMALL_CUE_BYTES}. `muster server` and agents live long and
 * keep V8's default: a PGlite that has tiered up runs about 30% faster.
 *
 * @module
 */
import { statSync } from 'node:fs';
import { setFlagsFromString } from 'node:v8';

/** CUE sources up to this size evaluate faster with Liftoff alone (see above). */
export const SMALL_CUE_BYTES = 64 * 1024;

/** Compiles WebAssembly with Liftoff alone from now on, in this process. */
export function compileWasmForShortRuns(): void {
  setFlagsFromString('--liftoff-only');
}

/**
 * {@link compileWasmForShortRuns} when the CUE among `files` is small; JSON and YAML run no
 * WebAssembly. A file that cannot be read counts as nothing: its error comes later, from the
 * loader.
 */
export function compileWasmForShortRunsIfSmall(files: readonly string[]): void {
  let bytes = 0;
  for (const file of files) {
    if (!file.endsWith('.cue')) continue;
    try {
      bytes += statSync(file).size;
    } catch {
      // reported by the loader
    }
  }
  if (bytes <= SMALL_CUE_BYTES) compileWasmForShortRuns();
}
