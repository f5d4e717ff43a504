/**
 * Runs the orchestrator as a service: the REST API and the WebSocket on one HTTP server, runs
 * left unfinished by a previous process picked up again, and a graceful stop.
 *
 * Stopping: the server stops accepting connections and closes idle ones; requests in flight get
 * a grace period, then streams still open (SSE, NDJSON, WebSocket) are closed; the orchestrator
 * then lets the commits in flight finish and closes the store. A task whose result was not
 * committed runs again at the next start, as after a crash.
 *
 * @module
 */
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import { readFile } from 'node:fs/promises';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { createSecureContext } from 'node:tls';
import { join, resolve } from 'node:path';
import { serve } from '@hono/node-server';
import type { Hono } from 'hono';
import { createOrchestrator, type Orchestrator } from '../orchestrator.ts';
import type { OrchestratorOptions } from '../options.ts';
import { attachWebSocket, type WebSocketEndpoint } from '../ws/server.ts';
import { attachAgentSocket } from '../agents/ws.ts';
import { createServerRunLogs, type ServerRunLogs } from '../logging/server-logs.ts';
import { createApp } from './app.ts';
import { createAuth, loadTokens, type Auth } from './auth.ts';
import { ApiConfigError } from './errors.ts';
import { createMetrics, type Metrics } from './metrics.ts';
import type { AuthEnv } from './middleware/auth/index.ts';

/** The port `muster server` listens on by default (the CLI's default `--server` too). */
export const DEFAULT_PORT = 7070;
/** The address `muster server` listens on by default: this machine only. */
export const DEFAULT_HOST = '127.0.0.1';

/** Options of {@link startServer}. */
export interface ServerOptions extends OrchestratorOptions {
  /** 0 picks a free port. @default 7070 */
  readonly port?: number;
  /** @default '127.0.0.1' */
  readonly host?: string;
  /** A tokens file: one `role:token[:name]` a line. */
  readonly tokensFile?: string;
  /** The value of `MUSTER_TOKENS`: comma-separated `role:token`. */
  readonly tokensEnv?: string;
  /** Let every request in as an operator, with no token. @default false */
  readonly insecureNoAuth?: boolean;
  /** The largest request body, in bytes. @default 2 MiB */
  readonly bodyLimit?: number;
  /** How long requests in flight may take once stopping starts, in ms. @default 5000 */
  readonly shutdownGraceMs?: number;
  /** The version reported by `/openapi.json` and `muster_build_info`. @default '0.1.0' */
  readonly version?: string;
  /** Where the server reports what it does (start, resumed runs, agents, errors). @default stderr */
  readonly log?: (line: string) => void;
  /**
   * Where runs' log files go: a workflow's relative `logging.path` resolves inside it, and no
   * path may leave it (see `logging/server-logs.ts`).
   *
   * @default `<stateDir>/logs`
   */
  readonly logDir?: string;
  /** Where runs' `stdout` log destination writes. @default process.stdout */
  readonly runLogStdout?: { write(text: string): unknown };
  /** Serve this orchestrator instead of creating one (it is closed with the server). */
  readonly orchestrator?: Orchestrator;
  /** The URL other replicas and operators reach this one at. @default `http(s)://HOST:PORT` */
  readonly advertiseUrl?: string;
  /**
   * Serve HTTPS (and `wss://`) with this certificate chain and private key, PEM files. Clients
   * that do not know the certificate's issuer trust it through `NODE_EXTRA_CA_CERTS`.
   */
  readonly tls?: { readonly certFile: string; readonly keyFile: string };
  /**
   * How often agents heartbeat; one silent for three of them is lost and its tasks fail over.
   *
   * @default 5000
   */
  readonly agentHeartbeatMs?: number;
}

/** A running server. */
export interface RunningServer {
  /** `http://HOST:PORT`, or `https://` with TLS. */
  readonly url: string;
  readonly port: number;
  readonly httpServer: Server;
  readonly orchestrator: Orchestrator;
  readonly app: Hono<AuthEnv>;
  readonly metrics: Metrics;
  readonly auth: Auth;
  readonly webSocket: WebSocketEndpoint;
  /** Ids of the runs picked up again at start. */
  readonly resumed: readonly string[];
  /** The directory runs' log files go in. */
  readonly logDir: string;
  /** The runs' logs (open runs and files, for checks). */
  readonly runLogs: ServerRunLogs;
  /** Stops gracefully; safe to call more than once. */
  close(): Promise<void>;
}

