import { describe, expect, test } from 'vitest';
import type { ApiEvent, RunListItem } from '../client-schemas.ts';
import { formatEventLine, renderControlResult, renderRunList, renderRunStatus } from './render.ts';

const event = (
  type: string,
  data: Record<string, unknown>,
  task: string | null = 'op:a@s1',
): ApiEvent => ({
  id: 70,
  run_id: 'r-1',
  seq: 7,
  type,
  at: '2026-05-01T08:12:54.948Z',
  operation_id: 'op',
  task_id: task,
  data,
});

describe('formatEventLine', () => {
  test('shows the time, seq, type, task and the failure with its retry', () => {
    const line = formatEventLine(
      event('task:failed', {
        attempt: 1,
        failure: { type: 'exit-code', message: 'exit code 2' },
        final: false,
        retryInMs: 1500,
      }),
    );
    expect(line).toMatch(
      /^08:12:54\.948Z {5}7 {2}task:failed +op:a@s1 {2}attempt 1: exit code 2 \(retry in 1\.5s\)$/,
    );
  });

  test('shows output lines with their stream and step', () => {
    expect(
      formatEventLine(event('task:output', { stream: 'stderr', line: 'oops', step: 'build' })),
    ).toMatch(/op:a@s1 {2}\[stderr build\] oops$/);
  });

  test('names the operation or run when there is no task, and other payloads as JSON', () => {
    expect(formatEventLine(event('run:failed', { error: 'op failed' }, null))).toMatch(
      / op {2}op failed$/,
    );
    expect(formatEventLine(event('run:created', { tasks: 3 }, null))).toMatch(
      / op {2}\{"tasks":3\}$/,
    );
    expect(formatEventLine(event('operation:started', {}, null))).toMatch(/operation:started +op$/);
  });
});

describe('renderRunList', () => {
  const run: RunListItem = {
    id: 'r-1',
    name: 'deploy',
    status: 'failed',
    labels: { env: 'prod', team: 'web' },
    created_at: '2026-05-01T08:00:00.000Z',
    started_at: '2026-05-01T08:00:01.000Z',
    finished_at: '2026-05-01T08:02:04.000Z',
    error: 'operation "deploy" failed',
  };

  test('one row per run with duration, labels and error', () => {
    expect(renderRunList([run]).split('\n')).toEqual([
      'ID   NAME    STATUS  CREATED               DURATION  LABELS             ERROR',
      'r-1  deploy  failed  2026-05-01 08:00:00Z  2m03s     env=prod,team=web  operation "deploy" failed',
      '',
    ]);
  });

  test('says so when there are no runs', () => {
    expect(renderRunList([])).toBe('no runs\n');
  });
});

test('renderControlResult says what was accepted and the state now', () => {
  expect(renderControlResult({ id: 'r-1', status: 'paused' }, 'pause')).toBe(
    'run r-1: pause accepted, status paused\n',
  );
});

test('renderRunStatus heads the operations table with the run', () => {
  const counts = {
    total: 1,
    pending: 0,
    running: 0,
    succeeded: 1,
    failed: 0,
    skipped: 0,
    cancelled: 0,
    rolled_back: 0,
  };
  const text = renderRunStatus({
    id: 'r-1',
    name: 'hello',
    status: 'succeeded',
    error: null,
    created_at: '2026-05-01T08:00:00.000Z',
    started_at: '2026-05-01T08:00:00.000Z',
    finished_at: '2026-05-01T08:00:01.500Z',
    duration_ms: 1500,
    checkpoint: 1,
    tasks: counts,
    operations: [
      {
        id: 'greet',
        level: 0,
        status: 'succeeded',
        tasks: counts,
        started_at: null,
        finished_at: null,
        duration_ms: 1500,
      },
    ],
  });
  expect(text.split('\n').slice(0, 4)).toEqual([
    'run r-1 (hello): succeeded, created 2026-05-01 08:00:00Z, checkpoint 1',
    '',
    'OPERATION  LEVEL  STATUS     TASKS  OK  FAILED  SKIPPED  TIME',
    'greet      0      succeeded  1      1   0       0        1.5s',
  ]);
});
