/**
 * A small typed HTTP client of the orchestrator's REST API (see the contract in
 * `/work/prompts/api-contract.md`): `fetch`, a bearer token, every response body checked with
 * valibot, every failure a typed error (`ApiError` with the server's code, message and problems;
 * `ServerUnreachableError` when nothing answers).
 *
 * @module
 */
import * as v from 'valibot';
import { FINAL_RUN_STATUSES } from '../../orchestrator/src/engine/types.ts';
import type { RunStatus } from '../../orchestrator/src/engine/types.ts';
import {
  ApiEventSchema,
  ControlResultSchema,
  DryRunResultSchema,
  LogPageSchema,
  ProblemDetailsSchema,
  RunPageSchema,
  RunSummarySchema,
  SubmitResultSchema,
  ApiPlanSchema,
  ValidateResultSchema,
} from './client-schemas.ts';
import type {
  ApiEvent,
  ApiPlan,
  ApiRunSummary,
  ControlResult,
  LogPage,
  ProblemDetails,
  RunListItem,
  RunPage,
  SubmitResult,
  ValidateResult,
} from './client-schemas.ts';
import { ApiError, ServerUnreachableError, UnexpectedResponseError } from './client-errors.ts';
import { readSse } from './sse.ts';
import { sleep } from './timers.ts';

/** The orchestrator's address when none is given. */
export const DEFAULT_SERVER = 'http://127.0.0.1:7070';

/** Run event types after which a run is over (until a retry or rollback reopens it). */
export const FINAL_EVENT_TYPES: ReadonlySet<string> = new Set([
  'run:succeeded',
  'run:failed',
  'run:cancelled',
  'run:rolled_back',
]);

/** Options of `createClient`. */
export interface ClientOptions {
  /**
   * The orchestrator's base URL; a path prefix (behind a proxy) is kept.
   *
   * @default DEFAULT_SERVER
   */
  readonly server?: string;
  /** The bearer token; none sends no `Authorization` header. */
  readonly token?: string | undefined;
  /**
   * How long a request may take before it counts as unanswered, in milliseconds. Streams are
   * exempt once their headers arrive.
   *
   * @default 30_000
   */
  readonly timeoutMs?: number;
  /**
   * How long a followed stream keeps reconnecting after a dropped connection, in milliseconds.
   *
   * @default 60_000
   */
  readonly reconnectForMs?: number;
}

/** A workflow to submit: its source text and format, as the server's loader reads files. */
export interface SubmitBody {
  readonly source: string;
  readonly format: 'cue' | 'json' | 'yaml';
  readonly labels?: Readonly<Record<string, string>>;
  readonly idempotency_key?: string;
  /** `--set key=value`: values of the workflow's typed inputs, checked by the server. */
  readonly inputs?: Readonly<Record<string, string>>;
  /** `--env NAME`: one of the workflow's environments, whose input values apply. */
  readonly environment?: string;
}

/** Filters and paging of `GET /workflows`. */
export interface ListQuery {
  readonly status?: string;
  readonly name?: string;
  /** `key=value` pairs; a run must carry every one. */
  readonly labels?: readonly string[];
  readonly limit?: number;
  readonly cursor?: string;
}

/** A run control: what `POST /workflows/{id}/{action}` does. */
export type ControlAction = 'rollback' | 'retry' | 'pause' | 'resume' | 'cancel' | 'terminate';

/** Options of `followLogs`. */
export interface FollowOptions {
  /** Start after this sequence number; 0 for the whole log. @default 0 */
  readonly after?: number;
  readonly signal?: AbortSignal;
  /** Told when a dropped stream is opened again, with the last sequence number seen. */
  readonly onReconnect?: (lastSeq: number, reason: string) => void;
}

