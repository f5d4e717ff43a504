/**
 * The agent runtime: what runs on a server. It connects to the orchestrator's `/agents`, says
 * hello, heartbeats, runs the assignments of its own server's queue with the same task runner
 * the in-process executor uses, and streams their output, step records and report back.
 *
 * Nothing is lost on a network cut: every message of a lease is numbered and kept until the hub
 * acknowledges it, and sent again after the agent reconnects (with backoff); the hub drops what it
 * has already seen. An assignment is run at most once per lease token. When the agent has heard
 * nothing from the hub for almost its lease (`leaseMs` minus a heartbeat), it aborts its running
 * tasks itself: the hub is about to fail them over, and a task must not run in two places.
 *
 * Draining (SIGTERM, or the hub's `agent:drain`): the agent takes no new task, finishes the ones
 * it runs, delivers their reports, says `agent:bye` and stops.
 *
 * @module
 */
import { mkdir } from 'node:fs/promises';
import { hostname } from 'node:os';
import { performance } from 'node:perf_hooks';
import { randomBytes } from 'node:crypto';
import * as v from 'valibot';
import { WebSocket } from 'ws';
import type { TaskAssignment, TaskReport } from '../engine/dispatch.ts';
import type { StepRecord } from '../engine/types.ts';
import { runAssignment, type TaskRunnerEnv } from '../executor/task-runner.ts';
import type { StepRegistry } from '../steps/types.ts';
import type { SecretsLoader } from '../secrets/index.ts';
import { coerceError } from '../errors.ts';
import { AgentConfigError } from './errors.ts';
import {
  AGENT_CLOSE,
  AGENT_PROTOCOL_VERSION,
  AGENTS_PATH,
  FATAL_CLOSE_CODES,
  HubMessageSchema,
  LeaseRefSchema,
  leaseKey,
  parseMessage,
  toTaskAssignment,
  type AgentMessage,
  type HubMessage,
  type LeaseRef,
} from './protocol.ts';

/** Options of {@link startAgent}. */
export interface AgentOptions {
  /** The server whose queue this agent serves. */
  readonly server: string;
  /**
   * The orchestrator: `http(s)://HOST:PORT` or `ws(s)://HOST:PORT/agents`; several replicas as a
   * comma-separated list, tried in turn whenever a connection drops.
   */
  readonly orchestrator: string;
  /** An agent token for this server. */
  readonly token: string;
  /** Where the server's steps run; created if missing. */
  readonly workdir: string;
  /** The step handlers: built-ins plus any custom ones. */
  readonly registry: StepRegistry;
  /**
   * Reads a workflow's secrets here, on the server, so their values never cross the wire.
   * Without it, tasks of workflows with secrets fail.
   */
  readonly secrets?: SecretsLoader;
  /** Names this agent process. @default `SERVER-` and random hex */
  readonly agentId?: string;
  /** @default '0.1.0' */
  readonly version?: string;
  /** Tasks run at once. @default 1 */
  readonly slots?: number;
  /** The first reconnect delay; it doubles up to `reconnectMaxMs`, with ±20% jitter. @default 100 */
  readonly reconnectMinMs?: number;
  /** @default 5000 */
  readonly reconnectMaxMs?: number;
  /** Messages kept per task until acknowledged; beyond it, the oldest output lines go. @default 10_000 */
  readonly maxUnacknowledged?: number;
  /** Where the agent says what it does. @default nothing */
  readonly log?: (line: string) => void;
}

/** Why an agent stopped. */
export type AgentStop =
  | { readonly reason: 'drained' }
  | { readonly reason: 'stopped'; readonly message: string }
  | { readonly reason: 'rejected'; readonly code: number; readonly message: string };

/** A running agent. */
export interface Agent {
  readonly id: string;
  readonly server: string;
  /** Whether the hub has welcomed the current connection. */
  readonly connected: boolean;
  /** Tasks it holds leases for (running, or done with the report unacknowledged). */
  readonly leases: number;
  /** Resolves once the agent has stopped. */
  readonly done: Promise<AgentStop>;
  /** Finishes what runs, takes nothing new, delivers the reports, then stops. */
  drain(): void;
  /** Aborts what runs and stops now. */
  stop(message?: string): void;
}

type Outgoing = Extract<AgentMessage, { seq: number }>;
type Unnumbered<T> = T extends unknown ? Omit<T, 'seq'> : never;