/**
 * Starts the API server.
 *
 * @param options Where to listen, the tokens, the body limit, and the orchestrator's options.
 *
 * @returns The running server, once it listens and unfinished runs are driven again.
 *
 * @throws {ApiConfigError} `API1001` for bad tokens, or none without `insecureNoAuth`.
 *
 * @example
 * ```ts
 * const server = await startServer({ port: 0, stateDir: tmp, tokensEnv: 'operator:s3cr3t' });
 * await fetch(`${server.url}/health`);
 * await server.close();
 * ```
 */
export async function startServer(options: ServerOptions = {}): Promise<RunningServer> {
  const log = options.log ?? ((line: string) => process.stderr.write(`${line}\n`));
  // Tokens first: a bad tokens file must not leave a database open behind it.
  const tokens = await loadTokens({
    ...(options.tokensFile !== undefined ? { tokensFile: options.tokensFile } : {}),
    ...(options.tokensEnv !== undefined ? { env: options.tokensEnv } : {}),
  });
  const auth = createAuth({ tokens, insecure: options.insecureNoAuth ?? false });
  const tls = options.tls ? await readTls(options.tls) : undefined;
  // The port next: a port in use is told at once, before any database is opened. Until the app
  // is ready, requests get a 503.
  const host = options.host ?? DEFAULT_HOST;
  const ready: { app?: Hono<AuthEnv> } = {};
  const httpServer = await listen(
    (request) =>
      ready.app
        ? ready.app.fetch(request)
        : new Response(null, { status: 503, headers: { 'Retry-After': '1' } }),
    host,
    options.port ?? DEFAULT_PORT,
    tls,
  );
  const port = (httpServer.address() as AddressInfo).port;
  const url = `${tls ? 'https' : 'http'}://${host.includes(':') ? `[${host}]` : host}:${port}`;
  let orchestrator: Orchestrator;
  try {
    orchestrator =
      options.orchestrator ??
      (await createOrchestrator(
        {
          ...(options.databaseUrl !== undefined ? { databaseUrl: options.databaseUrl } : {}),
          ...(options.stateDir !== undefined ? { stateDir: options.stateDir } : {}),
          ...(options.concurrency !== undefined ? { concurrency: options.concurrency } : {}),
          ...(options.handlers !== undefined ? { handlers: options.handlers } : {}),
          ...(options.replicaId !== undefined ? { replicaId: options.replicaId } : {}),
          ...(options.leaseTtlMs !== undefined ? { leaseTtlMs: options.leaseTtlMs } : {}),
          // A server is a replica: it takes over runs nobody drives and serves any agent.
          claimRuns: options.claimRuns ?? true,
        },
        {
          log,
          url: options.advertiseUrl ?? url,
          ...(options.version !== undefined ? { version: options.version } : {}),
          // What happens to agents (connected, lost, refused) goes to the server's log.
          agents: {
            log: (line) => log(`agents: ${line}`),
            ...(options.agentHeartbeatMs !== undefined
              ? {
                  hub: {
                    heartbeatMs: options.agentHeartbeatMs,
                    staleAfterMs: 3 * options.agentHeartbeatMs,
                  },
                }
              : {}),
          },
        },
      ));
  } catch (e: unknown) {
    await new Promise((resolve) => httpServer.close(resolve));
    throw e;
  }
  const metrics = createMetrics({
    ...(options.version !== undefined ? { version: options.version } : {}),
    loadRun: (id) => orchestrator.store.loadRun(id),
    getRun: (id) => orchestrator.store.getRun(id),
  });
  const detach = metrics.attach(orchestrator);
  // Each run's events to the logs its workflow's `logging` describes, from before resumed runs
  // start, so they append to the files they were writing.
  const logDir = resolve(options.logDir ?? join(orchestrator.options.stateDir, 'logs'));
  const runLogs = createServerRunLogs(orchestrator.store, {
    logDir,
    log,
    ...(options.runLogStdout ? { stdout: options.runLogStdout } : {}),
  });
  const unsubscribeRunLogs = orchestrator.subscribe((e) => void runLogs.log(e));
  const app = createApp({
    orchestrator,
    auth,
    metrics,
    logError: log,
    ...(options.bodyLimit !== undefined ? { bodyLimit: options.bodyLimit } : {}),
    ...(options.version !== undefined ? { version: options.version } : {}),
  });
  ready.app = app;

  const webSocket = attachWebSocket(httpServer, { orchestrator, auth, metrics });
  // Agents (issue 5): `muster agent` on remote servers connects to /agents with a token of role
  // agent whose name is the server it serves (`agent:TOKEN:web-1` in the tokens file).
  const agentSocket = orchestrator.agents
    ? attachAgentSocket(httpServer, { hub: orchestrator.agents, verify: (t) => auth.verify(t) })
    : undefined;
  // Responses under way, so stopping can end the streams at once and give the rest a grace.
  const open = new Set<ServerResponse>();
  httpServer.on('request', (_req: IncomingMessage, res: ServerResponse) => {
    open.add(res);
    res.once('close', () => open.delete(res));
  });

  const resumed = await orchestrator.resumeIncomplete().catch((e: unknown) => {
    log(`could not resume unfinished runs: ${e instanceof Error ? e.message : String(e)}`);
    return [] as string[];
  });
  if (resumed.length > 0) {
    log(`resumed ${resumed.length} unfinished run${resumed.length === 1 ? '' : 's'}`);
  }

  let closing: Promise<void> | undefined;
  const close = () =>
    (closing ??= (async () => {
      const grace = options.shutdownGraceMs ?? 5000;
      const stopped = new Promise<void>((resolve) => httpServer.close(() => resolve()));
      httpServer.closeIdleConnections();
      // A response whose head is sent but whose body goes on is a stream (SSE, NDJSON): it never
      // ends by itself, and its client resumes where it was. Other requests get the grace period.
      for (const res of open) if (res.headersSent && !res.writableEnded) res.destroy();
      await webSocket.close();
      await agentSocket?.close();
      // After the grace period, cut whatever is still open.
      const timer = setTimeout(() => httpServer.closeAllConnections(), grace);
      await stopped;
      clearTimeout(timer);
      detach();
      await metrics.settled();
      await orchestrator.close();
      unsubscribeRunLogs();
      runLogs.close();
    })());

  return {
    url,
    port,
    httpServer,
    orchestrator,
    app,
    metrics,
    auth,
    webSocket,
    resumed,
    logDir,
    runLogs,
    close,
  };
}