/** The orchestrator's REST API. */
export interface MusterClient {
  /** The base URL, without a trailing slash. */
  readonly server: string;
  readonly token: string | undefined;
  /** Creates a run; with a repeated idempotency key, returns the existing one (`created: false`). */
  submit(body: SubmitBody): Promise<SubmitResult>;
  /** Validates without creating a run; a 422 `ApiError` carries the problems. */
  validate(body: SubmitBody): Promise<ValidateResult>;
  /** Plans without creating a run. */
  dryRun(body: SubmitBody): Promise<ApiPlan>;
  /** One page of runs, newest first. */
  list(query?: ListQuery): Promise<RunPage>;
  /** Every run that matches, following `next_cursor`. */
  listAll(query?: Omit<ListQuery, 'cursor'>): Promise<RunListItem[]>;
  status(id: string): Promise<ApiRunSummary>;
  plan(id: string): Promise<ApiPlan>;
  /** One page of a run's events after a sequence number. */
  logs(id: string, query?: { after?: number; limit?: number }): Promise<LogPage>;
  /** Every event of a run after a sequence number, paging until the end. */
  allLogs(id: string, after?: number): Promise<ApiEvent[]>;
  /**
   * A run's events as they happen (SSE), from `after`: reconnects after a dropped connection with
   * the last sequence number seen, so no event is lost or repeated, and ends once the run is over
   * (the server's `end` event, or a 204 when nothing is left).
   */
  followLogs(id: string, options?: FollowOptions): AsyncGenerator<ApiEvent>;
  control(
    id: string,
    action: ControlAction,
    body?: Record<string, unknown>,
  ): Promise<ControlResult>;
}

/**
 * Creates a client of the orchestrator's REST API.
 *
 * @param options The server, the token, timeouts.
 *
 * @returns The client.
 *
 * @example
 * ```ts
 * const client = createClient({ server: 'http://127.0.0.1:7070', token: process.env.MUSTER_TOKEN });
 * const { items } = await client.list({ status: 'failed' });
 * ```
 */