interface Lease {
  readonly ref: LeaseRef;
  readonly attempt: number;
  readonly controller: AbortController;
  state: 'running' | 'done';
  seq: number;
  outbox: Outgoing[];
  fenced: boolean;
  trimmed: boolean;
}

/** Lease keys remembered after they end, so an assignment sent twice is not run twice. */
const REMEMBERED_LEASES = 4096;

/**
 * Starts an agent; it connects at once and keeps reconnecting until it stops.
 *
 * @throws {AgentConfigError} `ORC1507` for an orchestrator URL that is not http(s) or ws(s)
 *
 * @example
 * ```ts
 * const agent = startAgent({ server: 'web-1', orchestrator: 'http://10.0.0.1:7070', token, workdir, registry });
 * process.once('SIGTERM', () => agent.drain());
 * await agent.done;
 * ```
 */
export function startAgent(options: AgentOptions): Agent {
  return new AgentRuntime(options);
}

/**
 * The WebSocket URL of an orchestrator's agent endpoint: `http` becomes `ws`, and a URL with no
 * path gets `/agents`.
 *
 * @throws {AgentConfigError} `ORC1507` for anything but an http(s) or ws(s) URL
 */
export function agentSocketUrl(orchestrator: string): string {
  let url: URL;
  try {
    url = new URL(orchestrator);
  } catch {
    throw new AgentConfigError(
      `the orchestrator must be a URL such as http://orchestrator:7070, not "${orchestrator}"`,
    );
  }
  const schemes: Record<string, string> = {
    'http:': 'ws:',
    'https:': 'wss:',
    'ws:': 'ws:',
    'wss:': 'wss:',
  };
  const scheme = schemes[url.protocol];
  if (!scheme) {
    throw new AgentConfigError(
      `the orchestrator URL must start with http://, https://, ws:// or wss://, not ${url.protocol}//`,
    );
  }
  url.protocol = scheme;
  if (url.pathname === '/' || url.pathname === '') url.pathname = AGENTS_PATH;
  return url.toString();
}

class AgentRuntime implements Agent {
  readonly id: string;
  readonly server: string;
  readonly done: Promise<AgentStop>;
  private readonly urls: readonly string[];
  private urlIndex = 0;
  private readonly env: TaskRunnerEnv;
  private readonly log: (line: string) => void;
  private ws: WebSocket | undefined;
  private welcomed = false;
  private heartbeatMs = 5000;
  private leaseMs = 15_000;
  private lastHeard = performance.now();
  private lastBeat = 0;
  private readonly leaseMap = new Map<string, Lease>();
  private readonly remembered = new Set<string>();
  private draining = false;
  private stopped = false;
  private attempt = 0;
  private rejection: { code: number; message: string } | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private readonly ticker: NodeJS.Timeout;
  private resolveDone!: (stop: AgentStop) => void;

  constructor(private readonly options: AgentOptions) {
    this.urls = options.orchestrator
      .split(',')
      .map((u) => u.trim())
      .filter(Boolean)
      .map(agentSocketUrl);
    if (this.urls.length === 0) this.urls = [agentSocketUrl(options.orchestrator)];
    this.server = options.server;
    this.id = options.agentId ?? `${options.server}-${randomBytes(6).toString('hex')}`;
    this.log = options.log ?? (() => {});
    const workdir = options.workdir;
    this.env = {
      registry: options.registry,
      providers: new Map(),
      ...(options.secrets ? { secrets: options.secrets } : {}),
      async workdir() {
        await mkdir(workdir, { recursive: true });
        return workdir;
      },
    };
    this.done = new Promise((resolve) => (this.resolveDone = resolve));
    this.ticker = setInterval(() => this.tick(), 50);
    this.connect();
  }

  /** The orchestrator tried now. */
  private get url(): string {
    return this.urls[this.urlIndex % this.urls.length]!;
  }

  get connected(): boolean {
    return this.welcomed;
  }

  get leases(): number {
    return this.leaseMap.size;
  }

  drain(): void {
    if (this.draining || this.stopped) return;
    this.draining = true;
    this.log(
      this.leaseMap.size > 0
        ? `draining: finishing ${this.leaseMap.size} task(s), taking no new one`
        : 'draining: nothing runs, stopping',
    );
    this.send({ type: 'agent:draining' });
    this.checkDrained();
  }

