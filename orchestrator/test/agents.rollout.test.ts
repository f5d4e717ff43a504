/**
 * Rollouts as real agent processes see them: five local servers, each served by its own
 * `muster agent` process that the local provider starts. Every step appends to one log with the
 * pid of the agent that ran it and a time stamp, and the assertions read that log.
 *
 * @module
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { WorkflowInput } from '../../schemas/src/workflow.ts';
import {
  localServers,
  loggedStep,
  readLog,
  startFleet,
  type Fleet,
  type LogLine,
} from './helpers/agents.ts';

let fleet: Fleet;
let n = 0;

beforeAll(async () => {
  fleet = await startFleet();
});

afterAll(async () => {
  await fleet?.close();
});

/** A fresh log file and a five-server workflow with one operation of the given rollout. */
function rollout(
  rolloutSpec: Record<string, unknown>,
  options: { failOn?: string[]; on_failure?: string; rollbackLog?: boolean } = {},
): { log: string; input: WorkflowInput } {
  const log = join(fleet.dir, `steps-${++n}.log`);
  const step = loggedStep(log, {
    sleep: 0.3,
    ...(options.failOn ? { failOn: options.failOn } : {}),
  });
  return {
    log,
    input: {
      name: `rollout-${n}`,
      servers: localServers(5),
      retry_policy: { max_attempts: 1 },
      operations: [
        {
          id: 'deploy',
          type: 'update',
          target: 'server',
          on_failure: (options.on_failure ?? 'fail') as 'fail',
          rollout: rolloutSpec,
          steps: [
            options.rollbackLog
              ? {
                  ...step,
                  rollback: {
                    type: 'script',
                    params: {
                      command: 'sh',
                      args: ['-c', `echo "undo $MUSTER_SERVER 0 $PPID 0" >> '${log}'`],
                    },
                  },
                }
              : step,
          ],
        },
      ],
    },
  };
}

/** The most steps running at once, from start/end pairs. */
function maxConcurrent(lines: LogLine[]): number {
  const edges = lines
    .filter((l) => l.what === 'start' || l.what === 'end')
    .map((l) => ({ at: l.at, d: l.what === 'start' ? 1 : -1 }))
    .sort((a, b) => a.at - b.at || a.d - b.d);
  let now = 0;
  let max = 0;
  for (const e of edges) max = Math.max(max, (now += e.d));
  return max;
}

const started = (lines: LogLine[]) => lines.filter((l) => l.what === 'start').map((l) => l.server);

describe('rollouts on real agents', () => {
  test('rolling batch_size 2 over 5 servers runs at most 2 at once, batch after batch, each on its own agent', async () => {
    const { log, input } = rollout({ strategy: 'rolling', batch_size: 2 });
    const { status } = await fleet.run(input);
    expect(status).toBe('succeeded');
    const lines = await readLog(log);
    expect(lines.filter((l) => l.what === 'end')).toHaveLength(5);
    expect(maxConcurrent(lines)).toBeLessThanOrEqual(2);
    const at = (what: string, server: string) =>
      lines.find((l) => l.what === what && l.server === server)!.at;
    // Each batch starts only after the previous batch has ended.
    for (const [earlier, later] of [
      [
        ['web-1', 'web-2'],
        ['web-3', 'web-4'],
      ],
      [['web-3', 'web-4'], ['web-5']],
    ] as const) {
      const lastEnd = Math.max(...earlier.map((s) => at('end', s)));
      for (const s of later) expect(at('start', s)).toBeGreaterThanOrEqual(lastEnd);
    }
    // Five agent processes, one per server, none of them this process.
    const pids = new Map(lines.map((l) => [l.server, l.pid]));
    expect(new Set(pids.values()).size).toBe(5);
    for (const [server, pid] of pids) {
      expect(pid).toBe(await fleet.agentPid(server));
      expect(pid).not.toBe(process.pid);
    }
  });

  test('max_failures 0 stops the rollout at the first failed server', async () => {
    const { log, input } = rollout(
      { strategy: 'rolling', batch_size: 1, max_failures: 0 },
      { failOn: ['web-2'] },
    );
    const { runId, status } = await fleet.run(input);
    expect(status).toBe('failed');
    expect(started(await readLog(log))).toEqual(['web-1', 'web-2']);
    const snap = await fleet.orchestrator.store.loadRun(runId);
    const byServer = Object.fromEntries(snap!.tasks.map((t) => [t.id.split('@')[1], t.status]));
    expect(byServer).toEqual({
      'web-1': 'succeeded',
      'web-2': 'failed',
      'web-3': 'skipped',
      'web-4': 'skipped',
      'web-5': 'skipped',
    });
  });

  test('max_failures 1 goes on past one failed server and stops when a second fails', async () => {
    const { log, input } = rollout(
      { strategy: 'rolling', batch_size: 1, max_failures: 1 },
      { failOn: ['web-2', 'web-4'] },
    );
    const { status } = await fleet.run(input);
    expect(status).toBe('failed');
    expect(started(await readLog(log))).toEqual(['web-1', 'web-2', 'web-3', 'web-4']);
  });

  test('canary: the canaries run, the run waits for approval, then the rest roll out', async () => {
    const { log, input } = rollout({ strategy: 'canary', canary_percentage: 40 });
    const runId = await fleet.start(input);
    expect(await fleet.settled(runId)).toBe('paused');
    expect(started(await readLog(log)).sort()).toEqual(['web-1', 'web-2']);
    await fleet.orchestrator.control(runId, 'resume');
    expect(await fleet.settled(runId, ['succeeded', 'failed'])).toBe('succeeded');
    const lines = await readLog(log);
    expect(started(lines).slice(2).sort()).toEqual(['web-3', 'web-4', 'web-5']);
    const canariesDone = Math.max(
      ...lines
        .filter((l) => l.what === 'end')
        .slice(0, 2)
        .map((l) => l.at),
    );
    for (const l of lines.filter((l) => l.what === 'start').slice(2)) {
      expect(l.at).toBeGreaterThanOrEqual(canariesDone);
    }
  });

  test('canary: a failed canary rolls the canaries back on their agents and the rest never run', async () => {
    const { log, input } = rollout(
      { strategy: 'canary', canary_percentage: 40, canary_promotion: 'auto' },
      { failOn: ['web-1'], on_failure: 'rollback', rollbackLog: true },
    );
    const { runId, status } = await fleet.run(input);
    expect(status).toBe('rolled_back');
    const lines = await readLog(log);
    expect(started(lines).sort()).toEqual(['web-1', 'web-2']);
    // The canary that succeeded is undone on its agent; the failed one's only step did nothing.
    const undone = lines.filter((l) => l.what === 'undo');
    expect(undone.map((l) => l.server)).toEqual(['web-2']);
    expect(undone[0]!.pid).toBe(await fleet.agentPid('web-2'));
    const snap = await fleet.orchestrator.store.loadRun(runId);
    expect(snap!.run.status).toBe('rolled_back');
  });
});
