/**
 * A run's events from the orchestrator's WebSocket (`/ws`, protocol in
 * `orchestrator/src/ws/protocol.ts`): subscribe with the last seq seen, read events until the
 * server says the run ended, and on a dropped connection reconnect and subscribe again from the
 * last seq, so no event is lost or seen twice.
 *
 * @module
 */
import type * as v from 'valibot';
import type { WebSocket as WebSocketClass } from 'ws';
import type { RunStatus } from '../../orchestrator/src/engine/types.ts';
import {
  CLOSE_FORBIDDEN,
  CLOSE_UNAUTHENTICATED,
  ServerMessageSchema,
  WS_PATH,
} from '../../orchestrator/src/ws/protocol.ts';
import { ApiError, ServerUnreachableError, UnexpectedResponseError } from './client-errors.ts';
import { check } from './client.ts';
import { ApiEventSchema } from './client-schemas.ts';
import type { ApiEvent } from './client-schemas.ts';
import { sleep } from './timers.ts';

/** What a watch yields: an event, or the end of the run with its final state. */
export type WatchItem =
  | { readonly kind: 'event'; readonly event: ApiEvent }
  | { readonly kind: 'end'; readonly status: RunStatus };

/** Options of `watchRun`. */
export interface WatchOptions {
  /** The orchestrator's base URL (`http://…` or `https://…`). */
  readonly server: string;
  readonly token?: string | undefined;
  readonly runId: string;
  /** The last seq already seen; 0 for the whole log. @default 0 */
  readonly after?: number;
  readonly signal?: AbortSignal;
  /** How long to keep reconnecting while the server cannot be reached. @default 60_000 */
  readonly reconnectForMs?: number;
  /** Told when the connection dropped and a new one is being made. */
  readonly onReconnect?: (lastSeq: number, reason: string) => void;
}

/**
 * Watches a run over the WebSocket, from `after` until the server reports that the run ended.
 *
 * @param options The server, token, run and position.
 *
 * @returns The run's events in `seq` order, then one `end` item; stopping early (`break`, or the
 * signal) closes the socket.
 *
 * @throws {ApiError} When the token is refused or the run does not exist.
 * @throws {ServerUnreachableError} When no connection could be made for `reconnectForMs`.
 *
 * @example
 * ```ts
 * for await (const item of watchRun({ server, token, runId })) {
 *   if (item.kind === 'end') console.log('run', item.status);
 * }
 * ```
 */
export async function* watchRun(options: WatchOptions): AsyncGenerator<WatchItem> {
  const reconnectForMs = options.reconnectForMs ?? 60_000;
  const url = wsUrl(options.server);
  let last = options.after ?? 0;
  let failingSince: number | undefined;
  let delay = 250;
  // Loaded here rather than with the module: only `--watch` and `--follow` need it.
  const { WebSocket } = await import('ws');

  for (;;) {
    const session = openSession(WebSocket, url, options, last);
    let reason: string;
    try {
      for (;;) {
        const next = await session.next();
        if (next.kind === 'closed') {
          reason = next.reason;
          break;
        }
        failingSince = undefined;
        delay = 250;
        if (next.kind === 'event') {
          if (next.event.seq <= last) continue;
          last = next.event.seq;
        }
        yield next;
        if (next.kind === 'end') return;
      }
    } finally {
      session.close();
    }
    if (options.signal?.aborted) return;
    failingSince ??= Date.now();
    if (Date.now() - failingSince > reconnectForMs) {
      throw new ServerUnreachableError(options.server, reason);
    }
    options.onReconnect?.(last, reason);
    await sleep(delay, options.signal);
    if (options.signal?.aborted) return;
    delay = Math.min(delay * 2, 2_000);
  }
}

type SessionItem = WatchItem | { readonly kind: 'closed'; readonly reason: string };

interface Session {
  /** The next item; rejects with a fatal error (auth, unknown run, a bad message). */
  next(): Promise<SessionItem>;
  close(): void;
}

