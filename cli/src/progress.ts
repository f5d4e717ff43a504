/**
 * Live progress of a run on stderr: a bar per operation on a terminal (cli-progress), one line
 * per notable event otherwise (logs, CI).
 *
 * @module
 */
import cliProgress from 'cli-progress';
import type { Plan } from '../../orchestrator/src/plan/types.ts';
import type { RunEvent } from '../../orchestrator/src/engine/types.ts';

/** Shows progress; `stop()` before printing anything else. */
export interface ProgressReporter {
  onEvent(event: RunEvent): void;
  stop(): void;
}

/** Creates the reporter that fits the stream. */
export function createProgressReporter(
  plan: Plan,
  stream: NodeJS.WriteStream = process.stderr,
): ProgressReporter {
  return stream.isTTY ? barReporter(plan, stream) : lineReporter(stream);
}

function barReporter(plan: Plan, stream: NodeJS.WriteStream): ProgressReporter {
  const multi = new cliProgress.MultiBar(
    {
      stream,
      clearOnComplete: false,
      hideCursor: true,
      format: ' {bar} {op} {value}/{total} {state}',
      barsize: 24,
    },
    cliProgress.Presets.shades_classic,
  );
  const width = Math.max(...plan.operations.map((o) => o.id.length));
  const bars = new Map(
    plan.operations.map((o) => [
      o.id,
      multi.create(o.tasks.length, 0, { op: o.id.padEnd(width), state: 'pending' }),
    ]),
  );
  const done = new Map<string, number>();
  const failedTasks: string[] = [];
  return {
    onEvent(e) {
      const bar = e.operationId ? bars.get(e.operationId) : undefined;
      if (!bar) return;
      if (
        e.type === 'task:succeeded' ||
        (e.type === 'task:failed' && (e.data as { final: boolean }).final) ||
        e.type === 'task:skipped'
      ) {
        done.set(e.operationId!, (done.get(e.operationId!) ?? 0) + 1);
        bar.update(done.get(e.operationId!)!, {});
        if (e.type === 'task:failed')
          failedTasks.push(
            `${e.taskId}: ${(e.data as { failure: { message: string } }).failure.message}`,
          );
      } else if (e.type.startsWith('operation:')) {
        bar.update({ state: e.type.slice('operation:'.length) });
      }
    },
    stop() {
      multi.stop();
      for (const f of failedTasks) stream.write(`✗ ${f}\n`);
    },
  };
}

function lineReporter(stream: NodeJS.WriteStream): ProgressReporter {
  const write = (s: string) => stream.write(`${s}\n`);
  return {
    onEvent(e) {
      const d = e.data as Record<string, unknown>;
      switch (e.type) {
        case 'operation:started':
        case 'operation:succeeded':
        case 'operation:skipped':
        case 'operation:awaiting_approval':
          write(`${e.type.padEnd(28)} ${e.operationId}`);
          break;
        case 'operation:failed':
          write(`${e.type.padEnd(28)} ${e.operationId} (${String(d['failed'])} failed)`);
          break;
        case 'task:failed': {
          const failure = d['failure'] as { message: string };
          const retry = d['final']
            ? ''
            : ` (retry in ${Math.round(Number(d['retryInMs']) / 100) / 10}s)`;
          write(`${'task:failed'.padEnd(28)} ${e.taskId}: ${failure.message}${retry}`);
          break;
        }
        case 'task:compensated':
        case 'task:compensation_failed':
        case 'task:interrupted':
        case 'checkpoint:taken':
          write(`${e.type.padEnd(28)} ${e.taskId ?? JSON.stringify(d)}`);
          break;
        case 'run:started':
        case 'run:rolling_back':
        case 'run:paused':
        case 'run:cancelling':
          write(`${e.type.padEnd(28)} ${e.runId}`);
          break;
        default:
      }
    },
    stop() {},
  };
}
