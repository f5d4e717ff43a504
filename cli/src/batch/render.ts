/**
 * The `table` output of the `muster batch` commands: what people read. The other formats print
 * the API's data as it is.
 *
 * @module
 */
import { formatMs, renderSummaryTable } from '../../../orchestrator/src/status.ts';
import type { ApiEvent, ApiRunSummary, ControlResult, RunListItem } from '../client-schemas.ts';
import { renderTable, truncate } from '../output/table.ts';

/**
 * Renders runs as a table: id, name, status, when, how long, labels, error.
 *
 * @param items The runs, newest first.
 *
 * @returns The table, or a line saying there are none.
 */
export function renderRunList(items: readonly RunListItem[]): string {
  if (items.length === 0) return 'no runs\n';
  return renderTable(items, [
    { header: 'ID', cell: (r) => r.id },
    { header: 'NAME', cell: (r) => r.name },
    { header: 'STATUS', cell: (r) => r.status },
    { header: 'CREATED', cell: (r) => shortTime(r.created_at) },
    { header: 'DURATION', cell: (r) => runDuration(r) },
    {
      header: 'LABELS',
      cell: (r) =>
        Object.entries(r.labels)
          .map(([k, v]) => `${k}=${v}`)
          .join(','),
    },
    { header: 'ERROR', cell: (r) => truncate(r.error ?? '', 60) },
  ]);
}

function runDuration(r: RunListItem): string {
  if (!r.started_at) return '-';
  const end = r.finished_at ? Date.parse(r.finished_at) : Date.now();
  const ms = end - Date.parse(r.started_at);
  return Number.isFinite(ms) ? `${formatMs(Math.max(0, ms))}${r.finished_at ? '' : '+'}` : '-';
}

/**
 * Renders a run's status: a heading, one line per operation, and the totals.
 *
 * @param summary The run's status.
 *
 * @returns The text.
 */
export function renderRunStatus(summary: ApiRunSummary): string {
  const heading =
    `run ${summary.id} (${summary.name}): ${summary.status}, created ${shortTime(summary.created_at)}` +
    (summary.checkpoint ? `, checkpoint ${summary.checkpoint}` : '');
  return `${heading}\n\n${renderSummaryTable(summary)}`;
}

/**
 * Renders the answer to a control (`pause`, `cancel`, …): the run and its state now.
 *
 * @param result The server's answer.
 * @param action What was asked.
 *
 * @returns One line, e.g. `run r-1: pause accepted, status paused`.
 */
export function renderControlResult(result: ControlResult, action: string): string {
  return `run ${result.id}: ${action} accepted, status ${result.status}\n`;
}

/**
 * Renders an event as one line: time, seq, type, what it is about, and its detail.
 *
 * @param event The event.
 *
 * @returns The line, without a newline.
 *
 * @example
 * ```ts
 * formatEventLine(event); // '08:12:54.948Z     7  task:failed  …  deploy:web@web-1  attempt 1: exit code 2 (retry in 1s)'
 * ```
 */
export function formatEventLine(event: ApiEvent): string {
  const subject = event.task_id ?? event.operation_id ?? event.run_id;
  const detail = eventDetail(event);
  return `${clockTime(event.at)} ${String(event.seq).padStart(5)}  ${event.type.padEnd(24)} ${subject}${detail ? `  ${detail}` : ''}`;
}

function eventDetail(event: ApiEvent): string {
  const d = event.data;
  const failure = d['failure'] as { message?: unknown } | undefined;
  switch (event.type) {
    case 'task:output':
      return `[${String(d['stream'])}${d['step'] ? ` ${String(d['step'])}` : ''}] ${String(d['line'])}`;
    case 'task:started':
      return `attempt ${String(d['attempt'])} on ${String(d['queue'])}`;
    case 'task:succeeded':
      return `attempt ${String(d['attempt'])} in ${formatMs(Number(d['durationMs']))}`;
    case 'task:failed': {
      const next = d['final']
        ? 'final'
        : `retry in ${formatMs(Math.round(Number(d['retryInMs'] ?? 0)))}`;
      return `attempt ${String(d['attempt'])}: ${String(failure?.message)} (${next})`;
    }
    case 'task:compensation_failed':
      return String(failure?.message);
    case 'task:step':
      return `step ${String(d['name'])} ${String(d['status'])}`;
    case 'task:skipped':
    case 'run:rolling_back':
      return String(d['reason']);
    case 'run:failed':
      return String(d['error']);
    case 'operation:failed':
      return `${String(d['failed'])} failed, ${String(d['tolerated'])} tolerated`;
    case 'checkpoint:taken':
      return `checkpoint ${String(d['number'])}`;
    default:
      return Object.keys(d).length === 0 ? '' : JSON.stringify(d);
  }
}

/** `2026-05-01T08:12:54.948Z` → `08:12:54.948Z`: log lines are read within a run. */
function clockTime(iso: string): string {
  return /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/.test(iso) ? iso.slice(11) : iso;
}

/** `2026-05-01T08:12:54.948Z` → `2026-05-01 08:12:54Z`; anything else as it is. */
function shortTime(iso: string): string {
  const m = /^(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)(?:\.\d+)?Z$/.exec(iso);
  return m ? `${m[1]} ${m[2]}Z` : iso;
}
