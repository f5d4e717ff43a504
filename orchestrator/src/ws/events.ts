/**
 * The event hub: one place where every stream (WebSocket, SSE, NDJSON) gets a run's events,
 * first those after the client's position (replayed from the store), then live ones, without a
 * gap and without a duplicate.
 *
 * How the seam between replay and live is closed: a subscription listens to live events
 * *before* it queries the store, and buffers them while the query runs. Every event is committed
 * before it is published, so an event is either in the query's result, or published after the
 * subscription started listening, or both; the buffer is then flushed with duplicates dropped by
 * each run's `seq`, which has no gaps and only grows. The buffer is bounded: when it overflows it
 * is dropped and the store is read again from the last delivered position (the dropped events are
 * committed, so the next page has them).
 *
 * Live events are handed out in rounds: the engine publishes a commit's events in one
 * synchronous run, the hub collects them and delivers them together, then calls each consumer's
 * `flush`, so a socket writes a round's events in one go. A round costs a write per subscriber,
 * so with many subscribers rounds are spaced out (see {@link EventHubOptions.roundCostMs}): a
 * busy run watched by a thousand clients goes out in rounds of a few milliseconds' events, not
 * in a write per client per commit, while a lone watcher still gets each commit at once.
 *
 * Once live, each run's `seq` is checked again: an event past the next expected one (a gap, which
 * only a publisher that skipped events can cause) sends the subscription back to the store to
 * fill it, so per-run subscriptions never skip an event whatever happens upstream.
 *
 * @module
 */
import type { RunEvent, RunStatus } from '../engine/types.ts';
import { FINAL_RUN_STATUSES } from '../engine/types.ts';
import type { EventListener } from '../orchestrator.ts';
import type { Store } from '../store/store.ts';
import { coerceError } from '../errors.ts';
import { FINAL_EVENT_STATUS } from './protocol.ts';

/** What the hub needs: committed events as they are published, and the log to replay. */
export interface EventHubSource {
  /** With `remote`, events of runs other replicas drive come too (see `cluster/event-feed.ts`). */
  subscribe(listener: EventListener, options?: { readonly remote?: boolean }): () => void;
  readonly store: Pick<Store, 'events' | 'allEvents' | 'runStatus'>;
}

/** Options of an event hub. */
export interface EventHubOptions {
  /** Events read from the store per query while replaying. @default 1000 */
  readonly pageSize?: number;
  /**
   * Live events a subscription buffers while it replays; past it the buffer is dropped and the
   * store read again, so a busy run never makes a slow replay use unbounded memory.
   *
   * @default 10000
   */
  readonly maxBuffered?: number;
  /**
   * How long a round of live events is taken to cost per subscription, in milliseconds: after a
   * round, the next waits at least this times the number of subscriptions (at most
   * `maxRoundGapMs`). Events that come in the meantime go out together.
   *
   * @default 0.02
   */
  readonly roundCostMs?: number;
  /** The longest wait between two rounds of live events, in milliseconds. @default 20 */
  readonly maxRoundGapMs?: number;
}

/** What to stream: some runs after the seq seen in each, or every run after a global event id. */
export type StreamFilter =
  | {
      readonly runs: readonly string[];
      /** The last seq seen, per run or one for all; 0 or absent for the whole log. */
      readonly after?: number | Readonly<Record<string, number>>;
    }
  | {
      readonly runs: '*';
      /** The last global event id seen; 0 or absent for the whole log. */
      readonly after?: number;
    };

/** Callbacks of a subscription. Each is called synchronously and must not throw. */
export interface StreamHandlers {
  /** Every event, each run's in `seq` order, once. */
  onEvent(event: RunEvent): void;
  /**
   * Optional: live events of one run that follow the last one delivered, in `seq` order, in
   * place of an `onEvent` call each. Every subscription to the run gets the same array, so a
   * consumer can build what it sends from them once (the WebSocket's frames).
   */
  onEvents?(events: readonly RunEvent[]): void;
  /**
   * A subscribed run is in a final state and its events so far were all delivered. Not called for
   * `"*"` subscriptions. Called again if a retry or rollback reopens the run and it ends again.
   */
  onEnd?(runId: string, status: RunStatus): void;
  /** Replay failed (the store is unreachable): the subscription is closed. */
  onError?(error: Error): void;
  /**
   * Asked after each replayed event: a promise holds the replay until it resolves, so a consumer
   * with a full send buffer is fed at its own pace. Live events are pushed as they come.
   */
  wait?(): Promise<void> | undefined;
  /**
   * Called after each run of synchronous `onEvent` calls (a commit's events, a replay page):
   * a consumer that held writes back (a corked socket) sends them now.
   */
  flush?(): void;
}

