/**
 * The agent hub: the orchestrator's side of agents. It keeps one queue per server, consumed only
 * by that server's agent; registers agents and fences off the ones that were replaced; grants
 * each assignment a lease whose token grows at every grant; routes an agent's output, steps and
 * report back to the waiting dispatch; and fails a task over when its agent goes silent.
 *
 * Guarantees, and how:
 * - One agent per server: a second agent is refused while the first is heard from; once the first
 *   is silent it is declared lost and the newcomer, with a higher epoch, takes over. An agent whose
 *   epoch is below the server's newest is refused for good when it comes back.
 * - A task never runs under two leases at once: the hub fails a silent agent's tasks over only
 *   after `staleAfterMs`, and the agent stops them itself a heartbeat before that (`leaseMs` in its
 *   welcome). A report under a revoked or older token is refused, in memory and in the store.
 * - A result is never lost or counted twice: messages carry a per-lease `seq`; the agent keeps
 *   what is not acknowledged and sends it again after a reconnect; the hub drops what it has seen,
 *   and a report whose lease is already `reported` is acknowledged again but not delivered again.
 *
 * The hub knows nothing of WebSockets: `ws.ts` hands it each connection as an {@link AgentLink}.
 *
 * @module
 */
import { createHash, randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import type { DispatchHooks, TaskAssignment, TaskReport } from '../engine/dispatch.ts';
import type { StepRecord, TaskFailure } from '../engine/types.ts';
import type { AgentStore, LeaseCompletion, LeaseGrant, LeaseKey } from '../store/agent-store.ts';
import { coerceError } from '../errors.ts';
import { AGENT_FAILURE } from './errors.ts';
import { createBatcher } from './batcher.ts';
import {
  AGENT_CLOSE,
  AGENT_PROTOCOL_VERSION,
  AgentMessageSchema,
  leaseKey,
  parseMessage,
  toTaskReport,
  type AgentHello,
  type AgentMessage,
  type Capabilities,
  type HubMessage,
  type LeaseRef,
} from './protocol.ts';

/** Options of {@link AgentHub}. */
export interface AgentHubOptions {
  /** Where agents and leases are kept (`store.agents`). */
  readonly store: AgentStore;
  /** How often agents send a heartbeat. @default 5000 */
  readonly heartbeatMs?: number;
  /** An agent not heard from for this long is lost: its tasks fail over. @default 3 × heartbeatMs */
  readonly staleAfterMs?: number;
  /** How long a task waits for its server's agent to connect before it fails. @default 60_000 */
  readonly agentWaitMs?: number;
  /** How long a new connection may take to say hello. @default 10_000 */
  readonly helloTimeoutMs?: number;
  /**
   * Called when a task waits for a server that has no agent: start one (the local provider does).
   * Tasks waiting for the server fail with `agent-start-failed` when it rejects.
   */
  readonly onAgentNeeded?: (server: string, assignment: TaskAssignment) => Promise<void>;
  /** Where the hub reports what happens to agents. @default nothing */
  readonly log?: (line: string) => void;
  /**
   * The shared queue of replicas on one PostgreSQL (see `cluster/`): the hub draws tasks from it
   * for the agents connected here, and takes over tasks of agents that come from another replica.
   */
  readonly source?: DispatchSource;
}

/**
 * Where a task claimed from the shared queue reports to: the replica driving its run reads what
 * is relayed. Calls carry the lease and the agent's own `seq`, so a message relayed twice (by two
 * replicas, around a reconnection) is stored once.
 */
export interface DispatchRelay {
  /** Aborts when the run's driver asks to stop the attempt. */
  readonly signal: AbortSignal;
  /** The lease was granted; resolves once it is recorded, before the agent gets the task. */
  granted(lease: LeaseRef): Promise<void>;
  output(
    lease: LeaseRef,
    seq: number,
    stream: 'stdout' | 'stderr' | 'info',
    line: string,
    step?: string,
  ): void;
  step(lease: LeaseRef, seq: number, record: StepRecord): void;
  /**
   * Stores the agent's report for the driving replica; resolves once it is durable, before the
   * agent is told it arrived. Rejects only when it could not be stored at all.
   */
  persist(
    report: TaskReport,
    at: { readonly lease: LeaseRef; readonly seq: number },
  ): Promise<void>;
  /** The outcome: the agent's report (with its lease and seq), or one the hub made. */
  settle(report: TaskReport, at?: { readonly lease: LeaseRef; readonly seq: number }): void;
  /** The agent left before it took the task (or never held it): back to the shared queue. */
  release(): void;
  /** The agent moved to another replica, which took the task over: forget it here. */
  abandon(): void;
}

/** The shared queue a hub draws from when replicas share a database. */
export interface DispatchSource {
  /** A session of `server` has `free` slots and nothing waits for it here: claim some. */
  pull(server: string, free: number): void;
  /**
   * An agent holds a lease this hub did not grant (it came from another replica): the task and a
   * relay for it, if the queue says it is still live there.
   */
  adopt(
    lease: LeaseRef,
    server: string,
  ): Promise<{ readonly assignment: TaskAssignment; readonly relay: DispatchRelay } | undefined>;
  /** Another agent of the server, live on another replica, if any. */
  liveElsewhere(server: string, agentId: string): Promise<string | undefined>;
  /** This hub welcomed an agent: a replica it was connected to before lets go of it. */
  welcomed(agentId: string): void;
}

/** How the hub talks to one connected agent. */
export interface AgentLink {
  send(message: HubMessage): void;
  close(code: number, reason: string): void;
}

/** What an agent's token allows: one server, or every server (`*`). */
export interface AgentBinding {
  readonly server: string;
  /** Who holds the token, for messages (never the token). */
  readonly principal: string;
}

/** One connection, as the transport drives it. */
export interface AgentConnection {
  /** A text frame arrived. */
  message(data: string): void;
  /** The connection closed. */
  closed(): void;
}

/** What the hub tells about an agent. */
export interface AgentInfo {
  readonly agentId: string;
  readonly server: string;
  readonly epoch: number;
  readonly version: string;
  readonly connected: boolean;
  readonly draining: boolean;
  /** Tasks it holds leases for. */
  readonly running: number;
  readonly capabilities: Capabilities;
  /** Milliseconds since it was last heard from. */
  readonly silentMs: number;
}

/** Things that happen to agents and leases, for logs, metrics and tests. */
export type AgentHubEvent =
  | { type: 'agent:connected'; agentId: string; server: string; epoch: number; resumed: boolean }
  | { type: 'agent:disconnected'; agentId: string; server: string }
  | { type: 'agent:draining'; agentId: string; server: string }
  | { type: 'agent:stopped'; agentId: string; server: string }
  | { type: 'agent:lost'; agentId: string; server: string; reason: string; tasks: number }
  | { type: 'agent:rejected'; agentId: string; server: string; code: number; reason: string }
  | { type: 'lease:granted'; lease: LeaseRef; agentId: string; server: string; attempt: number }
  | { type: 'lease:reported'; lease: LeaseRef; agentId: string; duplicate: boolean }
  | { type: 'lease:refused'; lease: LeaseRef; agentId: string; reason: string };

interface Session {
  readonly agentId: string;
  readonly server: string;
  epoch: number;
  version: string;
  capabilities: Capabilities;
  link: AgentLink | undefined;
  conn: Conn | undefined;
  draining: boolean;
  bye: boolean;
  lastSeen: number;
  touched: boolean;
  /** Leases being granted: they count against the agent's slots. */
  granting: number;
  readonly inflight: Map<string, Inflight>;
}

interface Inflight {
  readonly lease: LeaseRef;
  readonly entry: Entry;
  readonly session: Session;
  lastSeq: number;
  ackedSeq: number;
  completing: boolean;
  cancelReason: string | undefined;
  readonly steps: StepRecord[];
}

interface Entry {
  readonly assignment: TaskAssignment;
  readonly hooks: DispatchHooks;
  readonly server: string;
  /** Set for a task of the shared queue: its messages go there. */
  readonly relay?: DispatchRelay;
  state: 'queued' | 'granting' | 'sent' | 'settled';
  aborted: boolean;
  inflight: Inflight | undefined;
  waitTimer: NodeJS.Timeout | undefined;
  settle(report: TaskReport, at?: { readonly lease: LeaseRef; readonly seq: number }): void;
}

interface Conn {
  readonly link: AgentLink;
  readonly binding: AgentBinding;
  session: Session | undefined;
  /** Messages are handled one at a time, in order. */
  chain: Promise<void>;
  closed: boolean;
  helloTimer: NodeJS.Timeout | undefined;
}

/** Acknowledge output at least this often, so an agent's unacknowledged backlog stays small. */
const ACK_EVERY = 64;

/** The orchestrator's side of agents. */
export class AgentHub {
  readonly heartbeatMs: number;
  readonly staleAfterMs: number;
  private readonly agentWaitMs: number;
  private readonly helloTimeoutMs: number;
  private readonly store: AgentStore;
  private readonly log: (line: string) => void;
  /** The session serving each server: at most one. */
  private readonly sessions = new Map<string, Session>();
  private readonly queues = new Map<string, Entry[]>();
  private readonly leases = new Map<string, Inflight>();
  private readonly waiters = new Map<string, Set<() => void>>();
  private readonly starting = new Map<string, Promise<void>>();
  private readonly serverLocks = new Map<string, Promise<void>>();
  private readonly localTokens = new Map<string, string>();
  private readonly listeners = new Set<(event: AgentHubEvent) => void>();
  private readonly sweeper: NodeJS.Timeout;
  private lastTouchFlush = performance.now();
  private closed = false;
  /** Grants and completions of one rollout batch reach the store in one statement each. */
  private readonly grantLease: (grant: LeaseGrant) => Promise<number>;
  private readonly completeLease: (key: LeaseKey) => Promise<LeaseCompletion>;

  constructor(private readonly options: AgentHubOptions) {
    this.store = options.store;
    this.heartbeatMs = options.heartbeatMs ?? 5000;
    this.staleAfterMs = options.staleAfterMs ?? 3 * this.heartbeatMs;
    if (this.staleAfterMs <= this.heartbeatMs) {
      throw new RangeError(
        `staleAfterMs (${this.staleAfterMs}) must be longer than heartbeatMs (${this.heartbeatMs})`,
      );
    }
    this.agentWaitMs = options.agentWaitMs ?? 60_000;
    this.helloTimeoutMs = options.helloTimeoutMs ?? 10_000;
    this.log = options.log ?? (() => {});
    const task = (l: { runId: string; taskId: string }) => `${l.runId}\n${l.taskId}`;
    this.grantLease = createBatcher<LeaseGrant, number>((g) => this.store.grantLeases(g), task);
    this.completeLease = createBatcher<LeaseKey, LeaseCompletion>(
      (k) => this.store.completeLeases(k),
      task,
    );
    this.sweeper = setInterval(
      () => this.sweep(),
      Math.max(10, Math.min(this.heartbeatMs, this.staleAfterMs / 4)),
    );
    this.sweeper.unref();
  }

  // ── tokens ───────────────────────────────────────────────────────────────

  /**
   * Issues a token bound to one server, for an agent this orchestrator starts itself (the local
   * provider's). It is valid until the hub closes.
   */
  issueToken(server: string): string {
    const token = randomBytes(24).toString('base64url');
    this.localTokens.set(digest(token), server);
    return token;
  }

  /** The binding of a token issued by {@link issueToken}, if it is one. */
  verifyLocalToken(token: string | undefined): AgentBinding | undefined {
    if (!token) return undefined;
    const server = this.localTokens.get(digest(token));
    return server === undefined ? undefined : { server, principal: `local agent of ${server}` };
  }

  // ── observing ────────────────────────────────────────────────────────────

  /** Calls `listener` with every hub event; returns a function that stops it. */
  subscribe(listener: (event: AgentHubEvent) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** The agents known now, connected or within their lease. */
  agents(): AgentInfo[] {
    const now = performance.now();
    return [...this.sessions.values()].map((s) => ({
      agentId: s.agentId,
      server: s.server,
      epoch: s.epoch,
      version: s.version,
      connected: s.link !== undefined,
      draining: s.draining,
      running: s.inflight.size + s.granting,
      capabilities: s.capabilities,
      silentMs: Math.round(now - s.lastSeen),
    }));
  }

  /**
   * Free slots of the server's agent connected here that no task waiting here will take; 0
   * without such an agent, or while it drains.
   */
  capacity(server: string): number {
    const s = this.sessions.get(server);
    if (!s?.link || s.draining || this.closed || this.queues.get(server)?.length) return 0;
    return Math.max(0, s.capabilities.slots - s.inflight.size - s.granting);
  }

  /** Servers whose agent is connected here. */
  connectedServers(): string[] {
    return [...this.sessions.values()].filter((s) => s.link).map((s) => s.server);
  }

  /** Tasks waiting in a server's queue for its agent. */
  queued(server: string): number {
    return this.queues.get(server)?.length ?? 0;
  }

  /**
   * Resolves once an agent for the server is connected and takes tasks (is not draining).
   *
   * @throws {Error} after `timeoutMs`, or when `signal` aborts
   */
  waitForAgent(server: string, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    const s = this.sessions.get(server);
    if (s?.link && !s.draining) return Promise.resolve();
    return new Promise((resolve, reject) => {
      let set = this.waiters.get(server);
      if (!set) this.waiters.set(server, (set = new Set()));
      const done = (error?: Error) => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        set.delete(ready);
        if (error) reject(error);
        else resolve();
      };
      const ready = () => done();
      const onAbort = () => done(coerceError(signal?.reason ?? new Error('aborted')));
      const timer = setTimeout(
        () => done(new Error(`no agent for server ${server} connected within ${timeoutMs}ms`)),
        timeoutMs,
      );
      set.add(ready);
      signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  /** Asks the server's agent to finish what it runs and take nothing new. */
  drain(server: string): boolean {
    const s = this.sessions.get(server);
    if (!s?.link) return false;
    s.link.send({ type: 'agent:drain' });
    return true;
  }

  // ── dispatching ──────────────────────────────────────────────────────────

  /**
   * Sends an assignment to its server's agent (`server:NAME` queue) and resolves with the report.
   * Never rejects: a lost agent, a missing one or a cancellation is a failed report.
   */
  dispatch(assignment: TaskAssignment, hooks: DispatchHooks): Promise<TaskReport> {
    const queue = assignment.task.queue;
    if (!queue.startsWith('server:')) {
      return Promise.resolve(
        failed(
          { type: 'dispatch-error', message: `agents serve server queues only, not ${queue}` },
          [],
        ),
      );
    }
    const server = queue.slice('server:'.length);
    return new Promise<TaskReport>((resolve) => {
      const onAbort = () => this.abort(entry);
      const entry: Entry = {
        assignment,
        hooks,
        server,
        state: 'queued',
        aborted: false,
        inflight: undefined,
        waitTimer: undefined,
        settle: (report) => {
          if (entry.state === 'settled') return;
          entry.state = 'settled';
          clearTimeout(entry.waitTimer);
          hooks.signal.removeEventListener('abort', onAbort);
          resolve(report);
        },
      };
      if (this.closed) return entry.settle(shutdownReport());
      if (hooks.signal.aborted) {
        return entry.settle(
          failed({ type: 'cancelled', message: 'cancelled before it reached an agent' }, []),
        );
      }
      hooks.signal.addEventListener('abort', onAbort, { once: true });
      this.queueOf(server).push(entry);
      if (!this.sessions.get(server)?.link) {
        this.armWait(entry);
        this.needAgent(server, assignment);
      }
      this.pump(server);
    });
  }

  /**
   * Hands a task claimed from the shared queue to the server's agent connected here; what the
   * agent says goes to `relay`. Without such an agent, the task goes back to the queue.
   */
  serve(assignment: TaskAssignment, relay: DispatchRelay): void {
    const server = assignment.task.queue.slice('server:'.length);
    const { entry, onAbort } = this.relayedEntry(assignment, server, relay, 'queued');
    const s = this.sessions.get(server);
    if (this.closed || !s?.link || s.draining) return relay.release();
    if (relay.signal.aborted) {
      return entry.settle(
        failed({ type: 'cancelled', message: 'cancelled before it reached an agent' }, []),
      );
    }
    relay.signal.addEventListener('abort', onAbort, { once: true });
    this.queueOf(server).push(entry);
    this.pump(server);
  }

  /**
   * The entry of a task of the shared queue: it settles once, through `relay`, and then stops
   * listening for the relay's abort. The caller adds `onAbort` to the relay's signal when the
   * entry is in place.
   */
  private relayedEntry(
    assignment: TaskAssignment,
    server: string,
    relay: DispatchRelay,
    state: 'queued' | 'sent',
  ): { entry: Entry; onAbort: () => void } {
    const onAbort = () => this.abort(entry);
    const entry: Entry = {
      assignment,
      hooks: { signal: relay.signal, output: () => {}, step: () => {} },
      server,
      relay,
      state,
      aborted: false,
      inflight: undefined,
      waitTimer: undefined,
      settle: (report, at) => {
        if (entry.state === 'settled') return;
        entry.state = 'settled';
        relay.signal.removeEventListener('abort', onAbort);
        relay.settle(report, at);
      },
    };
    return { entry, onAbort };
  }

  /** Records that `entry` is held by the session's agent under `lease`. */
  private track(s: Session, lease: LeaseRef, entry: Entry): void {
    const inflight: Inflight = {
      lease,
      entry,
      session: s,
      lastSeq: 0,
      ackedSeq: 0,
      completing: false,
      cancelReason: undefined,
      steps: [],
    };
    entry.inflight = inflight;
    const key = leaseKey(lease);
    s.inflight.set(key, inflight);
    this.leases.set(key, inflight);
  }

  /** Gives a relayed task back to the shared queue, unsettled. */
  private unserve(entry: Entry): void {
    if (entry.state === 'settled' || !entry.relay) return;
    entry.state = 'settled';
    entry.relay.release();
  }

  private queueOf(server: string): Entry[] {
    let q = this.queues.get(server);
    if (!q) this.queues.set(server, (q = []));
    return q;
  }

  private armWait(entry: Entry): void {
    clearTimeout(entry.waitTimer);
    entry.waitTimer = setTimeout(() => {
      if (entry.state !== 'queued' || this.sessions.get(entry.server)?.link) return;
      this.unqueue(entry);
      entry.settle(
        failed(
          {
            type: AGENT_FAILURE.unavailable,
            message:
              `no agent for server ${entry.server} connected within ${Math.round(this.agentWaitMs / 1000)}s; ` +
              `start one there: muster agent --server ${entry.server} --orchestrator URL --token TOKEN`,
          },
          [],
        ),
      );
    }, this.agentWaitMs);
    entry.waitTimer.unref();
  }

  private unqueue(entry: Entry): void {
    const q = this.queues.get(entry.server);
    const i = q?.indexOf(entry) ?? -1;
    if (q && i >= 0) q.splice(i, 1);
  }

  private needAgent(server: string, assignment: TaskAssignment): void {
    const start = this.options.onAgentNeeded;
    if (!start || this.starting.has(server) || this.closed) return;
    const starting = (async () => {
      try {
        await start(server, assignment);
      } catch (e: unknown) {
        const message = coerceError(e).message;
        this.log(`could not start an agent for server ${server}: ${message}`);
        if (this.sessions.get(server)?.link) return;
        for (const entry of [...(this.queues.get(server) ?? [])]) {
          this.unqueue(entry);
          entry.settle(failed({ type: AGENT_FAILURE.startFailed, message }, []));
        }
      } finally {
        this.starting.delete(server);
      }
    })();
    this.starting.set(server, starting);
  }

  /** Hands queued assignments to the server's agent while it has free slots. */
  private pump(server: string): void {
    const s = this.sessions.get(server);
    const q = this.queues.get(server);
    if (!s?.link || s.draining || this.closed) return;
    while (q && q.length > 0 && s.inflight.size + s.granting < s.capabilities.slots) {
      void this.assign(s, q.shift()!);
    }
    const free = s.capabilities.slots - s.inflight.size - s.granting;
    if (free > 0 && !q?.length) this.options.source?.pull(server, free);
  }

  private async assign(s: Session, entry: Entry): Promise<void> {
    const a = entry.assignment;
    entry.state = 'granting';
    clearTimeout(entry.waitTimer);
    s.granting++;
    let token: number;
    try {
      token = await this.grantLease({
        runId: a.runId,
        taskId: a.task.id,
        attempt: a.attempt,
        mode: a.mode,
        agentId: s.agentId,
        server: s.server,
      });
    } catch (e: unknown) {
      s.granting--;
      // A task of the shared queue waits there for the store to answer again.
      if (entry.relay) this.unserve(entry);
      else entry.settle(failed({ type: 'dispatch-error', message: coerceError(e).message }, []));
      this.pump(s.server);
      return;
    }
    const lease: LeaseRef = { runId: a.runId, taskId: a.task.id, token };
    if (entry.relay) {
      try {
        // Recorded before the agent has it: whoever takes the agent over finds the task by it.
        await entry.relay.granted(lease);
      } catch (e: unknown) {
        s.granting--;
        this.log(`could not record the lease of ${a.task.id}: ${coerceError(e).message}`);
        await this.revoke(lease);
        this.unserve(entry);
        return;
      }
    }
    s.granting--;
    if (entry.aborted || this.closed) {
      await this.revoke(lease);
      entry.settle(
        this.closed
          ? shutdownReport()
          : failed({ type: 'cancelled', message: 'cancelled before the agent took it' }, []),
      );
      this.pump(s.server);
      return;
    }
    if (this.sessions.get(s.server) !== s || !s.link || s.draining) {
      // The agent left or began draining while the lease was granted: queue the task again.
      await this.revoke(lease);
      if (entry.relay) {
        this.unserve(entry);
        return;
      }
      entry.state = 'queued';
      this.queueOf(s.server).unshift(entry);
      if (!this.sessions.get(s.server)?.link) this.armWait(entry);
      this.pump(s.server);
      return;
    }
    entry.state = 'sent';
    this.track(s, lease, entry);
    s.link.send({ type: 'task:assign', lease, assignment: a as never });
    this.emit({
      type: 'lease:granted',
      lease,
      agentId: s.agentId,
      server: s.server,
      attempt: a.attempt,
    });
  }

  private abort(entry: Entry): void {
    const reason = abortReason(entry.hooks.signal);
    if (entry.state === 'queued') {
      this.unqueue(entry);
      entry.settle(failed({ type: 'cancelled', message: `${reason} while queued` }, []));
    } else if (entry.state === 'granting') {
      entry.aborted = true;
    } else if (entry.state === 'sent' && entry.inflight) {
      // The agent aborts the task and still reports; a lost agent is failed over as usual.
      entry.inflight.cancelReason = reason;
      entry.inflight.session.link?.send({
        type: 'task:cancel',
        lease: entry.inflight.lease,
        reason,
      });
    }
  }

  // ── connections ──────────────────────────────────────────────────────────

  /**
   * Takes a new connection whose token allows `binding`; the transport calls the returned
   * handlers with its frames and its close.
   */
  connect(link: AgentLink, binding: AgentBinding): AgentConnection {
    const conn: Conn = {
      link,
      binding,
      session: undefined,
      chain: Promise.resolve(),
      closed: false,
      helloTimer: undefined,
    };
    if (this.closed) {
      link.close(AGENT_CLOSE.goingAway, 'the orchestrator is shutting down');
      conn.closed = true;
    } else {
      conn.helloTimer = setTimeout(() => {
        if (!conn.session && !conn.closed) {
          link.close(AGENT_CLOSE.protocol, `no agent:hello within ${this.helloTimeoutMs}ms`);
        }
      }, this.helloTimeoutMs);
      conn.helloTimer.unref();
    }
    return {
      message: (data) => {
        if (conn.closed) return;
        const parsed = parseMessage(AgentMessageSchema, data);
        if (!parsed.ok) {
          this.log(`agent message refused: ${parsed.error}`);
          conn.closed = true;
          link.close(AGENT_CLOSE.protocol, truncate(`bad message: ${parsed.error}`));
          return;
        }
        const s = conn.session;
        if (s) s.lastSeen = performance.now();
        // Answered at once, never behind a message waiting on the store: an agent that hears
        // nothing stops its tasks, and the store may be restarting.
        if (parsed.message.type === 'agent:heartbeat' && s && s.conn === conn) {
          s.touched = true;
          link.send({ type: 'hub:heartbeat' });
          return;
        }
        conn.chain = conn.chain
          .then(() => this.handle(conn, parsed.message))
          .catch((e: unknown) => this.log(`agent message failed: ${coerceError(e).message}`));
      },
      closed: () => {
        conn.closed = true;
        clearTimeout(conn.helloTimer);
        conn.chain = conn.chain.then(() => this.disconnected(conn));
      },
    };
  }

  private async handle(conn: Conn, msg: AgentMessage): Promise<void> {
    if (msg.type === 'agent:hello') {
      if (conn.session) {
        conn.link.close(AGENT_CLOSE.protocol, 'agent:hello was sent twice');
        return;
      }
      clearTimeout(conn.helloTimer);
      await this.lockServer(msg.server, () => this.hello(conn, msg));
      return;
    }
    const s = conn.session;
    if (!s) {
      conn.link.close(AGENT_CLOSE.protocol, `${msg.type} before agent:hello`);
      return;
    }
    if (s.conn !== conn) return; // a connection replaced by a newer one of the same agent
    s.lastSeen = performance.now();
    s.touched = true;
    switch (msg.type) {
      case 'agent:heartbeat':
        conn.link.send({ type: 'hub:heartbeat' });
        return;
      case 'task:output': {
        const inflight = this.current(s, msg.lease);
        if (!inflight || msg.seq <= inflight.lastSeq) return;
        inflight.lastSeq = msg.seq;
        if (inflight.entry.relay) {
          inflight.entry.relay.output(
            inflight.lease,
            msg.seq,
            msg.stream,
            msg.line,
            ...(msg.step !== undefined ? [msg.step] : []),
          );
        } else {
          inflight.entry.hooks.output(
            msg.stream,
            msg.line,
            ...(msg.step !== undefined ? [msg.step] : []),
          );
        }
        if (msg.seq - inflight.ackedSeq >= ACK_EVERY) this.ack(inflight, msg.seq);
        return;
      }
      case 'task:step': {
        const inflight = this.current(s, msg.lease);
        if (!inflight || msg.seq <= inflight.lastSeq) return;
        inflight.lastSeq = msg.seq;
        inflight.steps.push(msg.record);
        if (inflight.entry.relay) inflight.entry.relay.step(inflight.lease, msg.seq, msg.record);
        else inflight.entry.hooks.step(msg.record);
        this.ack(inflight, msg.seq);
        return;
      }
      case 'task:report':
        await this.report(s, msg.lease, msg.seq, toTaskReport(msg.report));
        return;
      case 'task:refused': {
        const inflight = this.current(s, msg.lease);
        if (!inflight) return;
        this.forget(inflight);
        await this.revoke(msg.lease);
        s.draining = true;
        const entry = inflight.entry;
        if (entry.relay) {
          this.unserve(entry);
          return;
        }
        if (entry.state !== 'settled') {
          entry.state = 'queued';
          entry.inflight = undefined;
          this.queueOf(s.server).unshift(entry);
        }
        return;
      }
      case 'agent:draining':
        if (!s.draining) {
          s.draining = true;
          this.log(`agent ${s.agentId} of server ${s.server} is draining`);
          this.emit({ type: 'agent:draining', agentId: s.agentId, server: s.server });
          await this.store.setAgentStatus(s.agentId, 'draining').catch(() => {});
        }
        return;
      case 'agent:bye':
        s.bye = true;
        return;
    }
  }

  /**
   * Tries a store write again for a while (the database restarting): a report held back would
   * keep the agent's slot taken until the agent reconnects.
   */
  private async withRetries<T>(fn: () => Promise<T>): Promise<T> {
    const deadline = performance.now() + 60_000;
    for (let delay = 100; ; delay = Math.min(2000, delay * 2)) {
      try {
        return await fn();
      } catch (e: unknown) {
        if (this.closed || performance.now() + delay > deadline) throw e;
        await new Promise((r) => setTimeout(r, delay));
      }
    }
  }

  /** The in-flight lease a message names, if it is this agent's; otherwise the agent drops it. */
  private current(s: Session, lease: LeaseRef): Inflight | undefined {
    const inflight = this.leases.get(leaseKey(lease));
    if (inflight && inflight.session === s) return inflight;
    this.refuse(s, lease, 'the lease is not yours: it was revoked or never granted');
    return undefined;
  }

  private async report(s: Session, lease: LeaseRef, seq: number, report: TaskReport) {
    const key = leaseKey(lease);
    const inflight = this.leases.get(key);
    if (inflight && inflight.session === s) {
      if (seq <= inflight.lastSeq || inflight.completing) return;
      inflight.lastSeq = seq;
      inflight.completing = true;
      let verdict;
      try {
        // A relayed task's report is stored for the driving replica before anything else.
        await inflight.entry.relay?.persist(report, { lease, seq });
        verdict = await this.withRetries(() => this.completeLease(lease));
      } catch (e: unknown) {
        // Not acknowledged: the agent sends it again after it reconnects.
        inflight.completing = false;
        inflight.lastSeq = seq - 1;
        this.log(`could not record the report of ${lease.taskId}: ${coerceError(e).message}`);
        return;
      }
      this.forget(inflight);
      if (verdict === 'stale') {
        this.refuse(s, lease, 'the lease was revoked');
        inflight.entry.settle(this.lostReport(inflight, 'its lease was revoked'));
      } else {
        s.link?.send({ type: 'task:ack', lease, seq });
        inflight.entry.settle(report, { lease, seq });
        this.emit({ type: 'lease:reported', lease, agentId: s.agentId, duplicate: false });
      }
      this.pump(s.server);
      return;
    }
    // Not in flight: a report sent again after it was accepted (its ack was lost), or a stale one.
    const stored = await this.store.getLease(lease.runId, lease.taskId);
    if (stored?.token === lease.token && stored.state === 'reported') {
      s.link?.send({ type: 'task:ack', lease, seq });
      this.emit({ type: 'lease:reported', lease, agentId: s.agentId, duplicate: true });
      return;
    }
    if (stored?.token === lease.token && stored.state === 'granted') await this.revoke(lease);
    this.refuse(
      s,
      lease,
      stored && stored.token > lease.token
        ? `token ${lease.token} is stale: the task was leased again with token ${stored.token}`
        : 'the lease was revoked',
    );
  }

  private refuse(s: Session, lease: LeaseRef, reason: string): void {
    s.link?.send({ type: 'task:revoke', lease, reason });
    this.emit({ type: 'lease:refused', lease, agentId: s.agentId, reason });
  }

  private ack(inflight: Inflight, seq: number): void {
    inflight.ackedSeq = seq;
    inflight.session.link?.send({ type: 'task:ack', lease: inflight.lease, seq });
  }

  private forget(inflight: Inflight): void {
    const key = leaseKey(inflight.lease);
    inflight.session.inflight.delete(key);
    if (this.leases.get(key) === inflight) this.leases.delete(key);
  }

  private async revoke(lease: LeaseRef): Promise<void> {
    await this.store.revokeLease(lease).catch((e: unknown) => {
      this.log(`could not revoke the lease of ${lease.taskId}: ${coerceError(e).message}`);
    });
  }

  /** Runs `fn` alone among the hellos of one server. */
  private async lockServer(server: string, fn: () => Promise<void>): Promise<void> {
    const previous = this.serverLocks.get(server) ?? Promise.resolve();
    const run = previous.then(fn, fn);
    const tail = run.catch(() => {});
    this.serverLocks.set(server, tail);
    try {
      await run;
    } finally {
      if (this.serverLocks.get(server) === tail) this.serverLocks.delete(server);
    }
  }

  private reject(conn: Conn, hello: AgentHello, code: number, reason: string): void {
    this.log(`agent ${hello.agentId} refused for server ${hello.server}: ${reason}`);
    this.emit({
      type: 'agent:rejected',
      agentId: hello.agentId,
      server: hello.server,
      code,
      reason,
    });
    conn.closed = true;
    conn.link.send({ type: 'hub:reject', code, message: reason });
    conn.link.close(code, truncate(reason));
  }

  private async hello(conn: Conn, hello: AgentHello): Promise<void> {
    if (conn.closed || this.closed) return;
    if (hello.protocol !== AGENT_PROTOCOL_VERSION) {
      return this.reject(
        conn,
        hello,
        AGENT_CLOSE.protocol,
        `protocol ${hello.protocol} is not supported; this orchestrator speaks ${AGENT_PROTOCOL_VERSION}: upgrade the agent`,
      );
    }
    const { binding } = conn;
    if (binding.server !== '*' && binding.server !== hello.server) {
      return this.reject(
        conn,
        hello,
        AGENT_CLOSE.forbidden,
        `the token of ${binding.principal} serves server "${binding.server}" only, not ` +
          `"${hello.server}" (a tokens file binds an agent token as agent:TOKEN:SERVER)`,
      );
    }
    const now = performance.now();
    const current = this.sessions.get(hello.server);
    if (
      current &&
      current.agentId !== hello.agentId &&
      current.link &&
      now - current.lastSeen < this.staleAfterMs
    ) {
      // Checked before registering: a refused newcomer must not fence off the live agent.
      return this.reject(
        conn,
        hello,
        AGENT_CLOSE.superseded,
        `server ${hello.server} is served by live agent ${current.agentId}; stop it first`,
      );
    }
    const elsewhere = await this.options.source?.liveElsewhere(hello.server, hello.agentId);
    if (elsewhere !== undefined) {
      return this.reject(
        conn,
        hello,
        AGENT_CLOSE.superseded,
        `server ${hello.server} is served by live agent ${elsewhere} on another replica; stop it first`,
      );
    }
    if (conn.closed) return;
    const reg = await this.store.registerAgent({
      id: hello.agentId,
      server: hello.server,
      version: hello.version,
    });
    if (conn.closed) return;
    if (reg.server !== hello.server) {
      return this.reject(
        conn,
        hello,
        AGENT_CLOSE.protocol,
        `agent id ${hello.agentId} belongs to server ${reg.server}; give each agent its own id`,
      );
    }
    if (reg.epoch < reg.newest) {
      await this.store.revokeAgentLeases(hello.agentId).catch(() => {});
      return this.reject(
        conn,
        hello,
        AGENT_CLOSE.superseded,
        `agent ${hello.agentId} was replaced by a newer agent of server ${hello.server} ` +
          `(epoch ${reg.newest} > ${reg.epoch}); its leases are void: stop this process`,
      );
    }
    if (current && current.agentId !== hello.agentId) {
      // No other agent is started for the server: this one takes the queue.
      await this.lose(current, `replaced by agent ${hello.agentId}`, { replaced: true });
    }
    let s = this.sessions.get(hello.server);
    const resumed = s?.agentId === hello.agentId;
    if (s && resumed) {
      if (s.conn && s.conn !== conn) {
        s.conn.closed = true;
        s.conn.link.close(AGENT_CLOSE.superseded, 'replaced by a newer connection of this agent');
      }
    } else {
      s = {
        agentId: hello.agentId,
        server: hello.server,
        epoch: reg.epoch,
        version: hello.version,
        capabilities: hello.capabilities,
        link: undefined,
        conn: undefined,
        draining: false,
        bye: false,
        lastSeen: now,
        touched: false,
        granting: 0,
        inflight: new Map(),
      };
      this.sessions.set(hello.server, s);
    }
    s.link = conn.link;
    s.conn = conn;
    s.epoch = reg.epoch;
    s.version = hello.version;
    s.capabilities = hello.capabilities;
    s.draining = hello.draining;
    s.lastSeen = performance.now();
    conn.session = s;

    // What the agent holds against what the hub has in flight for it.
    const held = new Set<string>();
    const revoked: LeaseRef[] = [];
    const done: LeaseRef[] = [];
    for (const l of hello.leases) {
      const lease = { runId: l.runId, taskId: l.taskId, token: l.token };
      const inflight = this.leases.get(leaseKey(lease));
      if (inflight?.session === s) {
        held.add(leaseKey(lease));
        continue;
      }
      const stored = await this.store.getLease(lease.runId, lease.taskId);
      if (stored?.token === lease.token && stored.state === 'reported') {
        done.push(lease);
        continue;
      }
      // Granted by another replica, which this agent left: relay it from here on.
      const adopted =
        stored?.token === lease.token && stored.state === 'granted'
          ? await this.options.source?.adopt(lease, s.server)
          : undefined;
      if (adopted) {
        this.adopt(s, lease, adopted.assignment, adopted.relay);
        held.add(leaseKey(lease));
      } else revoked.push(lease);
    }
    for (const lease of revoked) await this.revoke(lease);
    conn.link.send({
      type: 'hub:welcome',
      agentId: s.agentId,
      server: s.server,
      epoch: s.epoch,
      heartbeatMs: this.heartbeatMs,
      leaseMs: this.staleAfterMs,
      revoked,
      done,
    });
    for (const [key, inflight] of s.inflight) {
      if (!held.has(key)) {
        // The assignment never arrived: send it again under the same lease.
        conn.link.send({
          type: 'task:assign',
          lease: inflight.lease,
          assignment: inflight.entry.assignment as never,
        });
      }
      if (inflight.cancelReason !== undefined) {
        conn.link.send({
          type: 'task:cancel',
          lease: inflight.lease,
          reason: inflight.cancelReason,
        });
      }
    }
    if (s.draining) await this.store.setAgentStatus(s.agentId, 'draining').catch(() => {});
    this.options.source?.welcomed(s.agentId);
    this.log(
      `agent ${s.agentId} of server ${s.server} ${resumed ? 'reconnected' : 'connected'} (epoch ${s.epoch})`,
    );
    this.emit({
      type: 'agent:connected',
      agentId: s.agentId,
      server: s.server,
      epoch: s.epoch,
      resumed,
    });
    if (!s.draining) for (const ready of [...(this.waiters.get(s.server) ?? [])]) ready();
    this.pump(s.server);
  }

  /** Takes over a task an agent runs under a lease another replica granted. */
  private adopt(
    s: Session,
    lease: LeaseRef,
    assignment: TaskAssignment,
    relay: DispatchRelay,
  ): void {
    const { entry, onAbort } = this.relayedEntry(assignment, s.server, relay, 'sent');
    this.track(s, lease, entry);
    relay.signal.addEventListener('abort', onAbort, { once: true });
    if (relay.signal.aborted) onAbort();
  }

  /**
   * An agent disconnected from here reconnected to another replica, which took its tasks over:
   * let go of it without failing them. What it did not hold goes back to the shared queue.
   */
  agentMoved(agentId: string): void {
    for (const s of this.sessions.values()) {
      if (s.agentId !== agentId || s.link) continue;
      this.sessions.delete(s.server);
      for (const i of [...s.inflight.values()]) {
        this.forget(i);
        if (i.entry.state !== 'settled') {
          i.entry.state = 'settled';
          i.entry.relay?.abandon();
        }
      }
      this.log(`agent ${agentId} of server ${s.server} moved to another replica`);
      this.requeueWaiting(s.server);
      return;
    }
  }

  private async disconnected(conn: Conn): Promise<void> {
    const s = conn.session;
    if (!s || s.conn !== conn) return;
    s.link = undefined;
    s.conn = undefined;
    if (s.bye || this.closed) {
      if (this.sessions.get(s.server) === s) this.sessions.delete(s.server);
      if (s.inflight.size > 0) await this.failOver(s, 'it left with tasks unfinished');
      await this.store.setAgentStatus(s.agentId, 'stopped').catch(() => {});
      this.log(`agent ${s.agentId} of server ${s.server} stopped`);
      this.emit({ type: 'agent:stopped', agentId: s.agentId, server: s.server });
      this.requeueWaiting(s.server);
      return;
    }
    // Its tasks stay in flight: the agent may come back within its lease.
    await this.store.setAgentStatus(s.agentId, 'disconnected').catch(() => {});
    this.log(`agent ${s.agentId} of server ${s.server} disconnected`);
    this.emit({ type: 'agent:disconnected', agentId: s.agentId, server: s.server });
  }

  /** Declares an agent lost: its leases are revoked and its tasks fail over. */
  private async lose(s: Session, reason: string, o: { replaced?: boolean } = {}): Promise<void> {
    if (this.sessions.get(s.server) === s) this.sessions.delete(s.server);
    if (s.conn) {
      s.conn.closed = true;
      s.conn.link.close(AGENT_CLOSE.stale, truncate(`lost: ${reason}; its tasks failed over`));
    }
    s.link = undefined;
    s.conn = undefined;
    const tasks = s.inflight.size;
    this.log(
      `agent ${s.agentId} of server ${s.server} lost (${reason}); ${tasks} task(s) fail over`,
    );
    await this.failOver(s, reason);
    await this.store.setAgentStatus(s.agentId, 'lost').catch(() => {});
    this.emit({ type: 'agent:lost', agentId: s.agentId, server: s.server, reason, tasks });
    if (!o.replaced) this.requeueWaiting(s.server);
  }

  private async failOver(s: Session, reason: string): Promise<void> {
    const inflight = [...s.inflight.values()];
    for (const i of inflight) this.forget(i);
    // Revoked before the tasks are released, so the retry's grant comes after. With a shared
    // queue, each relay revokes its own lease: the agent may hold others granted elsewhere.
    if (!this.options.source) {
      await this.store.revokeAgentLeases(s.agentId).catch((e: unknown) => {
        this.log(`could not revoke the leases of agent ${s.agentId}: ${coerceError(e).message}`);
      });
    }
    for (const i of inflight) i.entry.settle(this.lostReport(i, reason));
  }

  private lostReport(i: Inflight, reason: string): TaskReport {
    const s = i.session;
    return failed(
      {
        type: AGENT_FAILURE.lost,
        message: `the agent of server ${s.server} (${s.agentId}) was lost while it ran the task: ${reason}`,
      },
      i.steps,
    );
  }

  /** Tasks still queued for a server that lost its agent wait for, or start, another. */
  private requeueWaiting(server: string): void {
    const q = this.queues.get(server);
    if (!q?.length || this.closed) return;
    // Tasks of the shared queue go back to it: the agent may come back on another replica.
    for (const entry of q.filter((e) => e.relay)) {
      this.unqueue(entry);
      this.unserve(entry);
    }
    if (!q.length) return;
    for (const entry of q) this.armWait(entry);
    this.needAgent(server, q[0]!.assignment);
  }

  private sweep(): void {
    const now = performance.now();
    for (const s of [...this.sessions.values()]) {
      const silent = now - s.lastSeen;
      if (silent > this.staleAfterMs) {
        void this.lose(s, `no word from it for ${Math.round(silent)}ms`);
      }
    }
    // Heartbeats reach the store in one statement every few seconds, not one per beat.
    if (now - this.lastTouchFlush >= Math.max(this.heartbeatMs, 2000)) {
      this.lastTouchFlush = now;
      const ids = [...this.sessions.values()].filter((s) => s.touched).map((s) => s.agentId);
      for (const s of this.sessions.values()) s.touched = false;
      if (ids.length) void this.store.touchAgents(ids, new Date()).catch(() => {});
    }
  }

  private emit(event: AgentHubEvent): void {
    for (const listener of this.listeners) {
      try {
        listener(event);
      } catch {
        // A listener's failure is its own.
      }
    }
  }

  /**
   * Closes every agent connection (1001: they reconnect to the next orchestrator) and ends every
   * dispatch still waiting with an `interrupted` failure.
   */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.sweeper);
    for (const s of this.sessions.values()) {
      if (s.conn) s.conn.closed = true;
      s.link?.close(AGENT_CLOSE.goingAway, 'the orchestrator is shutting down');
      for (const i of s.inflight.values()) {
        // A relayed task goes on: its agent reconnects to another replica, which takes it over.
        if (!i.entry.relay) i.entry.settle(shutdownReport());
      }
    }
    for (const q of this.queues.values()) {
      for (const e of q.splice(0)) {
        if (e.relay) this.unserve(e);
        else e.settle(shutdownReport());
      }
    }
    await Promise.allSettled([...this.starting.values()]);
  }
}

function failed(failure: TaskFailure, steps: readonly StepRecord[]): TaskReport {
  return { status: 'failed', result: { steps: [...steps] }, failure };
}

function shutdownReport(): TaskReport {
  return failed(
    {
      type: AGENT_FAILURE.shutdown,
      message: 'the orchestrator shut down before the task was done',
    },
    [],
  );
}

function abortReason(signal: AbortSignal): string {
  const reason: unknown = signal.reason;
  return reason instanceof Error ? reason.message : typeof reason === 'string' ? reason : 'aborted';
}

function digest(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** WebSocket close reasons are limited to 123 bytes (RFC 6455 §5.5). */
export function truncate(reason: string): string {
  const bytes = Buffer.from(reason, 'utf8');
  if (bytes.length <= 123) return reason;
  return `${bytes
    .subarray(0, 120)
    .toString('utf8')
    .replace(/\uFFFD$/, '')}...`;
}
