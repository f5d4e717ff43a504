/**
 * Failover with real agent processes started by the local provider: an agent SIGKILLed in the
 * middle of a task, and an agent drained with SIGTERM while a task waits for its server.
 *
 * @module
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { readLog, startFleet, until, loggedStep, type Fleet } from './helpers/agents.ts';

let fleet: Fleet;

beforeAll(async () => {
  fleet = await startFleet();
});

afterAll(async () => {
  await fleet?.close();
});

describe('an agent killed mid-task', () => {
  test('the task fails over as agent-lost, is retried under a new lease, and the old attempt never finishes', async () => {
    const log = join(fleet.dir, 'killed.log');
    const runId = await fleet.start({
      name: 'sigkill',
      servers: [{ name: 'solo', provider: 'local' }],
      retry_policy: { max_attempts: 3, initial_delay: 0, max_delay: 0 },
      operations: [
        { id: 'slow', type: 'update', target: 'server', steps: [loggedStep(log, { sleep: 2 })] },
      ],
    });
    await until(async () => (await readLog(log)).some((l) => l.what === 'start'));
    const first = (await readLog(log))[0]!;
    expect(first.pid).toBe(await fleet.agentPid('solo'));
    process.kill(first.pid, 'SIGKILL');

    expect(await fleet.settled(runId)).toBe('succeeded');
    const attempts = await fleet.orchestrator.store.attempts(runId);
    expect(attempts.map((a) => [a.attempt, a.status, a.failure?.type ?? null])).toEqual([
      [1, 'failed', 'agent-lost'],
      [2, 'succeeded', null],
    ]);
    // The retry ran on a new agent the provider started; the killed one's script was stopped.
    await new Promise((r) => setTimeout(r, 2200)); // past the end the first attempt would reach
    const lines = await readLog(log);
    expect(lines.map((l) => `${l.what} ${l.attempt}`)).toEqual(['start 1', 'start 2', 'end 2']);
    expect(lines[1]!.pid).not.toBe(first.pid);
    expect(lines[1]!.pid).toBe(await fleet.agentPid('solo'));
    // Each attempt ran under its own lease: token 2 is the one reported.
    const lease = await fleet.orchestrator.store.agents.getLease(runId, 'slow:solo@solo');
    expect(lease).toMatchObject({ token: 2, attempt: 2, state: 'reported' });
    expect(fleet.events).toContainEqual(
      expect.objectContaining({ type: 'agent:lost', server: 'solo', tasks: 1 }),
    );
  });
});

describe('draining an agent', () => {
  test('SIGTERM lets the running task finish, takes no new task, and the next one runs on a new agent', async () => {
    const log = join(fleet.dir, 'drain.log');
    const workflow = (name: string) => ({
      name,
      servers: [{ name: 'drainee', provider: 'local' as const }],
      retry_policy: { max_attempts: 1 },
      operations: [
        {
          id: 'work',
          type: 'update' as const,
          target: 'server' as const,
          steps: [loggedStep(log, { sleep: 1 })],
        },
      ],
    });
    const first = await fleet.start(workflow('first'));
    await until(async () => (await readLog(log)).some((l) => l.what === 'start'));
    // A second run's task now waits in the server's queue behind the first.
    const second = await fleet.start(workflow('second'));
    await until(() => fleet.hub.queued('drainee') === 1);
    const pid = (await readLog(log))[0]!.pid;
    process.kill(pid, 'SIGTERM');

    expect(await fleet.settled(first)).toBe('succeeded');
    expect(await fleet.settled(second)).toBe('succeeded');
    const lines = await readLog(log);
    expect(lines.map((l) => l.what)).toEqual(['start', 'end', 'start', 'end']);
    // The drained agent finished its task and left; the second task ran on another agent.
    expect(lines[1]!.pid).toBe(pid);
    expect(lines[2]!.pid).not.toBe(pid);
    const stopped = fleet.events.findIndex(
      (e) => e.type === 'agent:stopped' && e.server === 'drainee',
    );
    const draining = fleet.events.findIndex(
      (e) => e.type === 'agent:draining' && e.server === 'drainee',
    );
    expect(draining).toBeGreaterThanOrEqual(0);
    expect(stopped).toBeGreaterThan(draining);
    const attempts = await fleet.orchestrator.store.attempts(first);
    expect(attempts.map((a) => a.status)).toEqual(['succeeded']);
  });
});