export function createClient(options: ClientOptions = {}): MusterClient {
  const server = (options.server ?? DEFAULT_SERVER).replace(/\/+$/, '');
  const token = options.token;
  const timeoutMs = options.timeoutMs ?? 30_000;
  const reconnectForMs = options.reconnectForMs ?? 60_000;

  const url = (path: string, query: Record<string, unknown> = {}) => {
    const u = new URL(server + path);
    for (const [key, value] of Object.entries(query)) {
      if (value === undefined) continue;
      for (const item of Array.isArray(value) ? value : [value]) {
        u.searchParams.append(key, String(item));
      }
    }
    return u;
  };

  const send = async (
    method: string,
    path: string,
    init: { query?: Record<string, unknown>; body?: unknown; headers?: Record<string, string> },
    signal?: AbortSignal,
  ): Promise<Response> => {
    const what = `${method} ${path}`;
    const headers: Record<string, string> = { accept: 'application/json', ...init.headers };
    if (token) headers['authorization'] = `Bearer ${token}`;
    if (init.body !== undefined) headers['content-type'] = 'application/json';
    let response: Response;
    try {
      response = await fetch(url(path, init.query), {
        method,
        headers,
        ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
        signal: signal ?? AbortSignal.timeout(timeoutMs),
      });
    } catch (e: unknown) {
      throw unreachable(server, e, timeoutMs);
    }
    if (!response.ok) throw await apiError(response, what);
    return response;
  };

  const json = async <TSchema extends v.GenericSchema>(
    schema: TSchema,
    method: string,
    path: string,
    init: {
      query?: Record<string, unknown>;
      body?: unknown;
      headers?: Record<string, string>;
    } = {},
  ): Promise<v.InferOutput<TSchema>> => {
    const response = await send(method, path, init);
    let body: unknown;
    try {
      body = await response.json();
    } catch (e: unknown) {
      if (isNetworkError(e)) throw unreachable(server, e, timeoutMs);
      throw new UnexpectedResponseError(`${method} ${path}`, 'the body is not JSON');
    }
    return check(schema, body, `${method} ${path}`);
  };

  const runPath = (id: string, rest: string) => `/workflows/${encodeURIComponent(id)}/${rest}`;

  const client: MusterClient = {
    server,
    token,
    submit: (body) =>
      json(SubmitResultSchema, 'POST', '/workflows/batch', {
        body,
        // The key goes in the body and, as RFC drafts for idempotency name it, in a header.
        ...(body.idempotency_key ? { headers: { 'idempotency-key': body.idempotency_key } } : {}),
      }),
    validate: (body) =>
      json(ValidateResultSchema, 'POST', '/workflows/batch', { body, query: { validate: 1 } }),
    dryRun: async (body) =>
      (await json(DryRunResultSchema, 'POST', '/workflows/batch', { body, query: { dry_run: 1 } }))
        .plan,
    list: (query = {}) =>
      json(RunPageSchema, 'GET', '/workflows', {
        query: {
          status: query.status,
          name: query.name,
          label: query.labels,
          limit: query.limit,
          cursor: query.cursor,
        },
      }),
    async listAll(query = {}) {
      const items: RunListItem[] = [];
      const seen = new Set<string>();
      let cursor: string | undefined;
      for (;;) {
        const page = await client.list({ ...query, ...(cursor ? { cursor } : {}) });
        items.push(...page.items);
        if (!page.next_cursor || page.items.length === 0) return items;
        // A server that hands back a cursor it gave before would loop forever: stop with an error.
        if (seen.has(page.next_cursor)) {
          throw new UnexpectedResponseError('GET /workflows', 'next_cursor repeats itself');
        }
        seen.add(page.next_cursor);
        cursor = page.next_cursor;
      }
    },
    status: (id) => json(RunSummarySchema, 'GET', runPath(id, 'status')),
    plan: (id) => json(ApiPlanSchema, 'GET', runPath(id, 'plan')),
    logs: (id, query = {}) =>
      json(LogPageSchema, 'GET', runPath(id, 'logs'), {
        query: { after: query.after, limit: query.limit },
      }),
    async allLogs(id, after = 0) {
      const events: ApiEvent[] = [];
      let cursor = after;
      for (;;) {
        const page = await client.logs(id, { after: cursor });
        events.push(...page.items.filter((e) => e.seq > cursor));
        const last = page.items.at(-1)?.seq ?? cursor;
        const next = page.next_after ?? last;
        if (page.items.length === 0 || page.next_after === null || next <= cursor) return events;
        cursor = next;
      }
    },
    followLogs: (id, options = {}) =>
      followLogs({
        id,
        options,
        reconnectForMs,
        open: (after, signal) =>
          send(
            'GET',
            runPath(id, 'logs'),
            {
              query: { follow: 1, after },
              headers: { accept: 'text/event-stream', 'last-event-id': String(after) },
            },
            signal,
          ),
        status: async (after) => {
          const summary = await client.status(id);
          return { status: summary.status, rest: await client.allLogs(id, after) };
        },
        server,
      }),
    control: (id, action, body = {}) =>
      json(ControlResultSchema, 'POST', runPath(id, action), { body }),
  };
  return client;
}

interface FollowContext {
  readonly id: string;
  readonly options: FollowOptions;
  readonly reconnectForMs: number;
  readonly server: string;
  open(after: number, signal: AbortSignal): Promise<Response>;
  /** The run's state, and the events after `after` that a dropped stream did not deliver. */
  status(after: number): Promise<{ status: RunStatus; rest: ApiEvent[] }>;
}

