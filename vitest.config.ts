import { defineConfig } from 'vitest/config';

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
