/**
 * bench/startup: how long a `muster` command takes from exec to exit when it has little to do,
 * against `node -e 0` measured in the same run. Every CLI call pays this, and the Nushell
 * module starts the CLI once per `batch …` command.
 *
 * Commands: `--version`; `validate` and `plan` of a small JSON workflow; `validate` of the quick
 * start's CUE with CUE's cache emptied first (an evaluation, as after every edit); `batch --help` (the client commands); `run` of a one-task workflow on an
 * existing state directory (opening PGlite, the run, closing) and on a fresh one (restoring the
 * database from its cached template first). Medians of `runs` calls each, the compiled CLI in
 * dist/ (run `npm run build` after changing sources).
 *
 * What this found (2026-12-03): every command imported the whole dependency tree; `muster run`
 * let V8 recompile PGlite's WebAssembly with TurboFan, a cost a short run never earns back; and a
 * new state directory was filled by restoring a gzipped dump through PGlite's file system (1.0-1.6
 * s) where copying a directory takes 0.2-0.4 s. Before (ff189e4) and after, medians of 5, the
 * before and after runs in turn in the same minutes (2 vCPU; `node -e 0` 100-135 ms):
 *
 *   command                    before       after
 *   --version                  730-850 ms   130-140 ms
 *   validate                   390-410 ms   230-310 ms
 *   validate, CUE             1330-1360 ms  800-840 ms (single runs)
 *   plan                       380-410 ms   230-240 ms
 *   batch --help               290-350 ms   220-260 ms
 *   run, existing state       2130-2300 ms 1100-1160 ms
 *   run, fresh state          3300-3630 ms 1390 ms (2340-2510 before the directory template)
 *
 * Run: `npm run bench:startup` (or `npx tsx bench/startup.ts 9` for 9 calls a command).
 *
 * @module
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { availableParallelism, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { musterNodeArgs, ROOT, useDist } from '../scripts/muster-entry.ts';

/** A workflow with one echo task. */
const ONE_TASK = {
  name: 'one-task',
  operations: [
    {
      id: 'say',
      type: 'update',
      target: 'cluster',
      items: ['main'],
      steps: [{ name: 'say', type: 'echo', params: { message: 'hi' } }],
    },
  ],
};

/** The quick start's workflow: CUE, 5 operations, 20 tasks. */
const QUICK_START = join(ROOT, 'examples', 'quickstart.cue');

/** Milliseconds from exec to exit of `node ARGS` (its output discarded). */
function wall(args: readonly string[], cwd: string): number {
  const start = performance.now();
  execFileSync(process.execPath, args, { cwd, stdio: 'ignore' });
  return performance.now() - start;
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

function main(runs: number): void {
  const load = () => `${loadavg()[0]!.toFixed(1)} on ${availableParallelism()} CPUs`;
  console.log(`load average ${load()} at the start`);
  if (!useDist()) console.log('dist/ is stale: timing the sources through tsx (npm run build)');
  const dir = mkdtempSync(join(tmpdir(), 'muster-bench-startup-'));
  try {
    const file = join(dir, 'one-task.json');
    writeFileSync(file, JSON.stringify(ONE_TASK));
    const muster = (...args: string[]) => [...musterNodeArgs(), ...args];
    const state = join(dir, 'state');
    let fresh = 0;
    const commands: Array<[string, () => readonly string[]]> = [
      ['node -e 0', () => ['-e', '0']],
      ['muster --version', () => muster('--version')],
      ['muster validate', () => muster('validate', file)],
      [
        'muster validate, CUE',
        () => {
          // CUE's results are cached under the working directory: time an evaluation.
          rmSync(join(dir, '.muster', 'cache'), { recursive: true, force: true });
          return muster('validate', QUICK_START);
        },
      ],
      ['muster plan', () => muster('plan', file)],
      ['muster batch --help', () => muster('batch', '--help')],
      [
        'muster run, existing state',
        () => muster('run', file, '--state-dir', state, '--no-progress'),
      ],
      [
        'muster run, fresh state',
        () => muster('run', file, '--state-dir', join(dir, `fresh-${fresh++}`), '--no-progress'),
      ],
    ];
    wall(muster('run', file, '--state-dir', state, '--no-progress'), dir); // creates `state`
    const times = new Map(commands.map(([name]) => [name, [] as number[]]));
    // Commands take turns, so a busy moment on the machine spreads over all of them.
    for (let r = 0; r < runs; r++) {
      for (const [name, args] of commands) times.get(name)!.push(wall(args(), dir));
    }
    const baseline = median(times.get('node -e 0')!);
    console.log(
      `${'command'.padEnd(28)}  ${'median'.padStart(8)}  ${'best'.padStart(8)}  node -e 0`,
    );
    for (const [name] of commands) {
      const t = times.get(name)!;
      console.log(
        [
          name.padEnd(28),
          `${median(t).toFixed(0)} ms`.padStart(8),
          `${Math.min(...t).toFixed(0)} ms`.padStart(8),
          `${(median(t) / baseline).toFixed(1)}x`.padStart(9),
        ].join('  '),
      );
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  console.log(`load average ${load()} at the end`);
}

const runs = Number(process.argv[2] ?? 5);
main(Number.isInteger(runs) && runs > 0 ? runs : 5);