  stop(message = 'stopped'): void {
    if (this.stopped) return;
    for (const lease of this.leaseMap.values()) lease.controller.abort(new Error(message));
    this.finish({ reason: 'stopped', message }, AGENT_CLOSE.goingAway);
  }

  // ── connection ───────────────────────────────────────────────────────────

  private connect(): void {
    if (this.stopped) return;
    const url = this.url;
    const ws = new WebSocket(url, {
      headers: { authorization: `Bearer ${this.options.token}` },
      perMessageDeflate: false,
      handshakeTimeout: 5000,
      maxPayload: 32 * 1024 * 1024,
    });
    this.ws = ws;
    let lastError: string | undefined;
    ws.on('open', () => this.hello());
    ws.on('message', (data, isBinary) => {
      if (ws !== this.ws || isBinary) return;
      this.receive(data.toString());
    });
    ws.on('error', (e) => (lastError = e.message));
    ws.on('close', (code, reason) => {
      if (ws !== this.ws) return;
      this.ws = undefined;
      this.welcomed = false;
      this.closed(code, reason.toString() || lastError || '');
    });
  }

  private hello(): void {
    this.send({
      type: 'agent:hello',
      protocol: AGENT_PROTOCOL_VERSION,
      agentId: this.id,
      server: this.server,
      version: this.options.version ?? '0.1.0',
      capabilities: {
        steps: this.options.registry.types(),
        slots: this.options.slots ?? 1,
        platform: process.platform,
        arch: process.arch,
        hostname: hostname(),
      },
      leases: [...this.leaseMap.values()].map((l) => ({
        ...l.ref,
        attempt: l.attempt,
        state: l.state,
      })),
      draining: this.draining,
    });
  }

  private closed(code: number, reason: string): void {
    if (this.stopped) return;
    const rejection = this.rejection;
    if (rejection || FATAL_CLOSE_CODES.has(code)) {
      const message = rejection?.message ?? (reason || `closed with code ${code}`);
      for (const lease of this.leaseMap.values()) lease.controller.abort(new Error(message));
      this.finish({ reason: 'rejected', code: rejection?.code ?? code, message });
      return;
    }
    if (this.draining && this.leaseMap.size === 0) {
      this.finish({ reason: 'drained' });
      return;
    }
    const base = this.options.reconnectMinMs ?? 100;
    const max = this.options.reconnectMaxMs ?? 5000;
    const delay = Math.round(Math.min(max, base * 2 ** this.attempt) * (0.8 + Math.random() * 0.4));
    if (this.attempt === 0 || this.attempt % 10 === 0) {
      this.log(`disconnected (${code}${reason ? `: ${reason}` : ''}); reconnecting in ${delay}ms`);
    }
    this.attempt++;
    // Another replica may answer where this one no longer does.
    this.urlIndex++;
    this.reconnectTimer = setTimeout(() => this.connect(), delay);
  }

  private send(message: AgentMessage): void {
    const ws = this.ws;
    // Only hello may go before the welcome: the rest waits in the outbox and is sent after it.
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    if (!this.welcomed && message.type !== 'agent:hello') return;
    ws.send(JSON.stringify(message));
  }

  private receive(data: string): void {
    this.lastHeard = performance.now();
    const parsed = parseMessage(HubMessageSchema, data);
    if (!parsed.ok) {
      this.log(`ignored a message from the orchestrator: ${parsed.error}`);
      this.unreadable(data, parsed.error);
      return;
    }
    this.handle(parsed.message);
  }

  /**
   * An assignment this agent cannot read (a newer orchestrator's, say) is reported as failed,
   * not ignored: the task would otherwise wait for a report that never comes.
   */
  private unreadable(data: string, error: string): void {
    const lease = v.safeParse(
      v.object({ type: v.literal('task:assign'), lease: LeaseRefSchema }),
      safeJson(data),
    );
    if (!lease.success) return;
    const ref = lease.output.lease;
    const key = leaseKey(ref);
    if (this.leaseMap.has(key) || this.remembered.has(key)) return;
    const entry: Lease = {
      ref,
      attempt: 1,
      controller: new AbortController(),
      state: 'done',
      seq: 0,
      outbox: [],
      fenced: false,
      trimmed: false,
    };
    this.leaseMap.set(key, entry);
    this.enqueue(entry, {
      type: 'task:report',
      lease: ref,
      report: {
        status: 'failed',
        result: { steps: [] },
        failure: {
          type: 'agent-protocol',
          message: `the agent of ${this.server} cannot read this assignment (${error}); upgrade the agent`,
          nonRetryable: true,
        },
      },
    });
  }