/** A live subscription. */
export interface HubSubscription {
  /** Resolves once the replay is done and the subscription is live (rejects if it failed). */
  readonly ready: Promise<void>;
  /** Per run, the last seq delivered (for `"*"`, only runs seen since the subscription began). */
  readonly positions: ReadonlyMap<string, number>;
  /** Stops delivery at once; safe to call twice. */
  close(): void;
}

/** Options of {@link EventHub.follow}. */
export interface FollowOptions {
  /** Stops the stream (the generator returns). */
  readonly signal?: AbortSignal;
  /**
   * Events queued for a consumer that has not taken them yet; past it the stream stops taking
   * live events, lets the consumer drain its queue, then reads on from the store.
   *
   * @default 1000
   */
  readonly highWater?: number;
}

/** Events and a run's end, as {@link EventHub.follow} yields them. */
export type FollowItem =
  | { readonly type: 'event'; readonly event: RunEvent }
  | { readonly type: 'end'; readonly status: RunStatus };

/** The event hub. */
export interface EventHub {
  /** Subscribes: replays what came after `filter.after`, then delivers live events. */
  subscribe(filter: StreamFilter, handlers: StreamHandlers): HubSubscription;
  /**
   * One run's events after `after` as an async stream, ending after the run's final event; for
   * consumers that write at their own pace (SSE, NDJSON). Memory stays bounded by `highWater`.
   */
  follow(runId: string, after: number, options?: FollowOptions): AsyncGenerator<FollowItem>;
  /**
   * A run's status, or `undefined` if there is no such run; reads asked in the same turn of the
   * event loop (a crowd subscribing at once) share one query.
   */
  runStatus(runId: string): Promise<RunStatus | undefined>;
  /** Open subscriptions. */
  readonly size: number;
  /** Stops listening and closes every subscription. */
  close(): void;
}

/** The hub of each source, so the HTTP routes and `/ws` of one server share one listener. */
const hubs = new WeakMap<EventHubSource, EventHub>();

/** The event hub of an orchestrator, created on first use. */
export function eventHubFor(source: EventHubSource, options?: EventHubOptions): EventHub {
  let hub = hubs.get(source);
  if (!hub) {
    hub = createEventHub(source, options);
    hubs.set(source, hub);
  }
  return hub;
}

/**
 * Creates an event hub over an orchestrator (anything with `subscribe` and a `store`).
 *
 * @example
 * ```ts
 * const hub = createEventHub(orchestrator);
 * const sub = hub.subscribe({ runs: [runId], after: lastSeq }, { onEvent: send });
 * await sub.ready; // replayed; now live
 * ```
 */