async function* followLogs(ctx: FollowContext): AsyncGenerator<ApiEvent> {
  const { options } = ctx;
  let last = options.after ?? 0;
  let failingSince: number | undefined;
  let delay = 250;
  for (;;) {
    // Aborting this controller ends the request when the caller stops or the caller's signal fires.
    const controller = new AbortController();
    const stop = () => controller.abort();
    options.signal?.addEventListener('abort', stop, { once: true });
    let reason: string;
    let over = false;
    try {
      const response = await ctx.open(last, controller.signal);
      // 204: the run is over and nothing is left after `last`.
      if (response.status === 204) return;
      if (!response.body) throw new UnexpectedResponseError('GET logs?follow=1', 'no body');
      for await (const message of readSse(response.body as AsyncIterable<Uint8Array>)) {
        // `end`: the run is in a final state and every event of it was sent.
        if (message.event === 'end') return;
        if (message.data === '') continue;
        const event = parseEvent(message.data);
        failingSince = undefined;
        delay = 250;
        if (event.seq <= last) continue;
        last = event.seq;
        yield event;
        if (event.type.startsWith('run:')) over = FINAL_EVENT_TYPES.has(event.type);
      }
      // The server ends the stream once the run is over and its last event is out.
      if (over) return;
      const { status, rest } = await ctx.status(last);
      for (const event of rest) {
        last = event.seq;
        yield event;
      }
      if (FINAL_RUN_STATUSES.has(status)) return;
      reason = 'the stream ended early';
    } catch (e: unknown) {
      if (options.signal?.aborted) return;
      if (e instanceof ApiError || e instanceof UnexpectedResponseError) throw e;
      if (e instanceof ServerUnreachableError) reason = 'the orchestrator does not answer';
      else reason = `the connection dropped (${e instanceof Error ? e.message : String(e)})`;
      failingSince ??= Date.now();
      if (Date.now() - failingSince > ctx.reconnectForMs) {
        throw e instanceof ServerUnreachableError
          ? e
          : new ServerUnreachableError(ctx.server, reason, { cause: e });
      }
    } finally {
      options.signal?.removeEventListener('abort', stop);
      controller.abort();
    }
    options.onReconnect?.(last, reason);
    await sleep(delay, options.signal);
    if (options.signal?.aborted) return;
    delay = Math.min(delay * 2, 2_000);
  }
}

function parseEvent(data: string): ApiEvent {
  let value: unknown;
  try {
    value = JSON.parse(data);
  } catch {
    throw new UnexpectedResponseError(
      'GET logs?follow=1',
      `an event is not JSON: ${data.slice(0, 80)}`,
    );
  }
  return check(ApiEventSchema, value, 'GET logs?follow=1');
}

/**
 * Checks a response body against its schema.
 *
 * @param schema The schema.
 * @param body The parsed body.
 * @param what The request, for the message.
 *
 * @returns The body, typed.
 *
 * @throws {UnexpectedResponseError} Naming the first fields that do not match.
 */
export function check<TSchema extends v.GenericSchema>(
  schema: TSchema,
  body: unknown,
  what: string,
): v.InferOutput<TSchema> {
  const result = v.safeParse(schema, body);
  if (result.success) return result.output;
  const detail = result.issues
    .slice(0, 3)
    .map((issue) => `${v.getDotPath(issue) ?? '(body)'}: ${issue.message}`)
    .join('; ');
  throw new UnexpectedResponseError(what, detail);
}

async function apiError(response: Response, what: string): Promise<ApiError> {
  const text = await response.text().catch(() => '');
  let details: ProblemDetails = { title: response.statusText || `HTTP ${response.status}` };
  try {
    const parsed = v.safeParse(ProblemDetailsSchema, JSON.parse(text));
    if (parsed.success) details = parsed.output;
  } catch {
    // Not JSON (a proxy's HTML page): keep a line of it, so the user sees who answered.
    if (text.trim()) details = { ...details, detail: text.trim().split('\n')[0]!.slice(0, 200) };
  }
  return new ApiError(response.status, details, what);
}

function unreachable(server: string, e: unknown, timeoutMs: number): ServerUnreachableError {
  if (e instanceof DOMException && (e.name === 'TimeoutError' || e.name === 'AbortError')) {
    return new ServerUnreachableError(server, `no answer within ${timeoutMs / 1000}s`, {
      cause: e,
    });
  }
  const cause =
    e instanceof Error ? (e.cause as { code?: string; message?: string } | undefined) : undefined;
  const reason = cause?.message ?? cause?.code ?? (e instanceof Error ? e.message : String(e));
  return new ServerUnreachableError(server, reason, { cause: e });
}

function isNetworkError(e: unknown): boolean {
  return e instanceof TypeError || (e instanceof DOMException && e.name === 'AbortError');
}
