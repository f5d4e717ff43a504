/**
 * The agents' side of the shared task queue: for each agent connected to this replica, claims its
 * server's queued tasks (`FOR UPDATE SKIP LOCKED`, never more than the agent's free slots) and
 * hands them to the hub; relays what the agent says into `dispatch_messages` for the replica
 * driving the run; and takes over the tasks of agents that come here from another replica.
 *
 * Failing over what nobody relays any more: a dispatch claimed by a replica that went silent is
 * queued again if its agent never got it, or — once its agent has had the time to reconnect
 * elsewhere and was not taken over — failed as `agent-lost`, with its lease revoked, so the
 * driver retries it by its policy. A task never runs under two leases: the fencing token the
 * agent reports under must be the one the store holds.
 *
 * Secrets: the assignment in the queue carries no secret values; they are read here (the same
 * files and keys as on every replica), and what is relayed is redacted first.
 *
 * @module
 */
import type { TaskAssignment, TaskReport } from '../engine/dispatch.ts';
import type { StepRecord } from '../engine/types.ts';
import { coerceError } from '../errors.ts';
import type { AgentHub, DispatchRelay, DispatchSource } from '../agents/hub.ts';
import { AGENT_FAILURE } from '../agents/errors.ts';
import type { LeaseRef } from '../agents/protocol.ts';
import type { SecretsLoader } from '../secrets/index.ts';
import { NO_REDACTION, type Redactor } from '../secrets/redact.ts';
import type { DispatchMessage, DispatchRecord, Store } from '../store/store.ts';
import { DISPATCH_CHANNEL, QUEUE_CHANNEL } from './channels.ts';
import { retrying } from './retry.ts';

/** Who announces an agent it welcomed, so the replica it left lets go of it. */
export const AGENTS_CHANNEL = 'muster_agents';

/** Options of {@link createQueueConsumer}. */
export interface QueueConsumerOptions {
  readonly store: Store;
  readonly replicaId: string;
  /** Reads the secrets of tasks that need them. */
  readonly secrets?: SecretsLoader;
  /** An agent not heard from for this long is not live (the hub's `staleAfterMs`). */
  readonly agentStaleMs: number;
  /**
   * A dispatch claimed by a replica silent for this long is failed over (the run lease timeout
   * plus the time an agent has to reconnect elsewhere).
   */
  readonly orphanAfterMs: number;
  /** How often the queue, cancel requests and orphans are polled. @default 1000 */
  readonly pollMs?: number;
  readonly log?: (line: string) => void;
}

/** The consumer; bind it to the hub it feeds. */
export interface QueueConsumer extends DispatchSource {
  bind(hub: AgentHub): Promise<void>;
  close(): Promise<void>;
}

interface Relayed {
  readonly record: DispatchRecord;
  readonly controller: AbortController;
  token: number | null;
}

