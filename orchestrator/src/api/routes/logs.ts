/**
 * `GET /workflows/{id}/logs`: a run's event log, as a JSON page, an SSE stream, or NDJSON.
 *
 * - JSON (default): `{ items: [event], next_after }` for `?after=SEQ&limit=N`; `next_after` is the
 *   `after` of the next page, `null` once this page reached the end of the log.
 * - `?follow=1`: Server-Sent Events (WHATWG HTML §9.2): `id:` = seq, `event:` = the event's type,
 *   `data:` = the event JSON; a reconnect with `Last-Event-ID` resumes after that seq without a
 *   gap or a duplicate. A `: ping` comment every 15 s keeps proxies from closing an idle stream.
 *   Once the run is in a final state and its last event is sent, an `event: end` (data
 *   `{ run_id, status }`, no id) closes the stream; a reconnect that has nothing left to read gets
 *   `204 No Content`, which tells an `EventSource` to stop reconnecting.
 * - `Accept: application/x-ndjson`: one event JSON a line; with `follow=1` the stream stays open
 *   until the run ends, like SSE.
 *
 * Every form reads through the {@link EventHub}: a slow reader holds a bounded queue and is fed
 * from the store again when it catches up, so no client makes the server's memory grow.
 *
 * @module
 */
import { Hono, type Context } from 'hono';
import { stream as honoStream, streamSSE } from 'hono/streaming';
import * as v from 'valibot';
import type { Orchestrator } from '../../orchestrator.ts';
import type { Auth } from '../auth.ts';
import { BadRequestError } from '../errors.ts';
import { requireRole, type AuthEnv } from '../middleware/auth/index.ts';
import { RunNotFoundError } from '../../errors.ts';
import { FINAL_RUN_STATUSES } from '../../engine/types.ts';
import { eventHubFor, type EventHub } from '../../ws/events.ts';
import { toWireEvent, WireEventSchema } from '../../ws/protocol.ts';

/** Options of {@link logsRoutes}. */
export interface LogsRoutesOptions {
  readonly orchestrator: Pick<Orchestrator, 'subscribe' | 'store'>;
  readonly auth: Auth;
  /** The hub to stream through. @default the orchestrator's shared hub ({@link eventHubFor}) */
  readonly hub?: EventHub;
  /** Milliseconds between SSE `: ping` comments. @default 15000 */
  readonly heartbeatMs?: number;
}

/** The largest `limit` of a page. */
export const MAX_LOGS_LIMIT = 10_000;
/** The `limit` of a page when none is given. */
export const DEFAULT_LOGS_LIMIT = 1000;

/** A page of a run's log: the JSON answer of `GET /workflows/{id}/logs`. */
export const LogsPageSchema = v.object({
  items: v.array(WireEventSchema),
  /** The `after` of the next page; `null` when this page reached the end of the log. */
  next_after: v.nullable(v.number()),
});
export type LogsPage = v.InferOutput<typeof LogsPageSchema>;

/** The query of `GET /workflows/{id}/logs`. */
export const LogsQuerySchema = v.object({
  after: v.optional(v.pipe(v.string(), v.regex(/^\d{1,15}$/, 'a whole number of 0 or more'))),
  limit: v.optional(
    v.pipe(
      v.string(),
      v.regex(/^\d{1,15}$/, 'a whole number from 1'),
      v.check((s) => Number(s) >= 1 && Number(s) <= MAX_LOGS_LIMIT, `1 to ${MAX_LOGS_LIMIT}`),
    ),
  ),
  follow: v.optional(
    v.picklist(['1', 'true', '0', 'false'], '1 or true (0 or false to leave it off)'),
  ),
});

const NDJSON = 'application/x-ndjson';

/**
 * The log routes, to mount on the API app. Every route needs the `viewer` role.
 *
 * @example
 * ```ts
 * app.route('/', logsRoutes({ orchestrator, auth }));
 * ```
 */
