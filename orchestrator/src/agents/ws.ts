/**
 * The agents' WebSocket endpoint, `/agents`: authenticates each connection by its bearer token,
 * binds it to the server the token serves, and hands it to the hub.
 *
 * Tokens: those the hub issued to the agents it started itself, and, on `muster server`, the
 * API's tokens with role `agent`, where the token's name is the server it serves
 * (`agent:TOKEN:web-1` in the tokens file; `agent:TOKEN:*` serves every server). Refusals are
 * WebSocket close codes (see `AGENT_CLOSE`), preceded by a `hub:reject` message that says why in
 * full.
 *
 * @module
 */
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Duplex } from 'node:stream';
import { WebSocketServer, type WebSocket } from 'ws';
import type { AgentBinding, AgentHub } from './hub.ts';
import { truncate } from './hub.ts';
import { routeUpgrade } from '../api/upgrade-routes.ts';
import { AGENT_CLOSE, AGENTS_PATH, type HubMessage } from './protocol.ts';

/** A principal as the API's auth returns it. */
export interface AgentPrincipal {
  readonly role: string;
  readonly name: string;
}

/** Options of {@link attachAgentSocket}. */
export interface AttachAgentSocketOptions {
  readonly hub: AgentHub;
  /**
   * Checks a token that the hub did not issue: the API's `auth.verify`. Only role `agent` is let
   * in, bound to the server named by the token's name. Without it, only the hub's own tokens work.
   */
  readonly verify?: (token: string | undefined) => AgentPrincipal | undefined;
  /** @default '/agents' */
  readonly path?: string;
  /** The largest message, in bytes (rollback data of a step may be large). @default 32 MiB */
  readonly maxPayload?: number;
}

/** The attached endpoint. */
export interface AgentSocketEndpoint {
  /** Connections open now. */
  readonly connections: number;
  /** Stops accepting agents and closes their connections (1001: they reconnect later). */
  close(): Promise<void>;
}

/**
 * Serves `/agents` on an HTTP server, beside other upgrade listeners (`/ws`).
 *
 * @example
 * ```ts
 * const agents = attachAgentSocket(httpServer, { hub: orchestrator.agents, verify: auth.verify });
 * // on shutdown
 * await agents.close();
 * ```
 */
export function attachAgentSocket(
  httpServer: Server,
  options: AttachAgentSocketOptions,
): AgentSocketEndpoint {
  const path = options.path ?? AGENTS_PATH;
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: options.maxPayload ?? 32 * 1024 * 1024,
    perMessageDeflate: false,
  });
  const sockets = new Set<WebSocket>();

  const onUpgrade = (req: IncomingMessage, socket: Duplex, head: Buffer) => {
    wss.handleUpgrade(req, socket, head, (ws) => {
      ws.on('error', () => {});
      const token = bearerToken(req.headers.authorization);
      const binding = authenticate(token, options);
      if ('refused' in binding) {
        send(ws, { type: 'hub:reject', code: binding.code, message: binding.refused });
        ws.close(binding.code, truncate(binding.refused));
        return;
      }
      sockets.add(ws);
      const connection = options.hub.connect(
        {
          send: (message) => send(ws, message),
          close: (code, reason) => ws.close(code, reason),
        },
        binding,
      );
      ws.on('message', (data, isBinary) => {
        if (isBinary) {
          ws.close(AGENT_CLOSE.protocol, 'agents send JSON text frames');
          return;
        }
        connection.message(data.toString());
      });
      ws.once('close', () => {
        sockets.delete(ws);
        connection.closed();
      });
    });
  };
  const stopRouting = routeUpgrade(httpServer, path, onUpgrade);

  return {
    get connections() {
      return sockets.size;
    },
    async close() {
      stopRouting();
      for (const ws of sockets)
        ws.close(AGENT_CLOSE.goingAway, 'the orchestrator is shutting down');
      // Sockets that do not answer the close handshake are cut.
      const deadline = setTimeout(() => {
        for (const ws of sockets) ws.terminate();
      }, 2000);
      deadline.unref();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      while (sockets.size > 0) await new Promise((r) => setTimeout(r, 10));
      clearTimeout(deadline);
    },
  };
}

/** A loopback listener for agents only. */
export interface AgentListener {
  /** `http://127.0.0.1:PORT`: what agents are given as `--orchestrator`. */
  readonly url: string;
  readonly port: number;
  close(): Promise<void>;
}

/**
 * Listens for agents on their own HTTP server (loopback, a free port by default): what `muster
 * run` does for the agents of its local servers.
 */
export async function listenForAgents(
  hub: AgentHub,
  options: { readonly host?: string; readonly port?: number } = {},
): Promise<AgentListener> {
  const host = options.host ?? '127.0.0.1';
  const server = createServer((_req, res) => {
    res.writeHead(404, { 'content-type': 'application/json' });
    res.end(JSON.stringify({ error: 'only agents connect here, on /agents' }));
  });
  const endpoint = attachAgentSocket(server, { hub });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://${host.includes(':') ? `[${host}]` : host}:${port}`,
    port,
    async close() {
      await endpoint.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

type Authenticated = AgentBinding | { refused: string; code: number };

function authenticate(token: string | undefined, options: AttachAgentSocketOptions): Authenticated {
  const local = options.hub.verifyLocalToken(token);
  if (local) return local;
  const principal = options.verify?.(token);
  if (!principal) {
    return {
      code: AGENT_CLOSE.unauthenticated,
      refused:
        token === undefined
          ? 'unauthenticated: send the agent token as "Authorization: Bearer TOKEN"'
          : 'unauthenticated: the token is unknown',
    };
  }
  if (principal.role !== 'agent') {
    return {
      code: AGENT_CLOSE.forbidden,
      refused: `forbidden: agents need a token with role agent, not ${principal.role}`,
    };
  }
  return {
    server: principal.name,
    principal: principal.name === '*' ? 'a fleet token' : principal.name,
  };
}

function send(ws: WebSocket, message: HubMessage): void {
  if (ws.readyState === ws.OPEN) ws.send(JSON.stringify(message));
}

function bearerToken(header: string | undefined): string | undefined {
  const m = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '');
  return m?.[1];
}
