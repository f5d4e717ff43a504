// Preloaded into every Node process of the test suite (see vitest.config.ts): WebAssembly is
// compiled by V8's baseline compiler, Liftoff, only; hot functions are not compiled again by
// TurboFan in the background. PGlite's Postgres is a large WebAssembly module that the suite
// starts hundreds of times in short-lived processes, where those compiles cost more CPU than
// they save: a `muster run` of the quick start used 3.2 s of CPU with them and 2.0 s without.
// Long-lived processes keep V8's default (PGlite runs ~30% faster once tiered up), so muster
// itself does not set this.
import { setFlagsFromString } from 'node:v8';

setFlagsFromString('--liftoff-only');
