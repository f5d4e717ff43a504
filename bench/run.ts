/**
 * bench/run: what a user waits for when `muster run` drives many small tasks on the embedded
 * default, against the engine alone on the same kind of store, measured in the same run.
 *
 * - `muster run`: a real process on a workflow of N echo tasks in one operation, with a
 *   file-backed PGlite under a fresh state directory, `--no-progress` (the event log still goes to
 *   stderr and the daily file). Its start-up and shutdown are measured on a one-task workflow
 *   and taken off, so `tasks/s` is what each further task costs.
 * - the engine alone: the same N tasks driven in this process by `RunDriver` with a no-op
 *   dispatcher on a file-backed PGlite (bench/engine's `drive`): no executor, no steps, no logs.
 *
 * What this found (2026-12-03): 20,000 echo tasks took 24 s, one commit per task, because every
 * task finished in its own I/O callback and committed there; grouping the commits of callbacks
 * already queued made it 11.6 s and 637 commits.
 *
 * Run: `npm run bench:run` (or `npx tsx bench/run.ts 2000 20000`).
 *
 * @module
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createStore } from '../orchestrator/src/store/index.ts';
import { musterNodeArgs } from '../scripts/muster-entry.ts';
import { drive, flat } from './engine.ts';

function echoWorkflow(n: number) {
  const items = Array.from({ length: n }, (_, i) => `t${i}`);
  return {
    name: `echo-${n}`,
    operations: [
      {
        id: 'say',
        type: 'update',
        target: 'cluster',
        items,
        steps: [{ name: 'say', type: 'echo', params: { message: 'hi' } }],
      },
    ],
  };
}

/** Wall time of `muster run` on `n` echo tasks, in a fresh state directory (ms). */
function musterRun(dir: string, n: number): number {
  const file = join(dir, `echo-${n}.json`);
  writeFileSync(file, JSON.stringify(echoWorkflow(n)));
  const state = mkdtempSync(join(dir, 'state-'));
  const start = performance.now();
  execFileSync(
    process.execPath,
    [...musterNodeArgs(), 'run', file, '--no-progress', '--state-dir', state],
    { cwd: dir, stdio: 'ignore' },
  );
  return performance.now() - start;
}

async function engineAlone(dir: string, n: number): Promise<number> {
  const store = await createStore({ pglite: { dataDir: mkdtempSync(join(dir, 'engine-')) } });
  try {
    await drive(store, flat(200)); // warm-up
    const r = await drive(store, flat(n));
    return (r.tasks / r.ms) * 1000;
  } finally {
    await store.close();
  }
}

async function main(sizes: readonly number[]): Promise<void> {
  const load = () => `${loadavg()[0]!.toFixed(1)} on ${availableParallelism()} CPUs`;
  console.log(`load average ${load()} at the start`);
  const dir = mkdtempSync(join(tmpdir(), 'muster-bench-run-'));
  try {
    const startUp = Math.min(musterRun(dir, 1), musterRun(dir, 1));
    console.log(`muster run of one task (start-up and shutdown): ${startUp.toFixed(0)} ms`);
    console.log(
      ['tasks'.padStart(7), 'muster run'.padStart(11), 'tasks/s', 'engine alone', 'ratio'].join(
        '  ',
      ),
    );
    for (const n of sizes) {
      const wall = musterRun(dir, n);
      const rate = (n / Math.max(1, wall - startUp)) * 1000;
      const engine = await engineAlone(dir, n);
      console.log(
        [
          String(n).padStart(7),
          `${(wall / 1000).toFixed(1)} s`.padStart(11),
          rate.toFixed(0).padStart(7),
          `${engine.toFixed(0)} tasks/s`.padStart(12),
          `${(rate / engine).toFixed(2)}x`.padStart(5),
        ].join('  '),
      );
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  console.log(`load average ${load()} at the end`);
}

const sizes = process.argv
  .slice(2)
  .map(Number)
  .filter((n) => Number.isInteger(n) && n > 0);
await main(sizes.length > 0 ? sizes : [2_000, 20_000]);
