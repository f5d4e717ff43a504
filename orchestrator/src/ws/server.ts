/**
 * The WebSocket endpoint `/ws`: live run events for the CLI's `--watch`, dashboards and scripts.
 * The protocol (messages, close codes, guarantees) is in `protocol.ts`; replay and the seam to
 * live events are the {@link EventHub}'s.
 *
 * Limits, so no client can make the server's memory grow: a client message is at most 64 KiB and
 * a connection holds at most 1,000 subscriptions; replay goes at the client's pace (it waits
 * while more than 256 KiB waits to be sent); a client more than 1 MiB behind on live events that
 * takes nothing for a second, or more than 16 MiB behind at all, is closed with 1013 (and cut off
 * if it does not read the close frame either); a client that misses two pings in a row is dropped.
 *
 * "Takes nothing for a second" is counted in the server's own turns: a watchdog ticks a few times
 * per grace period and a client stalls for a tick only when it took no bytes since the last one.
 * A server whose event loop was busy (a long query, a loaded machine) gave its clients no chance to
 * read, so that time does not count against them.
 *
 * Fan-out: each event's frame is built once and shared by every client, and a commit's events
 * leave in one socket write per client (one buffer, also shared). These event frames are written
 * beneath `ws` (plain RFC 6455 text frames; compression is off, so `ws` queues nothing of its
 * own); `ws` keeps the handshake, control frames, client messages and the other replies.
 *
 * @module
 */
import type { IncomingMessage, Server } from 'node:http';
import type { Socket } from 'node:net';
import type { Duplex } from 'node:stream';
import * as v from 'valibot';
import { WebSocketServer, type RawData, type WebSocket } from 'ws';
import type { Orchestrator } from '../orchestrator.ts';
import type { RunEvent } from '../engine/types.ts';
import type { Auth } from '../api/auth.ts';
import { bearerToken } from '../api/middleware/auth/index.ts';
import { routeUpgrade } from '../api/upgrade-routes.ts';
import { coerceError } from '../errors.ts';
import { eventHubFor, type EventHub, type HubSubscription } from './events.ts';
import {
  CLOSE_FORBIDDEN,
  CLOSE_GOING_AWAY,
  CLOSE_TOO_SLOW,
  CLOSE_UNAUTHENTICATED,
  ClientMessageSchema,
  WS_ERROR_CODES,
  WS_PATH,
  toWireEvent,
  type ClientMessage,
  type ErrorMessage,
  type ServerMessage,
} from './protocol.ts';

/** The metric the endpoint keeps up to date: connected clients (a prom-client `Gauge` fits). */
export interface WebSocketMetrics {
  readonly wsClients?: { inc(): void; dec(): void };
}

/** Options of {@link attachWebSocket}. */
export interface AttachWebSocketOptions {
  readonly orchestrator: Pick<Orchestrator, 'subscribe' | 'store'>;
  readonly auth: Auth;
  readonly metrics?: WebSocketMetrics;
  /** @default the orchestrator's shared hub ({@link eventHubFor}) */
  readonly hub?: EventHub;
  /** @default `/ws` */
  readonly path?: string;
  /** Milliseconds between pings; a client that misses two is dropped. @default 15000 */
  readonly pingIntervalMs?: number;
  /**
   * Bytes waiting to be sent past which a client that takes nothing for `slowGraceMs` is closed
   * with 1013.
   *
   * @default 1 MiB
   */
  readonly maxBufferedBytes?: number;
  /** How long a client past `maxBufferedBytes` may take nothing before it is closed. @default 1000 */
  readonly slowGraceMs?: number;
  /**
   * Bytes waiting to be sent past which a client is closed with 1013 at once, however fast it
   * reads: what one client may cost in memory.
   *
   * @default 16 MiB
   */
  readonly maxBacklogBytes?: number;
  /** The largest message a client may send, in bytes. @default 64 KiB */
  readonly maxPayload?: number;
  /** Subscriptions one connection may hold. @default 1000 */
  readonly maxSubscriptions?: number;
  /** How long a closed slow client gets to read its close frame before it is cut off. @default 5000 */
  readonly closeGraceMs?: number;
}