export function createEventHub(source: EventHubSource, options: EventHubOptions = {}): EventHub {
  const pageSize = options.pageSize ?? 1000;
  const maxBuffered = options.maxBuffered ?? 10_000;
  const byRun = new Map<string, Set<Subscription>>();
  const all = new Set<Subscription>();
  const roundCostMs = options.roundCostMs ?? 0.02;
  const maxRoundGapMs = options.maxRoundGapMs ?? 20;
  let open = 0;

  // The engine publishes a commit's events one by one in a single synchronous run: collect
  // them and hand them out together, so each consumer can write them in one go; and while the
  // last round's writes are still recent, wait for the gap its subscribers call for.
  let pending: RunEvent[] = [];
  let lastRound = -Infinity;
  const schedule = () => {
    const wait = lastRound + Math.min(maxRoundGapMs, open * roundCostMs) - performance.now();
    if (wait < 1) queueMicrotask(dispatch);
    else setTimeout(dispatch, wait);
  };
  const dispatch = () => {
    lastRound = performance.now();
    const batch = pending;
    pending = [];
    const touched = new Set<Subscription>();
    // Each run's events of the round, in order: one array for all of that run's subscribers.
    const runs = new Map<string, RunEvent[]>();
    for (const event of batch) {
      const events = runs.get(event.runId);
      if (events) events.push(event);
      else runs.set(event.runId, [event]);
    }
    for (const [run, events] of runs) {
      const subs = byRun.get(run);
      if (!subs) continue;
      // Checked once for all subscribers: a final event goes one by one, so `onEnd` follows it.
      const ends = events.some((e) => FINAL_EVENT_STATUS[e.type]);
      for (const sub of subs) touched.add(sub.pushRun(events, ends));
    }
    if (all.size > 0)
      for (const event of batch) for (const sub of all) touched.add(sub.push(event));
    for (const sub of touched) sub.flush();
  };
  const stopListening = source.subscribe(
    (event) => {
      if (pending.push(event) === 1) schedule();
    },
    { remote: true },
  );

  // Many clients subscribing at once (a dashboard wall, everyone reconnecting after a restart)
  // ask the store the same thing: one query answers them all. A read is issued only after every
  // subscription it answers registered (it waits for the turn of the event loop), so none can
  // miss an event committed between the query and its registration.
  const waiting = new Map<string, { promise: Promise<unknown> }>();
  const shared = <T>(key: string, read: () => Promise<T>): Promise<T> => {
    let entry = waiting.get(key);
    if (!entry) {
      const promise = new Promise<T>((resolve, reject) => {
        setImmediate(() => {
          waiting.delete(key);
          read().then(resolve, reject);
        });
      });
      entry = { promise };
      waiting.set(key, entry);
    }
    return entry.promise as Promise<T>;
  };
  const reads: EventHubSource['store'] = {
    events: (run, after, limit) =>
      shared(`e\0${run}\0${after}\0${limit}`, () => source.store.events(run, after, limit)),
    allEvents: (after, limit) =>
      shared(`a\0${after}\0${limit}`, () => source.store.allEvents(after, limit)),
    runStatus: (id) => shared(`r\0${id}`, () => source.store.runStatus(id)),
  };

  const register = (sub: Subscription) => {
    open++;
    if (sub.runs === '*') all.add(sub);
    else
      for (const run of sub.runs) {
        let set = byRun.get(run);
        if (!set) byRun.set(run, (set = new Set()));
        set.add(sub);
      }
  };
  const unregister = (sub: Subscription) => {
    open--;
    if (sub.runs === '*') all.delete(sub);
    else
      for (const run of sub.runs) {
        const set = byRun.get(run);
        set?.delete(sub);
        if (set?.size === 0) byRun.delete(run);
      }
  };

  const hub: EventHub = {
    subscribe(filter, handlers) {
      const sub = new Subscription(filter, handlers, reads, {
        pageSize,
        maxBuffered,
        unregister,
      });
      register(sub);
      sub.start();
      return sub;
    },
    follow: (runId, after, followOptions = {}) => follow(hub, runId, after, followOptions),
    runStatus: (runId) => reads.runStatus(runId),
    get size() {
      return open;
    },
    close() {
      stopListening();
      for (const set of [...byRun.values(), all]) for (const sub of [...set]) sub.close();
    },
  };
  return hub;
}

interface SubscriptionConfig {
  readonly pageSize: number;
  readonly maxBuffered: number;
  readonly unregister: (sub: Subscription) => void;
}

class Subscription implements HubSubscription {
  readonly runs: readonly string[] | '*';
  readonly positions = new Map<string, number>();
  readonly ready: Promise<void>;
  /** `"*"`: the last global id replayed. */
  private lastId: number;
  /** `"*"` during catch-up: the global id the client gave; later events are new to it. */
  private readonly afterId: number;
  private replaying = true;
  private buffer: RunEvent[] = [];
  private overflowed = false;
  private closed = false;
  /** Runs whose end was reported and that sent nothing since. */
  private readonly ended = new Set<string>();
  private resolveReady!: () => void;
  private rejectReady!: (e: Error) => void;

