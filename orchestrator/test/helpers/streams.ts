/**
 * Stream test helpers: a real HTTP server on port 0 with the log routes and `/ws` over a real
 * orchestrator (PGlite in a temp dir), real runs of echo and sleep steps, and a WebSocket client
 * that records what it receives.
 *
 * @module
 */
import { mkdtemp, rm } from 'node:fs/promises';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAdaptorServer, serve } from '@hono/node-server';
import { Hono } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import * as v from 'valibot';
import { WebSocket } from 'ws';
import { WorkflowSchema, type WorkflowInput } from '../../../schemas/src/workflow.ts';
import { createOrchestrator, type Orchestrator } from '../../src/orchestrator.ts';
import { planWorkflow } from '../../src/plan/index.ts';
import { createAuth, type Auth } from '../../src/api/auth.ts';
import { PROBLEM_JSON, toProblem } from '../../src/api/problem.ts';
import type { AuthEnv } from '../../src/api/middleware/auth/index.ts';
import { logsRoutes } from '../../src/api/routes/logs.ts';
import {
  attachWebSocket,
  type AttachWebSocketOptions,
  type WebSocketEndpoint,
} from '../../src/ws/server.ts';
import { createEventHub, type EventHub } from '../../src/ws/events.ts';
import { ServerMessageSchema, type ServerMessage, type WireEvent } from '../../src/ws/protocol.ts';
import type { RunStatus } from '../../src/engine/types.ts';

/** Tokens of the test server, by role. */
export const TOKENS = { viewer: 'view-token', operator: 'op-token', agent: 'agent-token' } as const;

/** A running test server. */
export interface StreamServer {
  readonly url: string;
  readonly wsUrl: string;
  readonly orchestrator: Orchestrator;
  readonly hub: EventHub;
  readonly ws: WebSocketEndpoint;
  readonly auth: Auth;
  readonly httpServer: Server;
  /** Submits and starts a run; `done` resolves with its final status. */
  startRun(input: WorkflowInput): Promise<{ id: string; done: Promise<RunStatus> }>;
  close(): Promise<void>;
}

/** Options of {@link startStreamServer}. */
export interface StreamServerOptions {
  readonly ws?: Partial<Omit<AttachWebSocketOptions, 'orchestrator' | 'auth' | 'hub'>>;
  readonly heartbeatMs?: number;
  readonly maxBuffered?: number;
  /**
   * Listen on this Unix socket instead of TCP: its kernel buffers are a few hundred KB, where
   * loopback TCP may buffer tens of MB for a reader that reads nothing, so back-pressure shows
   * in the server after the same bytes on every machine. `wsUrl` is then a `ws+unix:` URL.
   */
  readonly unixSocket?: string;
}

/** Starts the log routes and `/ws` on a fresh orchestrator, on a free port of 127.0.0.1. */
export async function startStreamServer(options: StreamServerOptions = {}): Promise<StreamServer> {
  const stateDir = await mkdtemp(join(tmpdir(), 'muster-streams-'));
  const orchestrator = await createOrchestrator({ stateDir, concurrency: 16 });
  const auth = createAuth({
    tokens: Object.entries(TOKENS).map(([role, token]) => ({
      role: role as keyof typeof TOKENS,
      token,
    })),
  });
  const hub = createEventHub(
    orchestrator,
    options.maxBuffered !== undefined ? { maxBuffered: options.maxBuffered } : {},
  );
  const app = new Hono<AuthEnv>();
  app.route(
    '/',
    logsRoutes({
      orchestrator,
      auth,
      hub,
      ...(options.heartbeatMs !== undefined ? { heartbeatMs: options.heartbeatMs } : {}),
    }),
  );
  app.onError((error, c) => {
    const { body } = toProblem(error, c.req.path);
    return c.json(body, body.status as ContentfulStatusCode, { 'Content-Type': PROBLEM_JSON });
  });
  const httpServer = await new Promise<Server>((resolve) => {
    if (options.unixSocket) {
      const server = createAdaptorServer({ fetch: app.fetch }) as Server;
      server.listen(options.unixSocket, () => resolve(server));
      return;
    }
    const server = serve({ fetch: app.fetch, hostname: '127.0.0.1', port: 0 }) as Server;
    server.once('listening', () => resolve(server));
  });
  const ws = attachWebSocket(httpServer, { orchestrator, auth, hub, ...options.ws });
  const drives: Array<Promise<unknown>> = [];
  const port = options.unixSocket ? 0 : (httpServer.address() as AddressInfo).port;
  return {
    url: options.unixSocket ? `http://unix:${options.unixSocket}` : `http://127.0.0.1:${port}`,
    wsUrl: options.unixSocket ? `ws+unix://${options.unixSocket}:/ws` : `ws://127.0.0.1:${port}/ws`,
    orchestrator,
    hub,
    ws,
    auth,
    httpServer,
    async startRun(input) {
      const workflow = v.parse(WorkflowSchema, input);
      const { run } = await orchestrator.submit(workflow, planWorkflow(workflow));
      const driver = await orchestrator.drive(run.id);
      drives.push(driver.done.catch(() => {}));
      return { id: run.id, done: driver.done };
    },
    async close() {
      await ws.close();
      httpServer.closeAllConnections();
      await new Promise<void>((resolve) => httpServer.close(() => resolve()));
      await Promise.all(drives);
      hub.close();
      await orchestrator.close();
      await rm(stateDir, { recursive: true, force: true });
    },
  };
}

