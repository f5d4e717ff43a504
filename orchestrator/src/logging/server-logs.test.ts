import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import type { RunEvent } from '../engine/types.ts';
import { createDailyFilePool } from './file-pool.ts';
import { createRunLogs } from './run-logs.ts';
import { confineLogPath, createServerRunLogs, logPathProblem } from './server-logs.ts';

const tmp = mkdtempSync(join(tmpdir(), 'muster-server-logs-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const T0 = Date.parse('2025-03-10T12:00:00Z');
const DAY = 86_400_000;

let seq = 0;
function event(runId: string, type: RunEvent['type'], data: unknown = {}): RunEvent {
  seq++;
  return {
    id: seq,
    runId,
    seq,
    type,
    at: new Date(T0),
    operationId: type.startsWith('run:') ? null : 'install',
    taskId: type.startsWith('run:') ? null : 'install:os@web-1',
    data: data as never,
  };
}

const lines = (file: string) =>
  readFileSync(file, 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);

describe('logPathProblem', () => {
  test.each([
    ['logs/workflows', undefined],
    ['./logs', undefined],
    ['', undefined],
    ['a/../b', undefined],
    ['deploy..old/x', undefined],
    ['/etc/muster', 'is absolute'],
    ['/var/log/../../etc', 'is absolute'],
    ['C:\\logs', 'is absolute'],
    ['..', "climbs out of the server's log directory"],
    ['../../etc', "climbs out of the server's log directory"],
    ['logs/../../x', "climbs out of the server's log directory"],
    ['logs\0/x', 'holds a NUL character'],
  ])('%j: %s', (path, reason) => {
    expect(logPathProblem(path)).toBe(reason);
  });
});

describe('confineLogPath', () => {
  test('resolves inside the log directory, making the directory', () => {
    const logDir = join(tmp, 'confine', 'logs');
    expect(confineLogPath(logDir, 'runs/a')).toEqual({ dir: join(logDir, 'runs', 'a') });
    expect(existsSync(logDir)).toBe(true);
    expect(confineLogPath(logDir, '../x')).toEqual({
      refused: "climbs out of the server's log directory",
    });
  });

  test('refuses a symbolic link that leads out, and a broken one', () => {
    const logDir = join(tmp, 'links', 'logs');
    const outside = join(tmp, 'links', 'outside');
    mkdirSync(logDir, { recursive: true });
    mkdirSync(outside);
    symlinkSync(outside, join(logDir, 'out'));
    symlinkSync(join(logDir, 'runs'), join(logDir, 'in'));
    symlinkSync(join(tmp, 'links', 'nowhere'), join(logDir, 'broken'));
    mkdirSync(join(logDir, 'runs'));
    expect(confineLogPath(logDir, 'out/deeper/still')).toEqual({
      refused: "goes through a symbolic link out of the server's log directory",
    });
    expect(confineLogPath(logDir, 'broken/x')).toEqual({
      refused: 'goes through a broken symbolic link',
    });
    // A link that stays inside is fine.
    expect(confineLogPath(logDir, 'in/x')).toEqual({ dir: join(logDir, 'in', 'x') });
    expect(readdirSync(outside)).toEqual([]);
  });
});

describe('createDailyFilePool', () => {
  test('runs writing to one directory share one file until the last lets go', () => {
    const dir = join(tmp, 'pool');
    const pool = createDailyFilePool();
    const a = pool.open({ dir, retentionDays: 30, now: () => T0 });
    const b = pool.open({ dir, retentionDays: 30, now: () => T0 });
    expect(pool.size).toBe(1);
    a.write('a\n');
    b.write('b\n');
    a.close();
    a.close();
    // Dropped: a closed handle never opens the file again.
    a.write('late\n');
    expect(pool.size).toBe(1);
    b.write('b2\n');
    b.close();
    expect(pool.size).toBe(0);
    expect(readFileSync(join(dir, 'muster-2025-03-10.log'), 'utf8')).toBe('a\nb\nb2\n');
  });

  test('never opens the day’s file through a symbolic link when told not to', () => {
    const dir = join(tmp, 'nofollow');
    mkdirSync(dir);
    const target = join(tmp, 'nofollow-target.txt');
    writeFileSync(target, 'untouched\n');
    symlinkSync(target, join(dir, 'muster-2025-03-10.log'));
    const pool = createDailyFilePool();
    expect(() =>
      pool.open({ dir, retentionDays: 30, now: () => T0, followSymlinks: false }),
    ).toThrow(/ELOOP|symbolic link/);
    expect(readFileSync(target, 'utf8')).toBe('untouched\n');
    pool.close();
  });
});

describe('createRunLogs', () => {
  const source = (path: string) => ({
    getRun: async () => ({
      name: 'wf',
      workflow: { logging: { path, destinations: ['file'], level: 'debug' } },
    }),
  });

  test('a run ended then retried logs again to the same file, in order', async () => {
    const dir = join(tmp, 'retried');
    const logs = createRunLogs(source(dir), { now: () => T0 });
    // Given at once, as the orchestrator's listeners are: the log is opened again for the retry.
    const given = [
      event('r1', 'run:started', { resumed: false }),
      event('r1', 'run:failed', { error: 'boom' }),
      event('r1', 'run:retrying', { tasks: 1 }),
      event('r1', 'run:succeeded'),
    ];
    await Promise.all(given.map((e) => logs.log(e)));
    expect(logs.open).toBe(0);
    logs.close();
    expect(lines(join(dir, 'muster-2025-03-10.log')).map((l) => l['event'])).toEqual([
      'run:started',
      'run:failed',
      'run:retrying',
      'run:succeeded',
    ]);
  });

  test('a paused run lets go of its log; a failure to open is told once', async () => {
    const errors: string[] = [];
    const blocked = join(tmp, 'blocked');
    writeFileSync(blocked, 'a file where a directory should be');
    const logs = createRunLogs(source(join(blocked, 'logs')), {
      onError: (runId, e) => errors.push(`${runId}: ${e.message}`),
    });
    await logs.log(event('p1', 'run:started', { resumed: false }));
    await logs.log(event('p1', 'task:started', { attempt: 1 }));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/^p1: .*(ENOTDIR|EEXIST)/);
    await logs.log(event('p1', 'run:paused'));
    expect(logs.open).toBe(0);
    logs.close();
    await logs.log(event('p1', 'run:resumed'));
    expect(logs.open).toBe(0);
  });

  test('a run gone quiet has its log closed by the sweeper', async () => {
    const dir = join(tmp, 'quiet');
    const logs = createRunLogs(source(dir), { now: () => T0, idleMs: 1 });
    await logs.log(event('q1', 'run:started', { resumed: false }));
    expect(logs.open).toBe(1);
    await new Promise((r) => setTimeout(r, 1100));
    expect(logs.open).toBe(0);
    await logs.log(event('q1', 'task:started', { attempt: 1 }));
    logs.close();
    expect(lines(join(dir, 'muster-2025-03-10.log'))).toHaveLength(2);
  });
});

describe('createServerRunLogs', () => {
  test('confines files to the log directory, shares them, and closes them when runs end', async () => {
    const logDir = join(tmp, 'server', 'logs');
    const said: string[] = [];
    const stdout: string[] = [];
    const workflows: Record<string, unknown> = {
      a: { logging: { path: 'runs', destinations: ['file'], retention_days: 2 } },
      b: { logging: { path: 'runs', destinations: ['file', 'stdout'], retention_days: 2 } },
      evil: { logging: { path: '../../escaped', destinations: ['file', 'stdout'] } },
    };
    mkdirSync(join(logDir, 'runs'), { recursive: true });
    writeFileSync(join(logDir, 'runs', 'muster-2025-03-01.log'), 'old\n');
    const logs = createServerRunLogs(
      { getRun: async (id) => ({ name: `wf-${id}`, workflow: workflows[id] }) },
      {
        logDir,
        log: (l) => said.push(l),
        stdout: { write: (s: string) => stdout.push(s) },
        now: () => T0,
      },
    );
    await Promise.all([
      logs.log(event('a', 'run:started', { resumed: false })),
      logs.log(event('evil', 'run:started', { resumed: false })),
    ]);
    await logs.log(event('b', 'run:started', { resumed: false }));
    // a and b write to one directory: one file between them (their retention pruned the old one).
    expect(logs.open).toBe(3);
    expect(logs.files).toBe(1);
    expect(readdirSync(join(logDir, 'runs'))).toEqual(['muster-2025-03-10.log']);
    await logs.log(event('a', 'run:succeeded'));
    await logs.log(event('b', 'run:succeeded'));
    await logs.log(event('evil', 'run:succeeded'));
    expect(logs.open).toBe(0);
    expect(logs.files).toBe(0);
    logs.close();

    const file = lines(join(logDir, 'runs', 'muster-2025-03-10.log'));
    expect(file.map((l) => `${String(l['run_id'])} ${String(l['msg'])}`)).toEqual([
      'a run started',
      'b run started',
      'a run succeeded',
      'b run succeeded',
    ]);
    expect(existsSync(join(tmp, 'escaped'))).toBe(false);
    expect(said).toEqual([
      `run evil: no log file: logging.path "../../escaped" climbs out of the server's log directory`,
    ]);
    // evil still logs to stdout, as b does.
    expect(stdout.map((s) => (JSON.parse(s) as { run_id: string }).run_id)).toEqual([
      'evil',
      'b',
      'b',
      'evil',
    ]);
  });

  test('retention prunes old files of a run’s directory as days pass', async () => {
    const logDir = join(tmp, 'retention');
    let now = T0;
    const logs = createServerRunLogs(
      {
        getRun: async () => ({
          name: 'wf',
          workflow: { logging: { path: 'r', destinations: ['file'], retention_days: 2 } },
        }),
      },
      { logDir, now: () => now },
    );
    await logs.log(event('d', 'run:started', { resumed: false }));
    now += DAY;
    await logs.log(event('d', 'task:started', { attempt: 1 }));
    now += DAY;
    await logs.log(event('d', 'run:succeeded'));
    logs.close();
    expect(readdirSync(join(logDir, 'r')).sort()).toEqual([
      'muster-2025-03-11.log',
      'muster-2025-03-12.log',
    ]);
  });
});