  constructor(
    filter: StreamFilter,
    private readonly handlers: StreamHandlers,
    private readonly store: EventHubSource['store'],
    private readonly config: SubscriptionConfig,
  ) {
    this.runs = filter.runs === '*' ? '*' : [...new Set(filter.runs)];
    const after = filter.after ?? 0;
    this.afterId = this.lastId = typeof after === 'number' && filter.runs === '*' ? after : 0;
    if (this.runs !== '*')
      for (const run of this.runs)
        this.positions.set(run, typeof after === 'number' ? after : (after[run] ?? 0));
    this.ready = new Promise((resolve, reject) => {
      this.resolveReady = resolve;
      this.rejectReady = reject;
    });
    // A caller that only uses the handlers must not see an unhandled rejection.
    this.ready.catch(() => {});
  }

  start(): void {
    void this.catchUp(true);
  }

  /** A published event: buffered while replaying, delivered once live. */
  push(event: RunEvent): this {
    this.receive(event);
    return this;
  }

  /**
   * Published events of one run, in order. When they follow the last one delivered, with no
   * final event among them (`ends` false), they go to `onEvents` at once; otherwise one by one as
   * {@link push}.
   */
  pushRun(events: readonly RunEvent[], ends: boolean): this {
    if (this.closed) return this;
    const first = events[0]!;
    const lastEvent = events[events.length - 1]!;
    const last = this.positions.get(first.runId) ?? 0;
    if (
      this.handlers.onEvents &&
      !this.replaying &&
      this.runs !== '*' &&
      first.seq === last + 1 &&
      lastEvent.seq === last + events.length &&
      !ends
    ) {
      this.positions.set(first.runId, lastEvent.seq);
      this.ended.delete(first.runId);
      try {
        this.handlers.onEvents(events);
      } catch (e: unknown) {
        this.fail(coerceError(e));
      }
      return this;
    }
    for (const event of events) this.receive(event);
    return this;
  }

  /** Tells the consumer that a run of deliveries is over. */
  flush(): void {
    if (this.closed) return;
    try {
      this.handlers.flush?.();
    } catch (e: unknown) {
      this.fail(coerceError(e));
    }
  }

  private receive(event: RunEvent): void {
    if (this.closed) return;
    if (this.replaying) {
      if (this.buffer.length >= this.config.maxBuffered) {
        this.buffer = [];
        this.overflowed = true;
      } else if (!this.overflowed) this.buffer.push(event);
      return;
    }
    if (this.runs !== '*') {
      const last = this.positions.get(event.runId) ?? 0;
      if (event.seq > last + 1) {
        // A gap: fill it from the store, with this event in the buffer behind it.
        this.replaying = true;
        this.buffer = [event];
        void this.catchUp(false);
        return;
      }
    }
    this.deliver(event);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.buffer = [];
    this.config.unregister(this);
    // Nothing more will come: a caller awaiting the replay goes on.
    this.resolveReady();
  }

  /** Delivers an event unless this run's seq shows it was delivered already. */
  private deliver(event: RunEvent): void {
    if (this.closed) return;
    const last = this.positions.get(event.runId) ?? 0;
    if (event.seq <= last) return;
    this.positions.set(event.runId, event.seq);
    if (event.id > this.lastId) this.lastId = event.id;
    this.ended.delete(event.runId);
    try {
      this.handlers.onEvent(event);
      const final = FINAL_EVENT_STATUS[event.type];
      if (final && this.runs !== '*' && !this.closed) {
        this.ended.add(event.runId);
        this.handlers.onEnd?.(event.runId, final);
      }
    } catch (e: unknown) {
      this.fail(coerceError(e));
    }
  }

  /** Reads the store from the delivered positions until the buffer holds the rest, then flushes. */
  private async catchUp(first: boolean): Promise<void> {
    try {
      for (;;) {
        this.overflowed = false;
        if (this.runs === '*') await this.replayAll();
        else for (const run of this.runs) await this.replayRun(run);
        if (this.closed) return;
        if (this.overflowed) continue;
        // Flush what was published meanwhile; more may be buffered while the consumer drains.
        while (this.buffer.length > 0 && !this.overflowed) {
          const buffered = this.buffer;
          this.buffer = [];
          if (!(await this.deliverPaced(buffered))) return;
        }
        if (!this.overflowed) break;
      }
      this.replaying = false;
      if (this.runs === '*') {
        // Live from here, publication order is the order: no more need to remember runs.
        this.positions.clear();
      } else if (first) {
        await this.reportEndedRuns();
      }
      this.resolveReady();
    } catch (e: unknown) {
      this.fail(coerceError(e));
    }
  }