export function logsRoutes(options: LogsRoutesOptions): Hono<AuthEnv> {
  const { orchestrator, auth } = options;
  const store = orchestrator.store;
  const hub = options.hub ?? eventHubFor(orchestrator);
  const heartbeatMs = options.heartbeatMs ?? 15_000;
  const app = new Hono<AuthEnv>();

  app.get('/workflows/:id/logs', requireRole('viewer', auth), async (c) => {
    const runId = c.req.param('id');
    const query = parseQuery(c);
    const run = await store.getRun(runId);
    if (!run) throw new RunNotFoundError(runId);
    const ndjson = (c.req.header('accept') ?? '').includes(NDJSON);
    const follow = query.follow === '1' || query.follow === 'true';

    if (follow && !ndjson) {
      const after = lastEventId(c) ?? query.after;
      // Nothing left to send of an ended run: 204 stops an EventSource from reconnecting.
      if (
        FINAL_RUN_STATUSES.has(run.status) &&
        (await store.events(runId, after, 1)).length === 0
      ) {
        return c.body(null, 204);
      }
      return streamSSE(c, async (sse) => {
        const abort = new AbortController();
        sse.onAbort(() => abort.abort());
        const heartbeat = setInterval(() => void sse.write(': ping\n\n'), heartbeatMs);
        try {
          for await (const item of hub.follow(runId, after, { signal: abort.signal })) {
            if (item.type === 'end') {
              await sse.writeSSE({
                event: 'end',
                data: JSON.stringify({ run_id: runId, status: item.status }),
              });
              break;
            }
            const event = item.event;
            await sse.writeSSE({
              id: String(event.seq),
              event: event.type,
              data: JSON.stringify(toWireEvent(event)),
            });
          }
        } finally {
          clearInterval(heartbeat);
          abort.abort();
        }
      });
    }

    if (ndjson) {
      c.header('Content-Type', `${NDJSON}; charset=utf-8`);
      c.header('Cache-Control', 'no-cache');
      return honoStream(c, async (out) => {
        const abort = new AbortController();
        out.onAbort(() => abort.abort());
        try {
          if (follow) {
            for await (const item of hub.follow(runId, query.after, { signal: abort.signal })) {
              if (item.type === 'end') break;
              await out.write(`${JSON.stringify(toWireEvent(item.event))}\n`);
            }
          } else {
            // The log as it is now, a page at a time, up to `limit` when one is given.
            let after = query.after;
            let left = query.limit ?? Number.POSITIVE_INFINITY;
            while (left > 0 && !abort.signal.aborted) {
              const page = await store.events(runId, after, Math.min(left, DEFAULT_LOGS_LIMIT));
              if (page.length === 0) break;
              await out.write(page.map((e) => `${JSON.stringify(toWireEvent(e))}\n`).join(''));
              after = page[page.length - 1]!.seq;
              left -= page.length;
              if (page.length < DEFAULT_LOGS_LIMIT) break;
            }
          }
        } finally {
          abort.abort();
        }
      });
    }

    const limit = query.limit ?? DEFAULT_LOGS_LIMIT;
    const events = await store.events(runId, query.after, limit);
    const last = events[events.length - 1];
    return c.json({
      items: events.map(toWireEvent),
      next_after: events.length === limit && last ? last.seq : null,
    } satisfies LogsPage);
  });

  return app;
}

/** The query, validated: a bad value is a 400 naming the parameter. */
function parseQuery(c: Context): { after: number; limit?: number; follow?: string } {
  const parsed = v.safeParse(LogsQuerySchema, c.req.query());
  if (!parsed.success) {
    const problems = parsed.issues.map((issue) => {
      const name = v.getDotPath(issue) ?? '';
      return {
        code: 'query',
        path: name,
        message: `?${name}= must be ${issue.message}`,
        expected: issue.message,
        received: issue.received,
      };
    });
    throw new BadRequestError(problems.map((p) => p.message).join('; '), problems);
  }
  const { after, limit, follow } = parsed.output;
  return {
    after: after === undefined ? 0 : Number(after),
    ...(limit !== undefined ? { limit: Number(limit) } : {}),
    ...(follow !== undefined ? { follow } : {}),
  };
}

/** The SSE resume position (`Last-Event-ID`, a seq), when the client sent one. */
function lastEventId(c: Context): number | undefined {
  const raw = c.req.header('last-event-id');
  if (raw === undefined || raw.trim() === '') return undefined;
  if (!/^\d{1,15}$/.test(raw.trim())) {
    throw new BadRequestError(
      `Last-Event-ID must be the seq of the last event received (a whole number), not "${raw}"`,
    );
  }
  return Number(raw.trim());
}
