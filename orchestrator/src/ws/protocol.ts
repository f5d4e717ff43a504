/**
 * The event stream protocol: the wire form of an event (shared by `/ws`, SSE and NDJSON) and the
 * messages of the WebSocket `/ws`, as valibot schemas with their types.
 *
 * A session:
 *
 * 1. Connect to `/ws` with `Authorization: Bearer TOKEN` (or `?token=TOKEN` where headers cannot be
 *    set). A missing or unknown token closes the socket with {@link CLOSE_UNAUTHENTICATED} (4401),
 *    a token without the `viewer` role with {@link CLOSE_FORBIDDEN} (4403).
 * 2. Send {@link SubscribeMessage}s: `{ "type": "subscribe", "runs": ["ID", …], "after": { "ID": SEQ } }`
 *    for some runs, or `{ "type": "subscribe", "runs": "*", "after": ID }` for every run. `after`
 *    is the position the client already has: per run the last `seq` it saw (a single number
 *    applies to every listed run), for `"*"` the last global event `id`. Leave it out (or 0) to
 *    get each run's log from its start.
 * 3. The server answers `subscribed`, then one `event` message per event, each run's events in
 *    `seq` order: first those after `after` (replayed from the log), then live ones, without a gap
 *    or a duplicate. When a subscribed run reaches a final state (`succeeded`, `failed`,
 *    `cancelled`, `rolled_back`) and its last event was sent, an `end` message follows; the
 *    subscription stays open, since a retry or rollback may reopen the run.
 * 4. On a dropped connection, reconnect and subscribe again with the last `seq` seen per run: the
 *    stream resumes exactly where it stopped.
 *
 * The server sends WebSocket ping frames every 15 s and drops a client that misses two; standard
 * clients answer on their own. A client that does not keep up with live events (more than 1 MiB
 * waiting to be sent and nothing read for a second, or more than 16 MiB waiting at all) is closed
 * with {@link CLOSE_TOO_SLOW} (1013): reconnect with the last seq. Replay goes at the client's
 * pace and never trips this.
 * A message that does not parse or match these schemas is answered with an `error` message
 * (`API4001`) and changes nothing; the connection stays open.
 *
 * @example
 * ```ts
 * const ws = new WebSocket('ws://localhost:7070/ws', { headers: { authorization: `Bearer ${t}` } });
 * ws.on('open', () => ws.send(JSON.stringify({ type: 'subscribe', runs: [id], after: lastSeq })));
 * ws.on('message', (raw) => {
 *   const msg = v.parse(ServerMessageSchema, JSON.parse(String(raw)));
 *   if (msg.type === 'event') lastSeq = msg.event.seq;
 * });
 * ```
 *
 * @module
 */
import * as v from 'valibot';
import type { EventType, RunEvent, RunStatus } from '../engine/types.ts';
import { RUN_STATUSES } from '../engine/types.ts';

/** The path of the WebSocket endpoint. */
export const WS_PATH = '/ws';

/** Close code: no token, or an unknown one. */
export const CLOSE_UNAUTHENTICATED = 4401;
/** Close code: the token's role may not subscribe (it needs `viewer` or `operator`). */
export const CLOSE_FORBIDDEN = 4403;
/** Close code (RFC 6455 §7.4.1 "Try Again Later"): the client read too slowly; reconnect. */
export const CLOSE_TOO_SLOW = 1013;
/** Close code: the server is shutting down. */
export const CLOSE_GOING_AWAY = 1001;

/** Error codes of `error` messages. */
export const WS_ERROR_CODES = {
  /** The message is not JSON or does not match a client message schema. */
  badMessage: 'API4001',
  /** A subscribed run does not exist. */
  runNotFound: 'ORC1001',
  /** Reading the log failed; subscribe again. */
  replayFailed: 'API5001',
} as const;

/** A run id as clients send it. */
const RunIdSchema = v.pipe(v.string(), v.minLength(1), v.maxLength(200));
/** A position in a log: a seq or a global id, 0 for "from the start". */
const PositionSchema = v.pipe(v.number(), v.integer(), v.minValue(0));

/** An event on the wire (snake_case), as `/ws`, SSE and NDJSON send it. */
export const WireEventSchema = v.object({
  /** Global order across runs. */
  id: v.number(),
  run_id: v.string(),
  /** Order within the run, from 1, without gaps: the resume position. */
  seq: v.number(),
  /** One of `OrchestratorEventMap`'s types, e.g. `task:succeeded`. */
  type: v.string(),
  /** When the engine recorded it (ISO 8601). */
  at: v.string(),
  operation_id: v.nullable(v.string()),
  task_id: v.nullable(v.string()),
  /** The type's payload (see `OrchestratorEventMap`). */
  data: v.unknown(),
});
export type WireEvent = v.InferOutput<typeof WireEventSchema>;

