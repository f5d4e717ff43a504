/**
 * Events of runs driven by other replicas, for this replica's streams (WebSocket, SSE, NDJSON).
 *
 * Each replica announces its commits on {@link EVENTS_CHANNEL} (batched: one notification per
 * few milliseconds for all its runs), and reads from the event table what others announce. The
 * table is the source of truth: every `pollMs` the feed also asks which runs have events in the
 * last few seconds of the log, so a lost notification (a reconnection, a full queue) costs
 * latency, never an event. Per run, events are handed on in `seq` order, each once.
 *
 * Why the poll looks a few seconds back rather than from the last id it saw: global ids are drawn
 * when a commit starts, and commits of different replicas end in any order, so an id below the
 * largest one seen may still become visible. A window of several polls covers any commit that
 * takes less than that; per-run `seq`s, which have no gaps, drop what was seen already.
 *
 * @module
 */
import type { RunEvent } from '../engine/types.ts';
import { coerceError } from '../errors.ts';
import type { Store } from '../store/store.ts';
import { EVENTS_CHANNEL, eventsPayloads, parseEventsNotice } from './channels.ts';

/** Options of {@link createEventFeed}. */
export interface EventFeedOptions {
  readonly store: Store;
  /** This replica: its own notices are skipped. */
  readonly replicaId: string;
  /** Receives each event of another replica's runs, per run in `seq` order. */
  readonly publish: (event: RunEvent) => void;
  /** How often the log is polled for what notifications missed. @default 1000 */
  readonly pollMs?: number;
  /** How many polls back the window reaches. @default 5 */
  readonly windowPolls?: number;
  /** How long local events gather before one notification announces them. @default 2 */
  readonly notifyDelayMs?: number;
  readonly log?: (line: string) => void;
}

/** The feed. */
export interface EventFeed {
  /** Announces an event this replica committed (and notes its seq, so it is not read back). */
  local(event: RunEvent): void;
  /** Stops listening and polling. */
  close(): Promise<void>;
}

/** How long a run's position is kept after its last event. */
const FORGET_AFTER_MS = 10 * 60_000;

/** Starts the feed: listens, then polls. */
export async function createEventFeed(options: EventFeedOptions): Promise<EventFeed> {
  const { store, replicaId } = options;
  const log = options.log ?? (() => {});
  const pollMs = options.pollMs ?? 1000;
  const windowPolls = Math.max(1, options.windowPolls ?? 5);
  /** Per run, the last seq handed on (or committed here), and when. */
  const known = new Map<string, { seq: number; at: number }>();
  /** Per run, the seq a read should reach, and whether one is under way. */
  const reading = new Map<string, Promise<void>>();
  const wanted = new Map<string, number>();
  let closed = false;

  const note = (runId: string, seq: number) => {
    const k = known.get(runId);
    if (!k || seq > k.seq) known.set(runId, { seq, at: Date.now() });
    else k.at = Date.now();
  };

  /** Reads a run's events up to `target` (and beyond, if more came), once at a time per run. */
  const catchUp = (runId: string, target: number, from: number): void => {
    if (!known.has(runId)) known.set(runId, { seq: Math.max(0, from), at: Date.now() });
    wanted.set(runId, Math.max(wanted.get(runId) ?? 0, target));
    if (reading.has(runId)) return;
    const read = Promise.resolve().then(async () => {
      try {
        for (;;) {
          const k = known.get(runId)!;
          const goal = wanted.get(runId) ?? 0;
          if (closed || k.seq >= goal) break;
          const page = await store.events(runId, k.seq, 1000);
          if (page.length === 0) break;
          for (const event of page) {
            const now = known.get(runId)!;
            if (event.seq <= now.seq) continue;
            note(runId, event.seq);
            options.publish(event);
          }
        }
      } catch (e: unknown) {
        log(`could not read the events of run ${runId}: ${coerceError(e).message}`);
      } finally {
        reading.delete(runId);
        wanted.delete(runId);
      }
    });
    reading.set(runId, read);
  };

  // ── announcing this replica's commits ──────────────────────────────────────
  const pending = new Map<string, [number, number]>();
  let timer: NodeJS.Timeout | undefined;
  const flushNotices = () => {
    timer = undefined;
    const heads = [...pending].map(([runId, [first, last]]) => [runId, first, last] as const);
    pending.clear();
    for (const payload of eventsPayloads(replicaId, heads)) {
      store.cluster.notify(EVENTS_CHANNEL, payload).catch((e: unknown) => {
        // The poll of the others finds these events anyway.
        log(`could not announce events: ${coerceError(e).message}`);
      });
    }
  };

  // ── listening and polling ──────────────────────────────────────────────────
  const onNotice = (payload: string) => {
    const notice = parseEventsNotice(payload);
    if (!notice || notice.r === replicaId || closed) return;
    for (const [runId, first, last] of notice.e) {
      const k = known.get(runId);
      if (k && k.seq >= last) continue;
      catchUp(runId, last, k ? k.seq : first - 1);
    }
  };
  const marks: number[] = [await store.cluster.maxEventId()];
  let polling = false;
  const poll = async () => {
    if (polling || closed) return;
    polling = true;
    try {
      const since = marks[0]!;
      const heads = await store.cluster.eventHeads(since);
      let max = marks[marks.length - 1]!;
      for (const head of heads) {
        max = Math.max(max, head.maxId);
        const k = known.get(head.runId);
        if (k && k.seq >= head.seq) continue;
        catchUp(head.runId, head.seq, k ? k.seq : head.firstSeq - 1);
      }
      marks.push(max);
      while (marks.length > windowPolls) marks.shift();
      const cutoff = Date.now() - FORGET_AFTER_MS;
      for (const [runId, k] of known) if (k.at < cutoff && !reading.has(runId)) known.delete(runId);
    } catch (e: unknown) {
      log(`could not poll the event log: ${coerceError(e).message}`);
    } finally {
      polling = false;
    }
  };
  const unlisten = await store.listen(EVENTS_CHANNEL, onNotice, () => void poll());
  const poller = setInterval(() => void poll(), pollMs);
  poller.unref();

  return {
    local(event) {
      note(event.runId, event.seq);
      const p = pending.get(event.runId);
      if (p) p[1] = Math.max(p[1], event.seq);
      else pending.set(event.runId, [event.seq, event.seq]);
      timer ??= setTimeout(flushNotices, options.notifyDelayMs ?? 2);
    },
    async close() {
      closed = true;
      clearInterval(poller);
      if (timer) {
        clearTimeout(timer);
        flushNotices();
      }
      await unlisten().catch(() => {});
      await Promise.allSettled([...reading.values()]);
    },
  };
}