  private handle(msg: HubMessage): void {
    switch (msg.type) {
      case 'hub:welcome': {
        this.welcomed = true;
        this.heartbeatMs = msg.heartbeatMs;
        this.leaseMs = msg.leaseMs;
        if (this.attempt > 0 || msg.revoked.length > 0) {
          this.log(`connected again (epoch ${msg.epoch}); ${msg.revoked.length} lease(s) revoked`);
        } else {
          this.log(`connected to ${this.url} as ${this.id} (epoch ${msg.epoch})`);
        }
        this.attempt = 0;
        for (const ref of msg.revoked) this.drop(ref, 'revoked while disconnected');
        for (const ref of msg.done) this.forget(ref);
        // Everything not acknowledged goes again, in order; the hub drops what it has seen.
        for (const lease of this.leaseMap.values()) {
          for (const out of lease.outbox) this.send(out);
        }
        if (this.draining) this.send({ type: 'agent:draining' });
        this.checkDrained();
        return;
      }
      case 'hub:heartbeat':
        return;
      case 'task:assign': {
        const key = leaseKey(msg.lease);
        if (this.leaseMap.has(key) || this.remembered.has(key)) return;
        if (this.draining || this.stopped) {
          this.send({ type: 'task:refused', lease: msg.lease, reason: 'the agent is draining' });
          return;
        }
        void this.run(msg.lease, toTaskAssignment(msg.assignment));
        return;
      }
      case 'task:cancel':
        this.leaseMap.get(leaseKey(msg.lease))?.controller.abort(new Error(msg.reason));
        return;
      case 'task:revoke':
        this.drop(msg.lease, msg.reason);
        return;
      case 'task:ack': {
        const key = leaseKey(msg.lease);
        const lease = this.leaseMap.get(key);
        if (!lease) return;
        lease.outbox = lease.outbox.filter((m) => m.seq > msg.seq);
        if (lease.state === 'done' && lease.outbox.length === 0) {
          this.leaseMap.delete(key);
          this.remember(key);
          this.checkDrained();
        }
        return;
      }
      case 'agent:drain':
        this.drain();
        return;
      case 'hub:reject':
        this.rejection = { code: msg.code, message: msg.message };
        this.log(`refused by the orchestrator: ${msg.message}`);
        return;
    }
  }

  // ── tasks ────────────────────────────────────────────────────────────────

  private async run(ref: LeaseRef, assignment: TaskAssignment): Promise<void> {
    const key = leaseKey(ref);
    const lease: Lease = {
      ref,
      attempt: assignment.attempt,
      controller: new AbortController(),
      state: 'running',
      seq: 0,
      outbox: [],
      fenced: false,
      trimmed: false,
    };
    this.leaseMap.set(key, lease);
    // One token, one execution: an assignment sent again under it (after a reconnection, or by
    // another replica) is never run a second time, whatever became of the first.
    this.remember(key);
    const what = `${assignment.mode === 'compensate' ? 'undo ' : ''}${ref.taskId} attempt ${assignment.attempt} (token ${ref.token})`;
    this.log(`running ${what}`);
    // A backstop for the operation's timeout, should the hub's cancel not reach us.
    const timer = setTimeout(
      () => lease.controller.abort(new Error('timeout')),
      assignment.timeoutMs,
    );
    let report: TaskReport;
    try {
      report = await runAssignment(
        assignment,
        {
          signal: lease.controller.signal,
          output: (stream, line, step) =>
            this.enqueue(lease, {
              type: 'task:output',
              lease: ref,
              stream,
              line,
              ...(step !== undefined ? { step } : {}),
            }),
          step: (record: StepRecord) =>
            this.enqueue(lease, { type: 'task:step', lease: ref, record: { ...record } }),
        },
        this.env,
      );
    } catch (e: unknown) {
      report = {
        status: 'failed',
        result: { steps: [] },
        failure: { type: 'error', message: coerceError(e).message },
      };
    } finally {
      clearTimeout(timer);
    }
    if (this.leaseMap.get(key) !== lease) return; // revoked while it ran: report nothing
    lease.state = 'done';
    this.log(`${what} ${report.status}${report.failure ? `: ${report.failure.message}` : ''}`);
    this.enqueue(lease, { type: 'task:report', lease: ref, report: report as never });
  }

