import { defineConfig } from 'vitest/config';

// Every Node process the suite starts (workers, and the CLIs, servers and agents they spawn)
// compiles WebAssembly with Liftoff only: see scripts/liftoff-only.mjs. The full suite took
// 290 s without it and 149 s with it, on the same 2-core machine in the same hour.
const liftoffOnly = new URL('./scripts/liftoff-only.mjs', import.meta.url).href;
process.env['NODE_OPTIONS'] = `${process.env['NODE_OPTIONS'] ?? ''} --import ${liftoffOnly}`.trim();

export default defineConfig({
  test: {
    include: ['**/*.test.ts'],
    exclude: ['node_modules/**', 'dist/**', '.muster/**'],
    testTimeout: 30_000,
    // Vitest defaults to one worker per CPU less one: a single worker on a 2-core machine. Most of
    // our suites wait on child processes and sockets rather than compute, so three share two cores.
    maxWorkers: 3,
    hookTimeout: 60_000,
  },
});
