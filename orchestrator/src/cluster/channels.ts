/**
 * The notification channels replicas talk through. A notification only wakes a replica up: what
 * it is about is always read from the tables, so a lost one costs latency, never data (every
 * listener also polls).
 *
 * @module
 */

/** A run needs a driver (submitted, reopened, or freed by a replica that stopped). */
export const RUNS_CHANNEL = 'muster_runs';
/** A command waits for the replica named in the payload. */
export const COMMANDS_CHANNEL = 'muster_commands';
/** A command has an outcome; the payload is its id. */
export const COMMAND_DONE_CHANNEL = 'muster_command_done';
/** Events were committed: the payload is {@link EventsNotice} as JSON. */
export const EVENTS_CHANNEL = 'muster_events';
/** A server's queue has new tasks; the payload is the server's name. */
export const QUEUE_CHANNEL = 'muster_queue';
/** A dispatch has new messages, or a cancel request; the payload is `KIND:ID`. */
export const DISPATCH_CHANNEL = 'muster_dispatch';

/** Which runs have new events, up to which seq, from which replica. */
export interface EventsNotice {
  /** The replica that committed them. */
  readonly r: string;
  /** `[runId, firstSeq, lastSeq]` per run. */
  readonly e: ReadonlyArray<readonly [string, number, number]>;
}

/** NOTIFY payloads must stay under 8000 bytes. */
export const MAX_PAYLOAD = 7900;

/**
 * Splits an events notice into payloads that each fit in a notification.
 *
 * @example
 * ```ts
 * eventsPayloads('r1', [['run-a', 1, 9]]); // ['{"r":"r1","e":[["run-a",1,9]]}']
 * ```
 */
export function eventsPayloads(
  replica: string,
  heads: ReadonlyArray<readonly [string, number, number]>,
): string[] {
  const payloads: string[] = [];
  let batch: Array<readonly [string, number, number]> = [];
  let size = 0;
  const base = JSON.stringify({ r: replica, e: [] }).length;
  for (const head of heads) {
    const len = JSON.stringify(head).length + 1;
    if (batch.length > 0 && base + size + len > MAX_PAYLOAD) {
      payloads.push(JSON.stringify({ r: replica, e: batch }));
      batch = [];
      size = 0;
    }
    batch.push(head);
    size += len;
  }
  if (batch.length > 0) payloads.push(JSON.stringify({ r: replica, e: batch }));
  return payloads;
}

/** Reads an events notice; `undefined` for anything else. */
export function parseEventsNotice(payload: string): EventsNotice | undefined {
  try {
    const notice = JSON.parse(payload) as EventsNotice;
    if (typeof notice.r !== 'string' || !Array.isArray(notice.e)) return undefined;
    return notice;
  } catch {
    return undefined;
  }
}