/** Creates the consumer; it starts listening when bound to a hub. */
export function createQueueConsumer(options: QueueConsumerOptions): QueueConsumer {
  const { store, replicaId } = options;
  const log = options.log ?? (() => {});
  const pollMs = options.pollMs ?? 1000;
  const relays = new Map<number, Relayed>();
  const pulling = new Map<string, Promise<void>>();
  const pullAgain = new Set<string>();
  let hub: AgentHub | undefined;
  let closed = false;
  const unlisten: Array<() => Promise<void>> = [];
  let poller: NodeJS.Timeout | undefined;

  const notifyDispatch = (kind: 'm' | 'c', id: number) =>
    store.cluster.notify(DISPATCH_CHANNEL, `${kind}:${id}`).catch(() => {});

  /** What the task's secrets need: values for the agent, and a redactor for what comes back. */
  const withSecrets = async (
    assignment: TaskAssignment,
  ): Promise<{ assignment: TaskAssignment; redactor: Redactor }> => {
    const config = assignment.context?.secrets;
    if (!config || !options.secrets) return { assignment, redactor: NO_REDACTION };
    const loaded = await options.secrets.load(config);
    return { assignment: { ...assignment, secrets: loaded.tree }, redactor: loaded.redactor };
  };

  const relayFor = (record: DispatchRecord, redactor: Redactor): DispatchRelay => {
    const relayed: Relayed = {
      record,
      controller: new AbortController(),
      token: record.token,
    };
    relays.set(record.id, relayed);
    if (record.cancelReason) relayed.controller.abort(new Error(record.cancelReason));
    let buffer: DispatchMessage[] = [];
    let flushing: Promise<void> = Promise.resolve();
    let scheduled = false;
    let persisted = false;
    const keep = <T>(what: string, fn: () => Promise<T>) =>
      retrying(fn, { what: `${what} of ${record.taskId}`, log, stopped: () => closed });
    /** Stores buffered messages, in order; a batch is tried again until the store takes it. */
    const flush = (): Promise<void> => {
      scheduled = false;
      const batch = buffer;
      buffer = [];
      if (batch.length === 0) return flushing;
      flushing = flushing
        .then(() => keep('relay the output', () => store.cluster.addMessages(batch)))
        .then(() => notifyDispatch('m', record.id))
        .catch((e: unknown) =>
          log(`gave up relaying output of ${record.taskId}: ${coerceError(e).message}`),
        );
      return flushing;
    };
    const push = (message: DispatchMessage) => {
      buffer.push(message);
      if (!scheduled) {
        scheduled = true;
        setImmediate(() => void flush());
      }
    };
    const done = () => {
      if (relays.get(record.id) === relayed) relays.delete(record.id);
    };
    return {
      signal: relayed.controller.signal,
      async granted(lease) {
        relayed.token = lease.token;
        await store.cluster.setDispatchToken(record.id, replicaId, lease.token);
      },
      output(lease, seq, stream, line, step) {
        push({
          dispatchId: record.id,
          token: lease.token,
          seq,
          kind: 'output',
          body: { stream, line: redactor.text(line), ...(step !== undefined ? { step } : {}) },
        });
      },
      step(lease, seq, stepRecord: StepRecord) {
        push({
          dispatchId: record.id,
          token: lease.token,
          seq,
          kind: 'step',
          body: redactor.value(stepRecord),
        });
      },
      async persist(report, at) {
        await flush();
        await keep('relay the report', () =>
          store.cluster.finishDispatch(
            {
              dispatchId: record.id,
              token: at.lease.token,
              seq: at.seq,
              kind: 'report',
              body: redactor.value(report),
            },
            replicaId,
          ),
        );
        persisted = true;
        await notifyDispatch('m', record.id);
      },
      settle(report, at) {
        done();
        if (at && persisted) return;
        const body = redactor.value(report);
        void (async () => {
          await flush();
          if (at) {
            await keep('relay the report', () =>
              store.cluster.finishDispatch(
                { dispatchId: record.id, token: at.lease.token, seq: at.seq, kind: 'report', body },
                replicaId,
              ),
            );
          } else {
            // Made here (agent lost, cancelled before it ran…): the lease is revoked with it.
            await keep('fail over', () => store.cluster.failDispatch(record.id, replicaId, body));
          }
          await notifyDispatch('m', record.id);
        })().catch((e: unknown) =>
          log(`gave up relaying the report of ${record.taskId}: ${coerceError(e).message}`),
        );
      },
      release() {
        done();
        void (async () => {
          await flush();
          const token = relayed.token;
          if (token !== null) {
            await keep('revoke the lease', () =>
              store.agents.revokeLease({ runId: record.runId, taskId: record.taskId, token }),
            );
          }
          await keep('queue again', () => store.cluster.releaseDispatch(record.id, replicaId));
          await store.cluster.notify(QUEUE_CHANNEL, record.server);
        })().catch((e: unknown) =>
          log(`could not queue ${record.taskId} again: ${coerceError(e).message}`),
        );
      },
      abandon() {
        done();
        void (async () => {
          await flush();
          // Still ours: the agent did not hold it when it moved, so another agent may run it.
          const now = await store.cluster.findDispatch(
            record.runId,
            record.taskId,
            record.attempt,
            record.mode,
          );
          if (now?.claimedBy !== replicaId || now.state !== 'claimed') return;
          if (now.token !== null) {
            await store.agents.revokeLease({
              runId: record.runId,
              taskId: record.taskId,
              token: now.token,
            });
          }
          await store.cluster.releaseDispatch(record.id, replicaId);
          await store.cluster.notify(QUEUE_CHANNEL, record.server);
        })().catch((e: unknown) =>
          log(`could not let go of ${record.taskId}: ${coerceError(e).message}`),
        );
      },
    };
  };

  const serve = async (record: DispatchRecord): Promise<void> => {
    const assignment = record.assignment as TaskAssignment;
    let prepared: { assignment: TaskAssignment; redactor: Redactor };
    try {
      prepared = await withSecrets(assignment);
    } catch (e: unknown) {
      const message = coerceError(e).message;
      const relay = relayFor(record, NO_REDACTION);
      relay.settle({
        status: 'failed',
        result: { steps: [] },
        failure: { type: 'secrets', message, nonRetryable: true },
      });
      return;
    }
    hub!.serve(prepared.assignment, relayFor(record, prepared.redactor));
  };

  const pull = (server: string, free?: number): void => {
    if (closed || !hub) return;
    if (pulling.has(server)) {
      pullAgain.add(server);
      return;
    }
    const run = Promise.resolve().then(async () => {
      try {
        let n = free ?? hub!.capacity(server);
        while (n > 0 && !closed) {
          pullAgain.delete(server);
          const claimed = await store.cluster.claimDispatches(server, replicaId, n);
          for (const record of claimed) await serve(record);
          if (claimed.length < n && !pullAgain.has(server)) break;
          n = hub!.capacity(server);
        }
      } catch (e: unknown) {
        log(`could not claim tasks of server ${server}: ${coerceError(e).message}`);
      } finally {
        pulling.delete(server);
      }
    });
    pulling.set(server, run);
  };

  const cancel = (id: number, reason: string) => {
    const relayed = relays.get(id);
    if (relayed && !relayed.controller.signal.aborted) relayed.controller.abort(new Error(reason));
  };

  const lostReport = (record: DispatchRecord, why: string): TaskReport => ({
    status: 'failed',
    result: { steps: [] },
    failure: {
      type: AGENT_FAILURE.lost,
      message: `the agent of server ${record.server} was lost while it ran the task: ${why}`,
    },
  });

  /** Queues again, or fails over, a dispatch nobody relays. */
  const settleOrphan = async (record: DispatchRecord, why: string) => {
    if (record.token === null) {
      await store.cluster.releaseDispatch(record.id, replicaId);
      await store.cluster.notify(QUEUE_CHANNEL, record.server);
      return;
    }
    if (await store.cluster.failDispatch(record.id, replicaId, lostReport(record, why))) {
      log(`task ${record.taskId} of run ${record.runId} failed over: ${why}`);
      await notifyDispatch('m', record.id);
    }
  };

  let sweeps = 0;
  const sweep = async () => {
    if (closed || !hub) return;
    sweeps++;
    try {
      for (const server of hub.connectedServers()) pull(server);
      for (const record of await store.cluster.cancelRequests(replicaId)) {
        cancel(record.id, record.cancelReason ?? 'cancelled');
      }
      for (const record of await store.cluster.claimOrphans(
        replicaId,
        options.orphanAfterMs,
        100,
      )) {
        await settleOrphan(
          record,
          'the replica it was connected to stopped, and it did not come back',
        );
      }
      if (sweeps % 5 === 0) {
        // Claimed here but relayed by nobody (a relay that failed to record its outcome).
        const stale = await store.cluster.listClaimed(replicaId, options.orphanAfterMs);
        for (const record of stale) {
          if (!relays.has(record.id)) await settleOrphan(record, 'no agent here holds it');
        }
      }
      if (sweeps % 30 === 0) await store.cluster.pruneDispatches();
    } catch (e: unknown) {
      log(`could not sweep the task queue: ${coerceError(e).message}`);
    }
  };

  return {
    pull,

    async adopt(lease: LeaseRef) {
      const record = await store.cluster.adoptDispatch(
        lease.runId,
        lease.taskId,
        lease.token,
        replicaId,
      );
      if (!record) return undefined;
      const { assignment, redactor } = await withSecrets(record.assignment as TaskAssignment).catch(
        () => ({ assignment: record.assignment as TaskAssignment, redactor: NO_REDACTION }),
      );
      log(
        `took over task ${record.taskId} of run ${record.runId} from replica ${record.claimedBy ?? '?'}`,
      );
      return { assignment, relay: relayFor({ ...record, token: lease.token }, redactor) };
    },

    async liveElsewhere(server, agentId) {
      const agents = await store.agents.listAgents(server);
      const now = Date.now();
      const live = agents.find(
        (a) =>
          a.id !== agentId &&
          (a.status === 'connected' || a.status === 'draining') &&
          now - a.lastHeartbeatAt.getTime() < options.agentStaleMs,
      );
      return live?.id;
    },

    welcomed(agentId) {
      store.cluster.notify(AGENTS_CHANNEL, `${replicaId} ${agentId}`).catch(() => {});
    },

    async bind(bound) {
      hub = bound;
      unlisten.push(
        await store.listen(
          QUEUE_CHANNEL,
          (server) => {
            if (hub?.capacity(server)) pull(server);
          },
          () => void sweep(),
        ),
        await store.listen(DISPATCH_CHANNEL, (payload) => {
          if (!payload.startsWith('c:')) return;
          const id = Number(payload.slice(2));
          if (!relays.has(id)) return;
          void store.cluster
            .cancelRequests(replicaId)
            .then((list) => {
              for (const r of list) if (r.id === id) cancel(id, r.cancelReason ?? 'cancelled');
            })
            .catch(() => {});
        }),
        await store.listen(AGENTS_CHANNEL, (payload) => {
          const [from, agentId] = payload.split(' ');
          if (from !== replicaId && agentId) hub?.agentMoved(agentId);
        }),
      );
      poller = setInterval(() => void sweep(), pollMs);
      poller.unref();
    },

    async close() {
      closed = true;
      clearInterval(poller);
      for (const u of unlisten) await u().catch(() => {});
      await Promise.allSettled([...pulling.values()]);
    },
  };
}
