/**
 * Crash safety, as a user would see it: `muster run` as a real child process, killed with SIGKILL
 * at random moments and started again with the same `--id` until the run finishes.
 *
 * Every step appends `task attempt` to a log file. Then, for every task:
 * - no (task, attempt) pair appears twice — an attempt's intent is durable before its side effect;
 * - nothing ran after the attempt the store recorded as the one that succeeded — a finished task
 *   is never run again;
 * - the task succeeded, and the run did.
 *
 * @module
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { createStore } from '../src/store/index.ts';
import { MUSTER_NODE_ARGS, ROOT } from './helpers/cli.ts';

const RUNS = 2;
const KILLS_PER_RUN = 10; // 20 kill-and-restart trials in all
const dirs: string[] = [];

afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function workflow(log: string) {
  const step = (name: string, ms: number) => ({
    name,
    type: 'script',
    params: {
      command: 'sh',
      args: [
        '-c',
        `echo "$MUSTER_TASK_ID $MUSTER_ATTEMPT ${name}" >> '${log}'; sleep ${ms / 1000}`,
      ],
    },
  });
  const op = (id: string, depends_on: string[]) => ({
    id,
    type: 'update',
    target: 'cluster',
    items: ['a', 'b', 'c'],
    depends_on,
    // Steps long against the kill window below, so that most kills land in the middle of one.
    steps: [step('first', 150), step('second', 100)],
  });
  return {
    name: 'crash-test',
    retry_policy: { max_attempts: 50, backoff: 'linear', initial_delay: 0, max_delay: 0 },
    operations: [
      op('one', []),
      op('two', ['one']),
      op('three', ['one']),
      op('four', ['two', 'three']),
    ],
  };
}

/**
 * Runs `muster run` once. With `kill`, kills it that many ms after it says it is running (or, with
 * `duringStartup`, that many ms after spawning). Resolves with the exit code (null when killed).
 */
function runOnce(
  dir: string,
  runId: string,
  kill?: { afterMs: number; duringStartup?: boolean },
): Promise<number | null> {
  return new Promise((resolve, reject) => {
    const child = spawn(
      process.execPath,
      [
        ...MUSTER_NODE_ARGS,
        'run',
        join(dir, 'wf.json'),
        '--id',
        runId,
        '--state-dir',
        join(dir, 'state'),
        '--no-progress',
        '--concurrency',
        '3',
      ],
      {
        cwd: dir,
        stdio: ['ignore', 'ignore', 'pipe'],
        env: { ...process.env, XDG_CACHE_HOME: join(ROOT, 'node_modules', '.cache') },
      },
    );
    let stderr = '';
    let timer: NodeJS.Timeout | undefined;
    const arm = () => (timer ??= setTimeout(() => child.kill('SIGKILL'), kill!.afterMs));
    if (kill?.duringStartup) arm();
    child.stderr.on('data', (d: Buffer) => {
      stderr += d.toString();
      if (kill && /^(running|resuming) /m.test(stderr)) arm();
    });
    child.on('error', reject);
    child.on('exit', (code) => {
      clearTimeout(timer);
      if (code !== null && code !== 0) reject(new Error(`muster run exited ${code}: ${stderr}`));
      else resolve(code);
    });
  });
}

async function crashAndResume(
  index: number,
): Promise<{ kills: number; dir: string; runId: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'muster-crash-'));
  dirs.push(dir);
  const log = join(dir, 'steps.log');
  writeFileSync(join(dir, 'wf.json'), JSON.stringify(workflow(log)));
  const runId = `crash-${index}`;
  let kills = 0;
  for (let i = 0; i < KILLS_PER_RUN; i++) {
    // The first kill lands anywhere in start-up (opening the database, planning); the others
    // in the run itself, within about one round of tasks: each life of the process finishes a
    // round or less, so a run takes several, however fast the machine starts it.
    const code = await runOnce(
      dir,
      runId,
      i === 0
        ? { afterMs: Math.floor(Math.random() * 3000), duringStartup: true }
        : { afterMs: Math.floor(Math.random() * 400) },
    );
    if (code === 0) break; // finished before the kill came
    kills++;
  }
  await runOnce(dir, runId);
  return { kills, dir, runId };
}

describe('muster run under SIGKILL', () => {
  test(`${RUNS * KILLS_PER_RUN} kill-and-restart trials: no finished step runs twice, every run finishes`, async () => {
    const results = await Promise.all(Array.from({ length: RUNS }, (_, i) => crashAndResume(i)));
    let totalKills = 0;
    for (const { kills, dir, runId } of results) {
      totalKills += kills;
      let interrupted = 0;
      const lines = readFileSync(join(dir, 'steps.log'), 'utf8').trim().split('\n');
      const seen = new Set<string>();
      for (const line of lines) {
        expect(seen.has(line), `step ran twice in one attempt: ${line}`).toBe(false);
        seen.add(line);
      }
      const store = await createStore({ pglite: { dataDir: join(dir, 'state', 'pglite') } });
      try {
        const snap = await store.loadRun(runId);
        expect(snap?.run.status).toBe('succeeded');
        const attempts = await store.attempts(runId);
        for (const task of snap!.tasks) {
          expect(task.status).toBe('succeeded');
          const winning = attempts.find((a) => a.taskId === task.id && a.status === 'succeeded');
          expect(winning?.attempt).toBe(task.attempts);
          const ran = lines
            .filter((l) => l.startsWith(`${task.id} `))
            .map((l) => Number(l.split(' ')[1]));
          expect(Math.max(...ran), `${task.id} ran after it had finished`).toBe(task.attempts);
          // The winning attempt ran both steps exactly once.
          expect(lines.filter((l) => l.startsWith(`${task.id} ${task.attempts} `))).toHaveLength(2);
          if (task.attempts > 1) interrupted++;
        }
        // Some kill landed in the middle of a task, which a later life ran again.
        expect(interrupted, `${runId}: ${kills} kills, none in a task`).toBeGreaterThan(0);
      } finally {
        await store.close();
      }
    }
    // The kills must have happened for the test to mean anything.
    expect(totalKills).toBeGreaterThanOrEqual(RUNS * KILLS_PER_RUN * 0.5);
  }, 240_000);
});
