/**
 * The drivers' side of the shared task queue: a task for a server's agent is queued in
 * PostgreSQL (without secret values), whichever replica that agent is connected to claims it,
 * and the driver reads what the agent said — output, finished steps, the report — from
 * `dispatch_messages`, woken on {@link DISPATCH_CHANNEL} and polling in case a notification is
 * lost.
 *
 * A driver that takes a run over from a dead replica re-attaches to the attempts that replica had
 * queued ({@link QueueDispatcher.reattach}): a task its agent is still running, or finished while
 * nobody drove the run, is not run again. Output lines relayed before the take-over are read
 * again, so around a failover a line may appear twice in the log, never not at all.
 *
 * @module
 */
import type { DispatchHooks, Dispatcher, TaskAssignment, TaskReport } from '../engine/dispatch.ts';
import { isDriverStop } from '../engine/errors.ts';
import type { StepRecord } from '../engine/types.ts';
import { coerceError } from '../errors.ts';
import { AGENT_FAILURE } from '../agents/errors.ts';
import type { DispatchMessage, DispatchRecord, Store } from '../store/store.ts';
import { DISPATCH_CHANNEL, QUEUE_CHANNEL } from './channels.ts';

/** Options of {@link createQueueDispatcher}. */
export interface QueueDispatcherOptions {
  readonly store: Store;
  readonly replicaId: string;
  /** How long a task waits when no agent of its server is live anywhere. @default 60_000 */
  readonly agentWaitMs?: number;
  /** An agent not heard from for this long is not live. */
  readonly agentStaleMs: number;
  /** How often waiting tasks poll for messages. @default 500 */
  readonly pollMs?: number;
  /**
   * A task waits for a server whose agent is live nowhere: start one (the local provider does).
   * Tasks of the server fail with `agent-start-failed` when it rejects.
   */
  readonly onAgentNeeded?: (server: string, assignment: TaskAssignment) => Promise<void>;
  readonly log?: (line: string) => void;
}

/** A dispatcher over the shared queue, which can also re-attach to queued attempts. */
export interface QueueDispatcher extends Dispatcher {
  /**
   * Waits for an attempt a previous driver of the run queued; resolves with its report, or with
   * `undefined` at once when it was never queued.
   */
  reattach(assignment: TaskAssignment, hooks: DispatchHooks): Promise<TaskReport | undefined>;
  close(): Promise<void>;
}

interface Waiter {
  readonly record: DispatchRecord;
  readonly hooks: DispatchHooks;
  token: number;
  seq: number;
  heard: boolean;
  readonly resolve: (report: TaskReport) => void;
  waitTimer: NodeJS.Timeout | undefined;
}

