/**
 * The runnable examples, run for real: `muster run` from source in a child process, each in its
 * own state directory, with local servers served by real agent processes. The assertions read the
 * summary the CLI prints, its logs, and the files in each server's sandbox.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { loadWorkflowFile } from '../schemas/src/load.ts';
import { MUSTER_NODE_ARGS } from '../orchestrator/test/helpers/cli.ts';
import type { RunSummary } from '../orchestrator/src/status.ts';

const DIR = fileURLToPath(new URL('.', import.meta.url));
/** A whole `muster run`, agents included, on a busy machine. */
const RUN_TIMEOUT = 240_000;

let work: string;
beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'muster-examples-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `muster ARGS` in `cwd`. */
function muster(args: readonly string[], cwd: string): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [...MUSTER_NODE_ARGS, ...args],
      { cwd, maxBuffer: 64 * 1024 * 1024, timeout: RUN_TIMEOUT - 10_000 },
      (error, stdout, stderr) => {
        const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
        resolve({ code, stdout, stderr });
      },
    );
  });
}

/** Runs an example with `-o json` in a fresh state directory, and reads its summary. */
async function run(example: string, name: string, extra: readonly string[] = []) {
  const stateDir = join(work, name);
  const file = example.startsWith('/') ? example : join(DIR, example);
  const result = await muster(
    ['run', file, '--state-dir', stateDir, '--no-progress', '-o', 'json', ...extra],
    work,
  );
  return { ...result, stateDir, summary: summaryOf(result) };
}

/** The summary: with `-o json`, stdout is the summary alone (logs go to stderr). */
function summaryOf(result: CliResult): RunSummary {
  try {
    return JSON.parse(result.stdout) as RunSummary;
  } catch {
    throw new Error(`no summary (exit ${result.code}):\n${result.stdout}\n${result.stderr}`);
  }
}

const sandbox = (stateDir: string, server: string, path: string) =>
  join(stateDir, 'servers', server, path);
const read = (stateDir: string, server: string, path: string) =>
  readFile(sandbox(stateDir, server, path), 'utf8');

/** When each task of an operation started, from the CLI's text log lines (on stderr). */
function startTimes(log: string, operation: string): Map<string, number> {
  const starts = new Map<string, number>();
  const pattern = new RegExp(`^(\\S+) INFO\\s+task started .*task=${operation}:([\\w-]+)@`);
  for (const line of log.split('\n')) {
    const m = pattern.exec(line);
    if (m) starts.set(m[2]!, Date.parse(m[1]!));
  }
  return starts;
}

// Each example runs in its own state directory with its own agents: they run side by side.
describe.concurrent('rollback-demo', () => {
  test(
    'fails on demo-3 after demo-1 and demo-2 succeeded, and undoes everything it did',
    async () => {
      const { code, summary, stderr, stateDir } = await run('rollback-demo.cue', 'rollback');
      expect(code).toBe(3);
      expect(summary.status).toBe('rolled_back');
      expect(summary.tasks).toMatchObject({ total: 6, rolled_back: 6 });
      expect(stderr).toContain('migration failed on purpose');
      // The release rolled one server at a time: demo-3 last, after the others.
      const starts = startTimes(stderr, 'release');
      expect([...starts.keys()]).toEqual(['demo-1', 'demo-2', 'demo-3']);
      for (const server of ['demo-1', 'demo-2', 'demo-3']) {
        // file_write put the baseline back; the switch was undone; nothing of 2.0.0 is left.
        expect(await read(stateDir, server, 'app/VERSION')).toBe('1.0.0\n');
        expect(existsSync(sandbox(stateDir, server, 'app/current'))).toBe(false);
        expect(existsSync(sandbox(stateDir, server, 'app/releases/2.0.0'))).toBe(false);
      }
      // Undone newest first; demo-3's migration never succeeded, so it had nothing to revert.
      expect(await read(stateDir, 'demo-1', 'app/ROLLBACK.log')).toBe(
        'demo-1: migration reverted\ndemo-1: switched back from 2.0.0\n',
      );
      expect(await read(stateDir, 'demo-3', 'app/ROLLBACK.log')).toBe(
        'demo-3: switched back from 2.0.0\n',
      );
    },
    RUN_TIMEOUT,
  );
});

