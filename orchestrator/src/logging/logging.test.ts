import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as v from 'valibot';
import { afterAll, describe, expect, test } from 'vitest';
import { LoggingSchema } from '../../../schemas/src/workflow.ts';
import type { RunEvent } from '../engine/types.ts';
import { createDailyFileDestination } from './daily-file.ts';
import { createRunEventLog, traceIdFor } from './events.ts';
import { createRunLogs } from './run-logs.ts';

const tmp = mkdtempSync(join(tmpdir(), 'muster-logs-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const DAY = 86_400_000;
const T0 = Date.parse('2025-03-10T12:00:00Z');

function event(type: RunEvent['type'], data: unknown, extra: Partial<RunEvent> = {}): RunEvent {
  return {
    id: 1,
    runId: 'deploy-1',
    seq: 1,
    type,
    at: new Date(T0),
    operationId: 'install',
    taskId: 'install:os@web-1',
    data: data as never,
    ...extra,
  };
}

describe('logging', () => {
  test('JSON lines carry the run id, trace id, operation and task, at the configured level', () => {
    const dir = join(tmp, 'json');
    const stdout: string[] = [];
    const log = createRunEventLog(
      'deploy-1',
      v.parse(LoggingSchema, { level: 'info', path: dir }),
      { stdout: { write: (s: string) => stdout.push(s) }, now: () => T0 },
    );
    log.log(event('task:output', { stream: 'stdout', line: 'installed os', step: 'apt' }));
    log.log(event('task:step', { index: 0, name: 'apt', status: 'succeeded', attempt: 1 }));
    log.log(
      event('task:failed', {
        attempt: 1,
        final: true,
        failure: { type: 'exit-code', message: 'boom' },
      }),
    );
    log.close();
    const lines = readFileSync(join(dir, 'muster-2025-03-10.log'), 'utf8').trim().split('\n');
    expect(stdout.join('')).toBe(`${lines.join('\n')}\n`);
    // task:step is debug: below the level.
    expect(lines.map((l) => JSON.parse(l) as Record<string, unknown>)).toEqual([
      expect.objectContaining({
        level: 'info',
        time: '2025-03-10T12:00:00.000Z',
        msg: 'installed os',
        run_id: 'deploy-1',
        trace_id: traceIdFor('deploy-1'),
        operation: 'install',
        task: 'install:os@web-1',
        step: 'apt',
        stream: 'stdout',
      }),
      expect.objectContaining({
        level: 'error',
        msg: 'task failed: boom',
        failure_type: 'exit-code',
      }),
    ]);
    expect(traceIdFor('deploy-1')).toMatch(/^[0-9a-f]{32}$/);
  });

  test('text format, to stdout only', () => {
    const stdout: string[] = [];
    const log = createRunEventLog(
      'deploy-1',
      v.parse(LoggingSchema, { format: 'text', destinations: ['stdout'], level: 'debug' }),
      { stdout: { write: (s: string) => stdout.push(s) }, now: () => T0 },
    );
    log.log(event('task:output', { stream: 'stderr', line: 'warning: disk low', step: 'apt' }));
    log.close();
    expect(stdout).toEqual([
      '2025-03-10T12:00:00.000Z WARN  warning: disk low run_id=deploy-1 operation=install task=install:os@web-1 step=apt event=task:output seq=1 stream=stderr\n',
    ]);
    expect(log.file).toBeUndefined();
  });

  test('files rotate daily and those past the retention are deleted', () => {
    const dir = join(tmp, 'rotate');
    let now = T0;
    writeFileSync(join(tmp, 'keep-me.txt'), '');
    const dest = createDailyFileDestination({ dir, retentionDays: 2, now: () => now });
    dest.write('day one\n');
    now += DAY;
    dest.write('day two\n');
    expect(readdirSync(dir).sort()).toEqual(['muster-2025-03-10.log', 'muster-2025-03-11.log']);
    now += DAY;
    dest.write('day three\n');
    dest.close();
    expect(readdirSync(dir).sort()).toEqual(['muster-2025-03-11.log', 'muster-2025-03-12.log']);
    expect(readFileSync(join(dir, 'muster-2025-03-12.log'), 'utf8')).toBe('day three\n');
  });

  test('old files from earlier processes are pruned when a log opens', () => {
    const dir = join(tmp, 'prune');
    createDailyFileDestination({ dir, retentionDays: 30, now: () => T0 - 40 * DAY }).close();
    createDailyFileDestination({ dir, retentionDays: 30, now: () => T0 - 10 * DAY }).close();
    createDailyFileDestination({ dir, retentionDays: 30, now: () => T0 }).close();
    expect(readdirSync(dir).sort()).toEqual(['muster-2025-02-28.log', 'muster-2025-03-10.log']);
  });

  test('a multi-run process logs each run where its own workflow says', async () => {
    const workflows: Record<string, unknown> = {
      a: { logging: { path: join(tmp, 'run-a'), destinations: ['file'] } },
      b: { logging: { path: join(tmp, 'run-b'), destinations: ['file'], format: 'text' } },
    };
    const logs = createRunLogs(
      { getRun: async (id) => ({ name: `wf-${id}`, workflow: workflows[id] }) },
      { now: () => T0 },
    );
    await logs.log(
      event('run:started', { resumed: false }, { runId: 'a', operationId: null, taskId: null }),
    );
    await logs.log(
      event('run:started', { resumed: false }, { runId: 'b', operationId: null, taskId: null }),
    );
    await logs.log(event('run:succeeded', {}, { runId: 'a', operationId: null, taskId: null }));
    logs.close();
    const a = readFileSync(join(tmp, 'run-a', 'muster-2025-03-10.log'), 'utf8')
      .trim()
      .split('\n');
    expect(a.map((l) => (JSON.parse(l) as { msg: string; workflow: string }).msg)).toEqual([
      'run started',
      'run succeeded',
    ]);
    expect(readFileSync(join(tmp, 'run-b', 'muster-2025-03-10.log'), 'utf8')).toMatch(
      /^2025-03-10T12:00:00.000Z INFO {2}run started run_id=b workflow=wf-b/,
    );
  });
});
