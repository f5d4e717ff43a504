/**
 * A run's status as people and API clients see it: the run, and per operation its state and task
 * counts.
 *
 * @module
 */
import type { RunOverview, RunSnapshot } from './engine/types.ts';
import type { OperationStatus, RunStatus, TaskStatus } from './engine/types.ts';

/** Task counts by state. */
export type TaskCounts = Record<TaskStatus, number> & { total: number };

/** One operation's line of a status. */
export interface OperationSummary {
  readonly id: string;
  readonly level: number;
  readonly status: OperationStatus;
  readonly tasks: TaskCounts;
  readonly started_at: string | null;
  readonly finished_at: string | null;
  readonly duration_ms: number | null;
}

/** A run's status. */
export interface RunSummary {
  readonly id: string;
  readonly name: string;
  readonly status: RunStatus;
  readonly error: string | null;
  readonly created_at: string;
  readonly started_at: string | null;
  readonly finished_at: string | null;
  readonly duration_ms: number | null;
  readonly checkpoint: number;
  readonly tasks: TaskCounts;
  readonly operations: readonly OperationSummary[];
}

const emptyCounts = (): TaskCounts => ({
  total: 0,
  pending: 0,
  running: 0,
  succeeded: 0,
  failed: 0,
  skipped: 0,
  cancelled: 0,
  rolled_back: 0,
});

/** Summarises a run from its snapshot. */
export function summarizeRun(snapshot: RunSnapshot): RunSummary {
  // One count per task: summarizeOverview adds them up per operation and state.
  const taskCounts = snapshot.tasks.map((t) => ({
    operationId: t.operationId,
    status: t.status,
    count: 1,
  }));
  return summarizeOverview({ ...snapshot, taskCounts });
}

/** Summarises a run from its overview (task counts per operation and state). */
export function summarizeOverview(overview: RunOverview): RunSummary {
  const { run } = overview;
  const byOp = new Map<string, TaskCounts>();
  const all = emptyCounts();
  for (const { operationId, status, count } of overview.taskCounts) {
    let counts = byOp.get(operationId);
    if (!counts) byOp.set(operationId, (counts = emptyCounts()));
    counts[status] += count;
    counts.total += count;
    all[status] += count;
    all.total += count;
  }
  return {
    id: run.id,
    name: run.name,
    status: run.status,
    error: run.error,
    created_at: run.createdAt.toISOString(),
    started_at: run.startedAt?.toISOString() ?? null,
    finished_at: run.finishedAt?.toISOString() ?? null,
    duration_ms: duration(run.startedAt, run.finishedAt),
    checkpoint: run.checkpoint,
    tasks: all,
    operations: overview.operations.map((o) => ({
      id: o.id,
      level: o.level,
      status: o.status,
      tasks: byOp.get(o.id) ?? emptyCounts(),
      started_at: o.startedAt?.toISOString() ?? null,
      finished_at: o.finishedAt?.toISOString() ?? null,
      duration_ms: duration(o.startedAt, o.finishedAt),
    })),
  };
}

function duration(from: Date | null, to: Date | null): number | null {
  return from && to ? to.getTime() - from.getTime() : null;
}

/** Renders a summary as a plain table, one operation a line. */
export function renderSummaryTable(summary: RunSummary): string {
  const rows = [
    ['OPERATION', 'LEVEL', 'STATUS', 'TASKS', 'OK', 'FAILED', 'SKIPPED', 'TIME'],
    ...summary.operations.map((o) => [
      o.id,
      String(o.level),
      o.status,
      String(o.tasks.total),
      String(o.tasks.succeeded),
      String(o.tasks.failed),
      String(o.tasks.skipped + o.tasks.cancelled),
      o.duration_ms === null ? '-' : formatMs(o.duration_ms),
    ]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  const lines = rows.map((r) =>
    r
      .map((c, i) => c.padEnd(widths[i]!))
      .join('  ')
      .trimEnd(),
  );
  const t = summary.tasks;
  lines.push(
    '',
    `run ${summary.id} ${summary.status}` +
      (summary.duration_ms === null ? '' : ` in ${formatMs(summary.duration_ms)}`) +
      `: ${t.succeeded}/${t.total} tasks succeeded, ${t.failed} failed, ${t.skipped} skipped` +
      (t.rolled_back ? `, ${t.rolled_back} rolled back` : '') +
      (t.cancelled ? `, ${t.cancelled} cancelled` : ''),
  );
  if (summary.error) lines.push(`error: ${summary.error}`);
  return `${lines.join('\n')}\n`;
}

/** `1.2s`, `350ms`, `2m03s`. */
export function formatMs(ms: number): string {
  if (ms < 1000) return `${ms}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)}s`;
  const m = Math.floor(ms / 60_000);
  return `${m}m${String(Math.round((ms % 60_000) / 1000)).padStart(2, '0')}s`;
}