/** Converts an event to its wire form. */
export function toWireEvent(event: RunEvent): WireEvent {
  return {
    id: event.id,
    run_id: event.runId,
    seq: event.seq,
    type: event.type,
    at: event.at.toISOString(),
    operation_id: event.operationId,
    task_id: event.taskId,
    data: event.data,
  };
}

/**
 * `subscribe`: some runs with the last seq seen (per run, or one number for all of them), or `"*"`
 * with the last global event id seen.
 */
export const SubscribeMessageSchema = v.strictObject({
  type: v.literal('subscribe'),
  runs: v.union([v.pipe(v.array(RunIdSchema), v.minLength(1), v.maxLength(1000)), v.literal('*')]),
  after: v.optional(v.union([PositionSchema, v.record(RunIdSchema, PositionSchema)])),
});
export type SubscribeMessage = v.InferOutput<typeof SubscribeMessageSchema>;

/** `unsubscribe`: stop some runs, or `"*"` for every subscription of the connection. */
export const UnsubscribeMessageSchema = v.strictObject({
  type: v.literal('unsubscribe'),
  runs: v.union([v.pipe(v.array(RunIdSchema), v.minLength(1)), v.literal('*')]),
});
export type UnsubscribeMessage = v.InferOutput<typeof UnsubscribeMessageSchema>;

/** Any message a client may send. */
export const ClientMessageSchema = v.pipe(
  v.variant('type', [SubscribeMessageSchema, UnsubscribeMessageSchema]),
  v.forward(
    v.check(
      (m) => !(m.type === 'subscribe' && m.runs === '*' && typeof m.after === 'object'),
      'with runs "*", after is one global event id (a number), not a map of runs',
    ),
    ['after'],
  ),
);
export type ClientMessage = v.InferOutput<typeof ClientMessageSchema>;

/** `subscribed`: the subscription is in place; `after` is the position replay starts from. */
export const SubscribedMessageSchema = v.object({
  type: v.literal('subscribed'),
  runs: v.union([v.array(v.string()), v.literal('*')]),
  /** Per run the seq replay starts after; for `"*"` the global id. */
  after: v.union([v.number(), v.record(v.string(), v.number())]),
});
export type SubscribedMessage = v.InferOutput<typeof SubscribedMessageSchema>;

/** `event`: one event of a subscribed run. */
export const EventMessageSchema = v.object({
  type: v.literal('event'),
  event: WireEventSchema,
});
export type EventMessage = v.InferOutput<typeof EventMessageSchema>;

/** `end`: a subscribed run is in a final state and every event it has so far was sent. */
export const EndMessageSchema = v.object({
  type: v.literal('end'),
  run_id: v.string(),
  status: v.picklist(RUN_STATUSES),
});
export type EndMessage = v.InferOutput<typeof EndMessageSchema>;

/** `unsubscribed`: these runs send nothing more. */
export const UnsubscribedMessageSchema = v.object({
  type: v.literal('unsubscribed'),
  runs: v.union([v.array(v.string()), v.literal('*')]),
});
export type UnsubscribedMessage = v.InferOutput<typeof UnsubscribedMessageSchema>;

/** `error`: a message was refused (the connection stays open), or a subscription broke. */
export const ErrorMessageSchema = v.object({
  type: v.literal('error'),
  /** A stable code, see {@link WS_ERROR_CODES}. */
  code: v.string(),
  detail: v.string(),
  /** For a message that does not match the schemas: where and what. */
  problems: v.optional(
    v.array(
      v.object({
        path: v.string(),
        message: v.string(),
        expected: v.optional(v.string()),
        received: v.optional(v.string()),
      }),
    ),
  ),
});
export type ErrorMessage = v.InferOutput<typeof ErrorMessageSchema>;

/** Any message the server sends. */
export const ServerMessageSchema = v.variant('type', [
  SubscribedMessageSchema,
  EventMessageSchema,
  EndMessageSchema,
  UnsubscribedMessageSchema,
  ErrorMessageSchema,
]);
export type ServerMessage = v.InferOutput<typeof ServerMessageSchema>;

/** The run status each final event type leaves the run in. */
export const FINAL_EVENT_STATUS: Readonly<Partial<Record<EventType, RunStatus>>> = {
  'run:succeeded': 'succeeded',
  'run:failed': 'failed',
  'run:cancelled': 'cancelled',
  'run:rolled_back': 'rolled_back',
};