  private enqueue(lease: Lease, message: Unnumbered<Outgoing>): void {
    if (this.leaseMap.get(leaseKey(lease.ref)) !== lease) return;
    const numbered = { ...message, seq: ++lease.seq } as Outgoing;
    lease.outbox.push(numbered);
    const max = this.options.maxUnacknowledged ?? 10_000;
    if (lease.outbox.length > max) {
      // Output lines may go; step records and the report never do.
      const i = lease.outbox.findIndex((m) => m.type === 'task:output');
      if (i >= 0) lease.outbox.splice(i, 1);
      if (!lease.trimmed) {
        lease.trimmed = true;
        this.log(`${lease.ref.taskId}: over ${max} messages unacknowledged; dropping old output`);
      }
    }
    this.send(numbered);
  }

  private drop(ref: LeaseRef, reason: string): void {
    const key = leaseKey(ref);
    const lease = this.leaseMap.get(key);
    this.remember(key);
    if (!lease) return;
    this.leaseMap.delete(key);
    lease.controller.abort(new Error(`lease revoked: ${reason}`));
    this.log(`${ref.taskId} (token ${ref.token}) revoked: ${reason}`);
    this.checkDrained();
  }

  /** The hub has the lease's report already: nothing of it is sent again. */
  private forget(ref: LeaseRef): void {
    const key = leaseKey(ref);
    if (!this.leaseMap.delete(key)) return;
    this.remember(key);
    this.log(`${ref.taskId} (token ${ref.token}): report already accepted`);
    this.checkDrained();
  }

  private remember(key: string): void {
    this.remembered.add(key);
    if (this.remembered.size > REMEMBERED_LEASES) {
      this.remembered.delete(this.remembered.values().next().value!);
    }
  }

  private checkDrained(): void {
    if (!this.draining || this.stopped || this.leaseMap.size > 0) return;
    this.send({ type: 'agent:bye' });
    this.finish({ reason: 'drained' }, AGENT_CLOSE.normal);
  }

  /** Heartbeats, and self-fencing when the hub has been silent for almost the lease. */
  private tick(): void {
    const now = performance.now();
    if (this.welcomed && now - this.lastBeat >= this.heartbeatMs) {
      this.lastBeat = now;
      let running = 0;
      for (const l of this.leaseMap.values()) if (l.state === 'running') running++;
      this.send({ type: 'agent:heartbeat', running });
    }
    const silent = now - this.lastHeard;
    if (this.welcomed && silent > this.leaseMs) {
      // A half-open connection (a middlebox dropped it without a reset): start a new one.
      this.log(`no word from the orchestrator for ${Math.round(silent)}ms; reconnecting`);
      this.ws?.terminate();
    }
    if (silent <= this.leaseMs - this.heartbeatMs) return;
    for (const lease of this.leaseMap.values()) {
      if (lease.state !== 'running' || lease.fenced) continue;
      lease.fenced = true;
      this.log(
        `${lease.ref.taskId}: no word from the orchestrator for ${Math.round(silent)}ms; ` +
          'stopping it, as it is about to run elsewhere',
      );
      lease.controller.abort(new Error('lease expired: the orchestrator is unreachable'));
    }
  }

  private finish(stop: AgentStop, closeCode?: number): void {
    if (this.stopped) return;
    this.stopped = true;
    clearInterval(this.ticker);
    clearTimeout(this.reconnectTimer);
    const ws = this.ws;
    this.ws = undefined;
    this.welcomed = false;
    if (!ws || ws.readyState === WebSocket.CLOSED) {
      this.resolveDone(stop);
      return;
    }
    // Resolve once the close handshake is through, so a bye is not cut off by the process exit.
    const cut = setTimeout(() => ws.terminate(), 1000);
    ws.once('close', () => {
      clearTimeout(cut);
      this.resolveDone(stop);
    });
    if (ws.readyState === WebSocket.CONNECTING) ws.terminate();
    else ws.close(closeCode ?? AGENT_CLOSE.goingAway, stop.reason);
  }
}

function safeJson(data: string): unknown {
  try {
    return JSON.parse(data);
  } catch {
    return undefined;
  }
}