/** A certificate and its key, read and checked before anything listens. */
async function readTls(files: {
  readonly certFile: string;
  readonly keyFile: string;
}): Promise<{ cert: Buffer; key: Buffer }> {
  const read = async (file: string, what: string) => {
    try {
      return await readFile(file);
    } catch (e: unknown) {
      const reason = (e as NodeJS.ErrnoException).code ?? String(e);
      throw new ApiConfigError(`cannot read the TLS ${what} ${file} (${reason})`);
    }
  };
  const cert = await read(files.certFile, 'certificate');
  const key = await read(files.keyFile, 'key');
  try {
    createSecureContext({ cert, key });
  } catch (e: unknown) {
    throw new ApiConfigError(
      `the TLS certificate ${files.certFile} and key ${files.keyFile} cannot be used together: ` +
        `${e instanceof Error ? e.message : String(e)}; give PEM files of one key pair`,
    );
  }
  return { cert, key };
}

/** Serves the app and resolves once it listens (or rejects, e.g. on a port in use). */
function listen(
  fetch: (request: Request) => Response | Promise<Response>,
  host: string,
  port: number,
  tls: { cert: Buffer; key: Buffer } | undefined,
): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = (
      tls
        ? serve({
            fetch,
            hostname: host,
            port,
            createServer: createHttpsServer,
            serverOptions: tls,
          })
        : serve({ fetch, hostname: host, port })
    ) as Server;
    // Keep idle connections longer than clients do (undici: 4 s), so a client never sends on a
    // connection the server is closing (ECONNRESET); as proxies do, 65 s.
    server.keepAliveTimeout = 65_000;
    server.headersTimeout = 66_000;
    const onError = (e: NodeJS.ErrnoException) => {
      server.off('listening', onListening);
      reject(
        e.code === 'EADDRINUSE'
          ? new ApiConfigError(`port ${port} on ${host} is in use; pick another with --port`)
          : e,
      );
    };
    const onListening = () => {
      server.off('error', onError);
      resolve(server);
    };
    server.once('error', onError);
    server.once('listening', onListening);
  });
}