  /** Delivers replayed events, pausing while the consumer asks to; false once closed. */
  private async deliverPaced(events: readonly RunEvent[]): Promise<boolean> {
    for (const event of events) {
      // "*": an event at or below the client's id was seen before it subscribed.
      if (this.runs === '*' && event.id <= this.afterId) continue;
      this.deliver(event);
      if (this.closed) return false;
      const pending = this.handlers.wait?.();
      if (pending) {
        this.flush();
        await pending;
        if (this.closed) return false;
      }
    }
    this.flush();
    return true;
  }

  private async replayRun(run: string): Promise<void> {
    for (;;) {
      const page = await this.store.events(run, this.positions.get(run) ?? 0, this.config.pageSize);
      if (this.closed) return;
      if (!(await this.deliverPaced(page))) return;
      if (page.length < this.config.pageSize) return;
    }
  }

  private async replayAll(): Promise<void> {
    for (;;) {
      const page = await this.store.allEvents(this.lastId, this.config.pageSize);
      if (this.closed) return;
      if (!(await this.deliverPaced(page))) return;
      if (page.length < this.config.pageSize) return;
    }
  }

  /**
   * Reports runs that were final before the subscription and have nothing after its position:
   * their final event was delivered to an earlier connection. The status is read before the
   * tail, so a run a retry just reopened has events in the tail and is not reported.
   */
  private async reportEndedRuns(): Promise<void> {
    if (this.runs === '*') return;
    for (const run of this.runs) {
      if (this.ended.has(run)) continue;
      const status = await this.store.runStatus(run);
      if (!status || !FINAL_RUN_STATUSES.has(status)) continue;
      const tail = await this.store.events(run, this.positions.get(run) ?? 0, 1);
      if (this.closed) return;
      if (tail.length === 0 && !this.ended.has(run)) {
        this.ended.add(run);
        this.handlers.onEnd?.(run, status);
      }
    }
  }

  private fail(error: Error): void {
    if (this.closed) return;
    this.rejectReady(error);
    this.close();
    this.handlers.onError?.(error);
  }
}

/** {@link EventHub.follow}: a pull stream over subscriptions, resubscribing after an overflow. */
async function* follow(
  hub: EventHub,
  runId: string,
  after: number,
  options: FollowOptions,
): AsyncGenerator<FollowItem> {
  const highWater = options.highWater ?? 1000;
  const signal = options.signal;
  let position = after;
  while (!signal?.aborted) {
    let queue: FollowItem[] = [];
    let overflowed = false;
    let failure: Error | undefined;
    let wake: (() => void) | undefined;
    let drained: (() => void) | undefined;
    const poke = () => {
      wake?.();
      wake = undefined;
    };
    const sub = hub.subscribe(
      { runs: [runId], after: position },
      {
        onEvent(event) {
          if (overflowed) return;
          if (queue.length >= highWater) {
            // Stop taking more: the consumer drains what it has, then reads on from the store.
            overflowed = true;
            sub.close();
          } else queue.push({ type: 'event', event });
          poke();
        },
        onEnd(_run, status) {
          if (!overflowed) queue.push({ type: 'end', status });
          poke();
        },
        onError(error) {
          failure = error;
          poke();
        },
        // Replay waits for the consumer instead of overflowing its queue.
        wait: () =>
          queue.length >= highWater
            ? new Promise<void>((resolve) => (drained = resolve))
            : undefined,
      },
    );
    signal?.addEventListener('abort', poke);
    try {
      for (;;) {
        while (queue.length > 0) {
          const batch = queue;
          queue = [];
          drained?.();
          drained = undefined;
          for (const item of batch) {
            if (item.type === 'end') {
              yield item;
              return;
            }
            position = item.event.seq;
            yield item;
            if (signal?.aborted) return;
          }
        }
        if (failure) throw failure;
        if (overflowed || signal?.aborted) break;
        await new Promise<void>((resolve) => (wake = resolve));
      }
    } finally {
      signal?.removeEventListener('abort', poke);
      sub.close();
      drained?.();
    }
  }
}