describe.concurrent('four-phase-local', () => {
  test(
    'creates the servers, installs base and app taskservs, and passes every health check',
    async () => {
      const { code, summary, stateDir } = await run('four-phase-local.cue', 'four-phase');
      expect(code).toBe(0);
      expect(summary.status).toBe('succeeded');
      expect(summary.operations.map((o) => [o.id, o.level, o.status])).toEqual([
        ['create-servers', 0, 'succeeded'],
        ['install-base', 1, 'succeeded'],
        ['install-app', 2, 'succeeded'],
        ['health', 3, 'succeeded'],
      ]);
      // 3 servers; base-tools and motd on 3; demo-app on 2; 8 health checks.
      expect(summary.tasks).toMatchObject({ total: 19, succeeded: 19 });
      for (const server of ['local-cp-0', 'local-strg-0', 'local-worker-0']) {
        expect(await read(stateDir, server, 'etc/motd')).toContain('managed by Muster');
        expect(existsSync(sandbox(stateDir, server, 'bin/muster-info'))).toBe(true);
      }
      expect(await read(stateDir, 'local-cp-0', 'demo-app/VERSION')).toBe('1.2.0\n');
      expect(await read(stateDir, 'local-worker-0', 'demo-app/VERSION')).toBe('1.2.0\n');
      expect(existsSync(sandbox(stateDir, 'local-strg-0', 'demo-app'))).toBe(false);
    },
    RUN_TIMEOUT,
  );
});

describe.concurrent('canary-rollout', () => {
  test(
    'manual: the canary, a pause, then --approve rolls the rest out two at a time',
    async () => {
      const id = 'canary-demo';
      const first = await run('canary-rollout.cue', 'canary', ['--id', id]);
      expect(first.code).toBe(0);
      expect(first.summary.status).toBe('paused');
      expect(first.stderr).toContain('operation awaiting approval');
      expect(first.stderr).toContain(`--id ${id} --approve`);
      const deploy = first.summary.operations.find((o) => o.id === 'deploy');
      expect(deploy?.tasks).toMatchObject({ succeeded: 1, pending: 4 });
      const { stateDir } = first;
      expect(await read(stateDir, 'web-1', 'web/VERSION')).toBe('2.1.0\n');
      expect(existsSync(sandbox(stateDir, 'web-2', 'web/VERSION'))).toBe(false);

      const second = await run('canary-rollout.cue', 'canary', ['--id', id, '--approve']);
      expect(second.code).toBe(0);
      expect(second.summary.status).toBe('succeeded');
      expect(second.summary.tasks).toMatchObject({ total: 15, succeeded: 15 });
      for (const server of ['web-1', 'web-2', 'web-3', 'web-4', 'web-5']) {
        expect(await read(stateDir, server, 'web/VERSION')).toBe('2.1.0\n');
        expect(await read(stateDir, server, 'web/current/app.conf')).toContain('2.1.0');
      }
      // After the canary: web-2 and web-3 together, then (a second later) web-4 and web-5.
      const starts = startTimes(second.stderr, 'deploy');
      expect([...starts.keys()].sort()).toEqual(['web-2', 'web-3', 'web-4', 'web-5']);
      const batch2 = Math.max(starts.get('web-2')!, starts.get('web-3')!);
      const batch3 = Math.min(starts.get('web-4')!, starts.get('web-5')!);
      expect(batch3 - batch2).toBeGreaterThanOrEqual(1000);
    },
    RUN_TIMEOUT * 2,
  );

  test(
    'auto: with canary_promotion "auto" one run goes all the way',
    async () => {
      // The same workflow with the promotion the comments show, as JSON.
      const { workflow } = await loadWorkflowFile(join(DIR, 'canary-rollout.cue'));
      const auto = {
        ...workflow,
        operations: workflow.operations.map((o) =>
          o.rollout ? { ...o, rollout: { ...o.rollout, canary_promotion: 'auto' } } : o,
        ),
      };
      const file = join(work, 'canary-auto.json');
      await writeFile(file, JSON.stringify(auto));
      const { code, summary, stderr } = await run(file, 'canary-auto');
      expect(code).toBe(0);
      expect(summary.status).toBe('succeeded');
      expect(stderr).not.toContain('awaiting approval');
      const starts = startTimes(stderr, 'deploy');
      // The canary first, alone.
      expect(Math.min(...[...starts.values()])).toBe(starts.get('web-1'));
    },
    RUN_TIMEOUT,
  );
});