/** One connection: its messages turned into a queue the generator pulls from. */
function openSession(
  WebSocket: typeof WebSocketClass,
  url: string,
  options: WatchOptions,
  after: number,
): Session {
  const queue: SessionItem[] = [];
  let fatal: Error | undefined;
  let wake: (() => void) | undefined;
  const push = (item: SessionItem) => {
    queue.push(item);
    wake?.();
  };
  const fail = (e: Error) => {
    fatal ??= e;
    wake?.();
  };

  const headers: Record<string, string> = {};
  if (options.token) headers['authorization'] = `Bearer ${options.token}`;
  const ws = new WebSocket(url, { headers });
  const onAbort = () => ws.close(1000);
  options.signal?.addEventListener('abort', onAbort, { once: true });

  ws.on('open', () => {
    ws.send(
      JSON.stringify({
        type: 'subscribe',
        runs: [options.runId],
        after: { [options.runId]: after },
      }),
    );
  });
  ws.on('unexpected-response', (_req, res) => {
    // A server that refuses the upgrade with a plain HTTP status (a proxy, or auth before upgrade).
    const status = res.statusCode ?? 0;
    if (status === 401 || status === 403) {
      fail(
        new ApiError(
          status,
          { code: status === 401 ? 'API4010' : 'API4030', detail: 'the WebSocket was refused' },
          `GET ${WS_PATH}`,
        ),
      );
    } else {
      push({ kind: 'closed', reason: `the WebSocket upgrade was answered with HTTP ${status}` });
    }
    res.resume();
    ws.terminate();
  });
  ws.on('message', (raw) => {
    let message: v.InferOutput<typeof ServerMessageSchema>;
    try {
      message = check(ServerMessageSchema, JSON.parse(String(raw)), `GET ${WS_PATH}`);
    } catch (e: unknown) {
      fail(e instanceof Error ? e : new UnexpectedResponseError(`GET ${WS_PATH}`, 'not JSON'));
      return;
    }
    switch (message.type) {
      case 'event':
        push({ kind: 'event', event: check(ApiEventSchema, message.event, `GET ${WS_PATH}`) });
        break;
      case 'end':
        if (message.run_id === options.runId) push({ kind: 'end', status: message.status });
        break;
      case 'error':
        if (message.code === 'API5001') {
          // The server could not read the log: a new subscription starts over from the last seq.
          push({ kind: 'closed', reason: message.detail });
        } else {
          fail(
            new ApiError(
              message.code === 'ORC1001' ? 404 : 400,
              { code: message.code, detail: message.detail },
              `GET ${WS_PATH}`,
            ),
          );
        }
        break;
      default:
    }
  });
  ws.on('error', (e: Error & { code?: string }) => {
    // `close` follows every `error`; remember why, so the reconnect message can say it.
    lastError = e.code ?? e.message;
  });
  let lastError: string | undefined;
  ws.on('close', (code, reasonBuffer) => {
    const reason = String(reasonBuffer);
    if (code === CLOSE_UNAUTHENTICATED || code === CLOSE_FORBIDDEN) {
      const status = code === CLOSE_UNAUTHENTICATED ? 401 : 403;
      const detail =
        reason || (status === 401 ? 'unknown or missing token' : 'the token may not subscribe');
      fail(
        new ApiError(
          status,
          { code: status === 401 ? 'API4010' : 'API4030', detail },
          `GET ${WS_PATH}`,
        ),
      );
      return;
    }
    push({
      kind: 'closed',
      reason: lastError ?? `the connection closed (${code}${reason ? `: ${reason}` : ''})`,
    });
  });

  return {
    async next() {
      for (;;) {
        if (fatal) throw fatal;
        const item = queue.shift();
        if (item) return item;
        await new Promise<void>((resolve) => (wake = resolve));
        wake = undefined;
      }
    },
    close() {
      options.signal?.removeEventListener('abort', onAbort);
      ws.removeAllListeners();
      ws.on('error', () => {});
      if (ws.readyState === WebSocket.CONNECTING) ws.terminate();
      else if (ws.readyState === WebSocket.OPEN) ws.close(1000);
    },
  };
}

/**
 * The WebSocket URL of an orchestrator: `http` becomes `ws`, `https` becomes `wss`, and the
 * server's path prefix is kept.
 *
 * @param server The orchestrator's base URL.
 *
 * @returns The URL of `/ws`.
 */
export function wsUrl(server: string): string {
  const url = new URL(server.replace(/\/+$/, '') + WS_PATH);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  return url.toString();
}