/** Creates the dispatcher and starts listening for relayed messages. */
export async function createQueueDispatcher(
  options: QueueDispatcherOptions,
): Promise<QueueDispatcher> {
  const { store, replicaId } = options;
  const log = options.log ?? (() => {});
  const agentWaitMs = options.agentWaitMs ?? 60_000;
  const waiters = new Map<number, Waiter>();
  const due = new Set<number>();
  let reading: Promise<void> | undefined;
  let readAgain = false;
  let closed = false;

  /** Reads new messages of the dispatches in `due` (all, when polling), in one query. */
  const read = (all = false): void => {
    if (all) for (const id of waiters.keys()) due.add(id);
    if (reading) {
      readAgain = true;
      return;
    }
    // Started on the next tick: its `finally` must run after `reading` is set.
    reading = Promise.resolve().then(async () => {
      try {
        do {
          readAgain = false;
          const ids = [...due].filter((id) => waiters.has(id));
          due.clear();
          if (ids.length === 0) break;
          const positions = ids.map((id) => {
            const w = waiters.get(id)!;
            return { dispatchId: id, token: w.token, seq: w.seq };
          });
          const messages = await store.cluster.messages(positions);
          for (const m of messages) deliver(m);
        } while (readAgain && !closed);
      } catch (e: unknown) {
        log(`could not read relayed messages: ${coerceError(e).message}`);
      } finally {
        reading = undefined;
      }
    });
  };

  const deliver = (m: DispatchMessage): void => {
    const w = waiters.get(m.dispatchId);
    if (!w || m.token < w.token || (m.token === w.token && m.seq <= w.seq)) return;
    w.token = m.token;
    w.seq = m.seq;
    w.heard = true;
    if (m.kind === 'output') {
      const o = m.body as { stream: 'stdout' | 'stderr' | 'info'; line: string; step?: string };
      w.hooks.output(o.stream, o.line, ...(o.step !== undefined ? [o.step] : []));
    } else if (m.kind === 'step') {
      w.hooks.step(m.body as StepRecord);
    } else {
      finish(w, m.body as TaskReport);
    }
  };

  const finish = (w: Waiter, report: TaskReport) => {
    if (waiters.get(w.record.id) !== w) return;
    waiters.delete(w.record.id);
    clearTimeout(w.waitTimer);
    w.resolve(report);
  };

  const failed = (type: string, message: string): TaskReport => ({
    status: 'failed',
    result: { steps: [] },
    failure: { type, message },
  });

  /** Whether an agent of the server is live on some replica. */
  const agentLive = async (server: string): Promise<boolean> => {
    const now = Date.now();
    return (await store.agents.listAgents(server)).some(
      (a) =>
        (a.status === 'connected' || a.status === 'draining') &&
        now - a.lastHeartbeatAt.getTime() < options.agentStaleMs,
    );
  };

  /** Fails the task if it is still queued with no live agent for it after `agentWaitMs`. */
  const armWait = (w: Waiter) => {
    clearTimeout(w.waitTimer);
    w.waitTimer = setTimeout(() => {
      void (async () => {
        if (waiters.get(w.record.id) !== w || w.heard) return;
        if (await agentLive(w.record.server)) return armWait(w);
        if (await store.cluster.withdrawDispatch(w.record.id)) {
          finish(
            w,
            failed(
              AGENT_FAILURE.unavailable,
              `no agent for server ${w.record.server} connected within ${Math.round(agentWaitMs / 1000)}s; ` +
                `start one there: muster agent --server ${w.record.server} --orchestrator URL --token TOKEN`,
            ),
          );
        }
      })().catch((e: unknown) => {
        log(`could not check the agent of ${w.record.server}: ${coerceError(e).message}`);
        armWait(w);
      });
    }, agentWaitMs);
    w.waitTimer.unref();
  };

  const wait = (record: DispatchRecord, hooks: DispatchHooks): Promise<TaskReport> =>
    new Promise<TaskReport>((resolve) => {
      const w: Waiter = {
        record,
        hooks,
        token: -1,
        seq: 0,
        heard: false,
        resolve: (report) => {
          hooks.signal.removeEventListener('abort', onAbort);
          resolve(report);
        },
        waitTimer: undefined,
      };
      const onAbort = () => {
        const reason: unknown = hooks.signal.reason;
        // The driver stopped (its lease or its store is gone): whoever drives the run next
        // re-attaches; the agent goes on.
        if (isDriverStop(reason)) {
          finish(w, failed('interrupted', coerceError(reason).message));
          return;
        }
        const message = coerceError(reason ?? 'cancelled').message;
        void (async () => {
          if (await store.cluster.withdrawDispatch(record.id)) {
            finish(w, failed('cancelled', `${message} while queued`));
            return;
          }
          await store.cluster.requestCancel(record.id, message);
          await store.cluster.notify(DISPATCH_CHANNEL, `c:${record.id}`);
        })().catch((e: unknown) =>
          log(`could not cancel ${record.taskId}: ${coerceError(e).message}`),
        );
      };
      waiters.set(record.id, w);
      hooks.signal.addEventListener('abort', onAbort, { once: true });
      if (hooks.signal.aborted) onAbort();
      armWait(w);
      due.add(record.id);
      read();
    });

  const unlisten = await store.listen(
    DISPATCH_CHANNEL,
    (payload) => {
      if (!payload.startsWith('m:')) return;
      const id = Number(payload.slice(2));
      if (!waiters.has(id)) return;
      due.add(id);
      read();
    },
    () => read(true),
  );
  const poller = setInterval(() => read(true), options.pollMs ?? 500);
  poller.unref();

  const needAgent = async (server: string, assignment: TaskAssignment) => {
    if (!options.onAgentNeeded || assignment.server?.provider !== 'local') return;
    if (await agentLive(server)) return;
    await options.onAgentNeeded(server, assignment);
  };

  return {
    async dispatch(assignment, hooks) {
      if (closed) return failed('interrupted', 'the orchestrator is shutting down');
      const queue = assignment.task.queue;
      if (!queue.startsWith('server:')) {
        return failed('dispatch-error', `agents serve server queues only, not ${queue}`);
      }
      const server = queue.slice('server:'.length);
      // Secret values never reach the store: the replica relaying to the agent reads them.
      const { secrets: _values, ...stored } = assignment;
      const record = await store.cluster.enqueueDispatch({
        runId: assignment.runId,
        taskId: assignment.task.id,
        attempt: assignment.attempt,
        mode: assignment.mode,
        server,
        assignment: stored,
        owner: replicaId,
      });
      await store.cluster.notify(QUEUE_CHANNEL, server).catch(() => {});
      const report = wait(record, hooks);
      try {
        await needAgent(server, assignment);
      } catch (e: unknown) {
        const message = coerceError(e).message;
        log(`could not start an agent for server ${server}: ${message}`);
        if (await store.cluster.withdrawDispatch(record.id)) {
          const w = waiters.get(record.id);
          if (w) finish(w, failed(AGENT_FAILURE.startFailed, message));
        }
      }
      return report;
    },

    async reattach(assignment, hooks) {
      const found = await store.cluster.findDispatch(
        assignment.runId,
        assignment.task.id,
        assignment.attempt,
        assignment.mode,
      );
      if (!found) return undefined;
      const { secrets: _values, ...stored } = assignment;
      const record = await store.cluster.enqueueDispatch({
        runId: found.runId,
        taskId: found.taskId,
        attempt: found.attempt,
        mode: found.mode,
        server: found.server,
        assignment: stored,
        owner: replicaId,
      });
      if (record.state === 'queued') await store.cluster.notify(QUEUE_CHANNEL, record.server);
      return wait(record, hooks);
    },

    async close() {
      closed = true;
      clearInterval(poller);
      await unlisten().catch(() => {});
      await reading?.catch(() => {});
      // Waiting drivers are stopping too; whoever drives their runs next re-attaches.
      for (const w of [...waiters.values()]) {
        finish(w, failed('interrupted', 'the orchestrator shut down before the task was done'));
      }
    },
  };
}
