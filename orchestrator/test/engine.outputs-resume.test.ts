/**
 * Step outputs survive a crash: `muster run` is killed with SIGKILL while the second operation
 * runs, after the first one published an output; `muster run --id` resumes, and the second
 * operation's retried step still renders the first one's output, read from the stored step
 * records, without the first operation running again.
 *
 * @module
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { createStore } from '../src/store/index.ts';
import { MUSTER_NODE_ARGS, ROOT } from './helpers/cli.ts';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function workflow(dir: string) {
  const made = join(dir, 'made.txt');
  const seen = join(dir, 'seen.txt');
  return {
    name: 'outputs-resume',
    logging: { destinations: [] },
    retry_policy: { max_attempts: 5, backoff: 'linear', initial_delay: 0, max_delay: 0 },
    operations: [
      {
        id: 'make',
        type: 'update',
        target: 'cluster',
        items: ['x'],
        steps: [
          {
            name: 'token',
            type: 'script',
            params: {
              command: 'sh',
              args: [
                '-c',
                `t=$(od -An -N8 -tx8 /dev/urandom | tr -d ' '); echo "token=$t" >> "$MUSTER_OUTPUT"; echo "$t" >> '${made}'`,
              ],
            },
          },
          {
            name: 'again',
            type: 'script',
            params: {
              command: 'sh',
              args: ['-c', `echo "step $1" >> '${made}'`, 'sh', '{{ steps.token.outputs.token }}'],
            },
          },
        ],
      },
      {
        id: 'use',
        type: 'update',
        target: 'cluster',
        items: ['x'],
        depends_on: ['make'],
        steps: [
          {
            name: 'see',
            type: 'script',
            params: {
              command: 'sh',
              args: [
                '-c',
                `echo "$MUSTER_ATTEMPT $1" >> '${seen}'; sleep 2`,
                'sh',
                '{{ operations.make.outputs.token }}',
              ],
            },
          },
        ],
      },
    ],
  };
}

function start(dir: string): ChildProcess {
  return spawn(
    process.execPath,
    [
      ...MUSTER_NODE_ARGS,
      'run',
      join(dir, 'wf.json'),
      '--id',
      'out-1',
      '--state-dir',
      join(dir, 'state'),
      '--no-progress',
    ],
    {
      cwd: dir,
      stdio: 'ignore',
      env: { ...process.env, XDG_CACHE_HOME: join(ROOT, 'node_modules', '.cache') },
    },
  );
}

const exited = (child: ChildProcess) =>
  new Promise<number | null>((resolve) => child.on('exit', (code) => resolve(code)));

describe('step outputs across a crash', () => {
  test('a resumed run renders the output an earlier operation published before the crash', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'muster-outputs-'));
    dirs.push(dir);
    writeFileSync(join(dir, 'wf.json'), JSON.stringify(workflow(dir)));
    const seen = join(dir, 'seen.txt');

    const first = start(dir);
    const firstExit = exited(first);
    // Kill it once the second operation's step has started with the rendered output.
    const deadline = Date.now() + 60_000;
    while (!existsSync(seen) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    first.kill('SIGKILL');
    expect(await firstExit).toBeNull();

    expect(await exited(start(dir))).toBe(0);

    const made = readFileSync(join(dir, 'made.txt'), 'utf8').trim().split('\n');
    const token = made[0]!;
    expect(token).toMatch(/^[0-9a-f]{16}$/);
    // The first operation ran once; its second step read the first step's output.
    expect(made).toEqual([token, `step ${token}`]);
    const lines = readFileSync(seen, 'utf8').trim().split('\n');
    expect(lines[0]).toBe(`1 ${token}`);
    // After the resume, a later attempt saw the same output, from the stored step records.
    expect(lines.some((l) => Number(l.split(' ')[0]) >= 2 && l.endsWith(` ${token}`))).toBe(true);
    expect(lines.every((l) => l.endsWith(` ${token}`))).toBe(true);

    const store = await createStore({ pglite: { dataDir: join(dir, 'state', 'pglite') } });
    try {
      const snap = await store.loadRun('out-1');
      expect(snap?.run.status).toBe('succeeded');
      expect(snap?.tasks.find((t) => t.id === 'make:x')?.attempts).toBe(1);
    } finally {
      await store.close();
    }
  }, 120_000);
});