/**
 * A busy workflow: `tasks` cluster tasks, each logging `lines` lines (one `task:output` event
 * each) of about `lineBytes` bytes, optionally sleeping first. About `tasks * (lines + 3) + 4`
 * events.
 */
export function busyWorkflow(
  name: string,
  tasks: number,
  lines: number,
  options: { sleep?: string; lineBytes?: number } = {},
): WorkflowInput {
  const filler = 'x'.repeat(Math.max(0, (options.lineBytes ?? 10) - 8));
  const message = Array.from({ length: lines }, (_, i) => `line ${i} ${filler}`).join('\n');
  return {
    name,
    operations: [
      {
        id: 'work',
        type: 'update',
        target: 'cluster',
        items: Array.from({ length: tasks }, (_, i) => `t${i}`),
        steps: [
          ...(options.sleep
            ? [{ name: 'nap', type: 'sleep' as const, params: { duration: options.sleep } }]
            : []),
          { name: 'say', type: 'echo' as const, params: { message } },
        ],
      },
    ],
  };
}

/** A WebSocket client that keeps every message it receives, parsed against the protocol. */
export class TestClient {
  readonly messages: ServerMessage[] = [];
  readonly socket: WebSocket;
  readonly opened: Promise<void>;
  readonly closed: Promise<{ code: number; reason: string }>;
  private waiters: Array<() => void> = [];

  constructor(
    url: string,
    options: { token?: string; viaQuery?: boolean; autoPong?: boolean } = {},
  ) {
    const target =
      options.viaQuery && options.token ? `${url}?token=${encodeURIComponent(options.token)}` : url;
    this.socket = new WebSocket(target, {
      ...(options.token && !options.viaQuery
        ? { headers: { authorization: `Bearer ${options.token}` } }
        : {}),
      autoPong: options.autoPong ?? true,
    });
    this.socket.on('error', () => {});
    this.opened = new Promise((resolve, reject) => {
      this.socket.once('open', () => resolve());
      this.socket.once('close', () => reject(new Error('closed before it opened')));
    });
    this.opened.catch(() => {});
    this.closed = new Promise((resolve) =>
      this.socket.once('close', (code, reason) => resolve({ code, reason: String(reason) })),
    );
    this.socket.on('message', (raw) => {
      this.messages.push(v.parse(ServerMessageSchema, JSON.parse(String(raw))));
      for (const wake of this.waiters.splice(0)) wake();
    });
  }

  /** Events received so far, in order. */
  get events(): WireEvent[] {
    return this.messages.flatMap((m) => (m.type === 'event' ? [m.event] : []));
  }

  send(message: unknown): void {
    this.socket.send(typeof message === 'string' ? message : JSON.stringify(message));
  }

  /** Resolves with the first message matching `predicate` (received before or after the call). */
  async waitFor<T extends ServerMessage>(
    predicate: (m: ServerMessage) => m is T,
    timeoutMs?: number,
  ): Promise<T>;
  async waitFor(
    predicate: (m: ServerMessage) => boolean,
    timeoutMs?: number,
  ): Promise<ServerMessage>;
  async waitFor(
    predicate: (m: ServerMessage) => boolean,
    timeoutMs = 20_000,
  ): Promise<ServerMessage> {
    const deadline = Date.now() + timeoutMs;
    let seen = 0;
    for (;;) {
      for (; seen < this.messages.length; seen++) {
        const m = this.messages[seen]!;
        if (predicate(m)) return m;
      }
      if (this.socket.readyState === WebSocket.CLOSED) {
        throw new Error(`closed before a matching message came`);
      }
      if (Date.now() > deadline) {
        throw new Error(
          `no matching message in ${timeoutMs} ms; got ${JSON.stringify(this.messages.slice(-3))}`,
        );
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, 100);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** Closes from the client side and waits for the close. */
  async close(): Promise<void> {
    if (this.socket.readyState === WebSocket.CLOSED) return;
    this.socket.close();
    await this.closed;
  }
}

/** Resolves when `condition` holds, polling; throws after `timeoutMs`. */
export async function until(
  condition: () => boolean,
  timeoutMs = 20_000,
  what = 'condition',
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Parses an SSE stream from a fetch response into messages, as they come. */
export async function* readSse(
  response: Response,
): AsyncGenerator<{ id?: string; event?: string; data: string } | { comment: string }> {
  const reader = response.body!.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      buffer += value;
      let cut: number;
      while ((cut = buffer.indexOf('\n\n')) !== -1) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut + 2);
        const fields: { id?: string; event?: string; data: string[] } = { data: [] };
        for (const line of block.split('\n')) {
          if (line.startsWith(':')) {
            yield { comment: line.slice(1).trim() };
            continue;
          }
          const colon = line.indexOf(':');
          const key = line.slice(0, colon);
          const value = line.slice(colon + 1).replace(/^ /, '');
          if (key === 'data') fields.data.push(value);
          else if (key === 'id') fields.id = value;
          else if (key === 'event') fields.event = value;
        }
        if (fields.data.length > 0 || fields.id !== undefined || fields.event !== undefined) {
          yield {
            ...(fields.id !== undefined ? { id: fields.id } : {}),
            ...(fields.event !== undefined ? { event: fields.event } : {}),
            data: fields.data.join('\n'),
          };
        }
      }
    }
  } finally {
    await reader.cancel().catch(() => {});
  }
}