/** The attached endpoint. */
export interface WebSocketEndpoint {
  /** Connected clients. */
  readonly clients: number;
  /** Bytes waiting to be sent, over all clients: what slow clients cost in memory now. */
  readonly bufferedBytes: number;
  /** Closes every client (1001) and stops accepting upgrades on the path. */
  close(): Promise<void>;
}

/**
 * Serves `/ws` on an HTTP server: upgrades on the path, answers others with 404 unless another
 * upgrade listener is attached.
 *
 * @example
 * ```ts
 * const server = serve({ fetch: app.fetch, port: 7070 });
 * const ws = attachWebSocket(server, { orchestrator, auth, metrics });
 * // on shutdown
 * await ws.close();
 * ```
 */
export function attachWebSocket(
  httpServer: Server,
  options: AttachWebSocketOptions,
): WebSocketEndpoint {
  const config: ConnectionConfig = {
    hub: options.hub ?? eventHubFor(options.orchestrator),
    maxBufferedBytes: options.maxBufferedBytes ?? 1024 * 1024,
    slowGraceMs: options.slowGraceMs ?? 1000,
    maxBacklogBytes: options.maxBacklogBytes ?? 16 * 1024 * 1024,
    maxSubscriptions: options.maxSubscriptions ?? 1000,
    closeGraceMs: options.closeGraceMs ?? 5000,
    frames: new FrameCache(),
  };
  const path = options.path ?? WS_PATH;
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: options.maxPayload ?? 64 * 1024,
    // Events are small and many: compressing each costs more CPU than the bytes it saves.
    perMessageDeflate: false,
  });
  const connections = new Set<Connection>();

  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on('error', () => {});
      // RFC 6455 close codes reach every client, browsers included, unlike an HTTP status.
      const principal = options.auth.verify(
        bearerToken(req.headers.authorization) ?? (url.searchParams.get('token') || undefined),
      );
      if (!principal) {
        ws.close(
          CLOSE_UNAUTHENTICATED,
          'unauthenticated: send a token as "Authorization: Bearer TOKEN" or ?token=',
        );
        return;
      }
      if (!options.auth.allows(principal, 'viewer')) {
        ws.close(
          CLOSE_FORBIDDEN,
          `forbidden: subscribing needs the viewer role, not ${principal.role}`,
        );
        return;
      }
      const connection = new Connection(ws, socket, config);
      connections.add(connection);
      options.metrics?.wsClients?.inc();
      ws.once('close', () => {
        connection.dispose();
        connections.delete(connection);
        options.metrics?.wsClients?.dec();
      });
    });
  };
  const stopRouting = routeUpgrade(httpServer, path, onUpgrade);

  const pinger = setInterval(() => {
    for (const connection of connections) connection.heartbeat();
  }, options.pingIntervalMs ?? 15_000);
  pinger.unref();
  // A few ticks per grace period: a stalled client is found within a quarter grace of its limit.
  const watchEvery = Math.max(10, Math.min(config.slowGraceMs / 4, 250));
  const watchdog = setInterval(() => {
    for (const connection of connections) connection.watch(watchEvery);
  }, watchEvery);
  watchdog.unref();

  return {
    get clients() {
      return connections.size;
    },
    get bufferedBytes() {
      let total = 0;
      for (const connection of connections) total += connection.bufferedBytes;
      return total;
    },
    async close() {
      clearInterval(pinger);
      clearInterval(watchdog);
      stopRouting();
      const closed = [...connections].map(
        (c) => new Promise<void>((resolve) => c.shutdown(resolve)),
      );
      await Promise.all(closed);
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}

/** Queued event bytes past which a connection writes without waiting for the hub's flush. */
const FLUSH_BYTES = 64 * 1024;

/**
 * WebSocket frames of events, built once: each event's text frame (RFC 6455 §5.2: FIN, opcode
 * 1, unmasked as server frames are), and the concatenation of a batch, shared by every client
 * that gets the same batch (most of them, for a busy run with many watchers).
 */
class FrameCache {
  private readonly frames = new WeakMap<RunEvent, Buffer>();
  private readonly batches = new WeakMap<RunEvent, { events: RunEvent[]; frame: Buffer }>();
  private readonly runs = new WeakMap<readonly RunEvent[], Buffer>();

  of(event: RunEvent): Buffer {
    let frame = this.frames.get(event);
    if (frame === undefined) {
      frame = textFrame(Buffer.from(JSON.stringify({ type: 'event', event: toWireEvent(event) })));
      this.frames.set(event, frame);
    }
    return frame;
  }

  /** The frames of a run of events the hub hands to every subscriber as the same array. */
  run(events: readonly RunEvent[]): Buffer {
    let frame = this.runs.get(events);
    if (frame === undefined) {
      frame =
        events.length === 1 ? this.of(events[0]!) : Buffer.concat(events.map((e) => this.of(e)));
      this.runs.set(events, frame);
    }
    return frame;
  }

  batch(events: RunEvent[]): Buffer {
    const first = events[0]!;
    if (events.length === 1) return this.of(first);
    const hit = this.batches.get(first);
    if (hit && hit.events.length === events.length && hit.events.every((e, i) => e === events[i])) {
      return hit.frame;
    }
    const frame = Buffer.concat(events.map((e) => this.of(e)));
    this.batches.set(first, { events, frame });
    return frame;
  }
}

/** An unfragmented, unmasked text frame (RFC 6455 §5.2) around a UTF-8 payload. */
function textFrame(payload: Buffer): Buffer {
  const n = payload.length;
  const head = n < 126 ? 2 : n < 65_536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(head + n);
  frame[0] = 0x81;
  if (n < 126) frame[1] = n;
  else if (n < 65_536) {
    frame[1] = 126;
    frame.writeUInt16BE(n, 2);
  } else {
    frame[1] = 127;
    frame.writeBigUInt64BE(BigInt(n), 2);
  }
  payload.copy(frame, head);
  return frame;
}

interface ConnectionConfig {
  readonly hub: EventHub;
  readonly maxBufferedBytes: number;
  readonly slowGraceMs: number;
  readonly maxBacklogBytes: number;
  readonly maxSubscriptions: number;
  readonly closeGraceMs: number;
  readonly frames: FrameCache;
}

/** One client: its subscriptions (by run id, or `*`), liveness and back-pressure. */
class Connection {
  private readonly subs = new Map<string, HubSubscription>();
  private missedPings = 0;
  private closing = false;

  /** Events queued one by one (replay) for the next {@link flush}, to leave as one frame batch. */
  private batch: RunEvent[] = [];
  /** Frame batches queued before `batch`, in order. */
  private parts: Buffer[] = [];
  /** The bytes of `batch` and `parts`. */
  private batchBytes = 0;
  /** Past the bound: milliseconds of watchdog ticks in which the client took nothing. */
  private stalledMs = 0;
  /** Bytes the socket had sent at the last tick. */
  private sentAtLastTick = 0;
  /** Replays waiting for this client to read: it is being fed at its pace, not falling behind. */
  private pacedReplays = 0;

  constructor(
    private readonly ws: WebSocket,
    private readonly socket: Duplex,
    private readonly config: ConnectionConfig,
  ) {
    ws.on('pong', () => (this.missedPings = 0));
    ws.on('message', (data, isBinary) => this.onMessage(data, isBinary));
  }

  get bufferedBytes(): number {
    return this.ws.bufferedAmount;
  }

  /** Pings, or drops the client when it left two pings unanswered. */
  heartbeat(): void {
    if (this.closing) return;
    if (this.missedPings >= 2) {
      this.dispose();
      this.ws.terminate();
      return;
    }
    this.missedPings++;
    this.ws.ping();
  }

  /** Stops every subscription; nothing more is sent. */
  dispose(): void {
    this.closing = true;
    this.closeSubscriptions();
    this.batch = [];
    this.parts = [];
    this.batchBytes = 0;
  }

  private closeSubscriptions(): void {
    for (const sub of this.subs.values()) sub.close();
    this.subs.clear();
  }

  /** Closes with 1001 (server going away); calls `done` once the socket is closed. */
  shutdown(done: () => void): void {
    this.dispose();
    if (this.ws.readyState === this.ws.CLOSED) return done();
    this.ws.once('close', () => done());
    this.ws.close(CLOSE_GOING_AWAY, 'server shutting down; reconnect with your last seq');
    setTimeout(() => this.ws.terminate(), 1000).unref();
  }

  private onMessage(data: RawData, isBinary: boolean): void {
    if (this.closing) return;
    if (isBinary) return this.error(WS_ERROR_CODES.badMessage, 'send JSON in text frames');
    let json: unknown;
    try {
      json = JSON.parse(String(data));
    } catch {
      return this.error(
        WS_ERROR_CODES.badMessage,
        'the message is not JSON; send e.g. {"type":"subscribe","runs":["RUN_ID"],"after":0}',
      );
    }
    const parsed = v.safeParse(ClientMessageSchema, json);
    if (!parsed.success) {
      const problems = parsed.issues.map((issue) => ({
        path: v.getDotPath(issue) ?? '',
        message: issue.message,
        ...(issue.expected !== null ? { expected: issue.expected } : {}),
        received: issue.received,
      }));
      return this.send({
        type: 'error',
        code: WS_ERROR_CODES.badMessage,
        detail:
          'the message does not match the protocol: ' +
          problems.map((p) => (p.path ? `${p.path}: ${p.message}` : p.message)).join('; '),
        problems,
      });
    }
    const message = parsed.output;
    if (message.type === 'unsubscribe') return this.unsubscribe(message.runs);
    void this.subscribe(message).catch((e: unknown) =>
      this.error(WS_ERROR_CODES.replayFailed, coerceError(e).message),
    );
  }

  private async subscribe(message: Extract<ClientMessage, { type: 'subscribe' }>): Promise<void> {
    if (message.runs === '*') {
      this.closeSubscriptions();
      const after = typeof message.after === 'number' ? message.after : 0;
      this.send({ type: 'subscribed', runs: '*', after });
      this.open('*', { runs: '*', after });
      return;
    }
    if (this.subs.has('*')) {
      return this.error(
        WS_ERROR_CODES.badMessage,
        'already subscribed to every run ("*"); unsubscribe "*" first to follow single runs',
      );
    }
    const runs = [...new Set(message.runs)];
    const fresh = runs.filter((run) => !this.subs.has(run)).length;
    if (this.subs.size + fresh > this.config.maxSubscriptions) {
      return this.error(
        WS_ERROR_CODES.badMessage,
        `a connection follows at most ${this.config.maxSubscriptions} runs; unsubscribe some, or subscribe to "*"`,
      );
    }
    const found = await Promise.all(runs.map((run) => this.config.hub.runStatus(run)));
    if (this.closing) return;
    const missing = runs.filter((_, i) => !found[i]);
    if (missing.length > 0) {
      return this.error(
        WS_ERROR_CODES.runNotFound,
        `no run with id ${missing.map((r) => `"${r}"`).join(', ')}; nothing was subscribed`,
      );
    }
    const after: Record<string, number> = {};
    for (const run of runs) {
      after[run] = typeof message.after === 'number' ? message.after : (message.after?.[run] ?? 0);
    }
    this.send({ type: 'subscribed', runs, after });
    for (const run of runs) this.open(run, { runs: [run], after: after[run] ?? 0 });
  }

  private open(
    key: string,
    filter: { runs: readonly string[]; after: number } | { runs: '*'; after: number },
  ): void {
    this.subs.get(key)?.close();
    const sub = this.config.hub.subscribe(filter, {
      onEvent: (event) => this.sendEvent(event),
      onEvents: (events) => this.sendEvents(events),
      onEnd: (runId, status) => this.send({ type: 'end', run_id: runId, status }),
      wait: () => this.backlog(),
      flush: () => this.flush(),
      onError: (error) => {
        if (this.subs.get(key) === sub) this.subs.delete(key);
        this.error(
          WS_ERROR_CODES.replayFailed,
          `reading the log failed (${error.message}); subscribe again with your last seq`,
        );
      },
    });
    this.subs.set(key, sub);
  }

  private unsubscribe(runs: readonly string[] | '*'): void {
    const keys = runs === '*' ? [...this.subs.keys()] : runs;
    for (const key of keys) {
      this.subs.get(key)?.close();
      this.subs.delete(key);
    }
    this.send({ type: 'unsubscribed', runs: runs === '*' ? '*' : [...runs] });
  }

  /**
   * Queues an event for the hub's flush: a commit's events (or a replay page's) leave in one
   * write. Frames are built once per event and batches once per run of deliveries, however many
   * clients get them.
   */
  private sendEvent(event: RunEvent): void {
    if (!this.startQueue()) return;
    const frame = this.config.frames.of(event);
    this.batch.push(event);
    this.queued(frame.length);
  }

  /** Queues a live run of one run's events, as one frame batch shared by their subscribers. */
  private sendEvents(events: readonly RunEvent[]): void {
    if (!this.startQueue()) return;
    this.seal();
    const frames = this.config.frames.run(events);
    this.parts.push(frames);
    this.queued(frames.length);
  }

  /** Before queueing: false if nothing may be sent; the first event queued arranges a flush. */
  private startQueue(): boolean {
    if (this.closing || this.ws.readyState !== this.ws.OPEN) return false;
    if (this.batchBytes === 0) {
      if (this.ws.bufferedAmount > this.config.maxBacklogBytes) {
        this.tooSlow();
        return false;
      }
      // Should a flush not come, the queue still leaves once this task is done.
      queueMicrotask(() => this.flush());
    }
    return true;
  }

  private queued(bytes: number): void {
    this.batchBytes += bytes;
    // Big events go out in pieces, so the send buffer (and replay's pacing) sees them.
    if (this.batchBytes >= FLUSH_BYTES) this.flush();
  }

  /** Turns the events queued one by one into a frame batch behind the earlier ones. */
  private seal(): void {
    if (this.batch.length === 0) return;
    this.parts.push(this.config.frames.batch(this.batch));
    this.batch = [];
  }

  /** Writes what is queued. */
  private flush(): void {
    this.seal();
    const parts = this.parts;
    if (parts.length === 0) return;
    this.parts = [];
    this.batchBytes = 0;
    if (this.closing || this.ws.readyState !== this.ws.OPEN) return;
    this.socket.write(parts.length === 1 ? parts[0]! : Buffer.concat(parts));
  }

  private error(code: string, detail: string): void {
    this.send({ type: 'error', code, detail } satisfies ErrorMessage);
  }

  private send(message: ServerMessage): void {
    // Queued events first: messages leave in the order they were sent.
    this.flush();
    if (this.closing || this.ws.readyState !== this.ws.OPEN) return;
    this.ws.send(JSON.stringify(message));
  }

  /**
   * A watchdog tick, `tickMs` after the last: closes the client once it has been past the bound
   * and taken nothing for the grace period. A large commit is not slowness (a reader takes it
   * bit by bit); a client that takes nothing is. A replay waiting for the client to read is
   * not: it goes at the client's pace (live events meanwhile are held by `maxBacklogBytes`).
   */
  watch(tickMs: number): void {
    if (this.closing) return;
    const sent = this.sentBytes();
    const progressed = sent > this.sentAtLastTick;
    this.sentAtLastTick = sent;
    const paced = this.pacedReplays > 0;
    if (progressed || paced || this.ws.bufferedAmount <= this.config.maxBufferedBytes) {
      this.stalledMs = 0;
      return;
    }
    this.stalledMs += tickMs;
    if (this.stalledMs >= this.config.slowGraceMs) this.tooSlow();
  }

  /**
   * Bytes the kernel took so far: those handed to the socket, less those still queued in it.
   * Without a `net.Socket`'s counters, the queue shrinking is the only sign of progress.
   */
  private sentBytes(): number {
    const { bytesWritten } = this.socket as Partial<Socket>;
    const queued = this.socket.writableLength;
    return typeof bytesWritten === 'number' ? bytesWritten - queued : -queued;
  }

  /**
   * While replaying: a promise that resolves once the send buffer is down to a quarter of the
   * bound, so a long log reaches a client at its own pace instead of tripping the bound.
   */
  private backlog(): Promise<void> | undefined {
    const low = this.config.maxBufferedBytes / 4;
    if (this.ws.bufferedAmount + this.batchBytes <= low) return undefined;
    this.flush();
    this.pacedReplays++;
    return new Promise((resolve) => {
      const check = () => {
        if (this.closing || this.ws.bufferedAmount <= low) {
          this.pacedReplays--;
          resolve();
        } else setTimeout(check, 5);
      };
      setTimeout(check, 5);
    });
  }

  /** Stops feeding a client that does not keep up; it resumes from its last seq. */
  private tooSlow(): void {
    this.dispose();
    this.ws.close(CLOSE_TOO_SLOW, 'too slow; reconnect with your last seq');
    // A client that reads nothing will not read the close frame either.
    setTimeout(() => this.ws.terminate(), this.config.closeGraceMs).unref();
  }
}
