import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { EventListener } from '../src/orchestrator.ts';
import type { NewRunEvent, RunEvent, RunStatus } from '../src/engine/types.ts';
import type { Store } from '../src/store/index.ts';
import { createEventHub, type EventHub, type EventHubSource } from '../src/ws/events.ts';
import { memoryStore, op, planOf } from './helpers/engine.ts';

/**
 * A publisher like the engine's: commits events to the real store, then publishes them with their
 * ids, in commit order. `skip` commits an event without publishing it (a lost notification).
 */
class Publisher implements EventHubSource {
  private readonly listeners = new Set<EventListener>();
  private readonly seqs = new Map<string, number>();
  private chain: Promise<void> = Promise.resolve();

  constructor(readonly store: Store) {}

  subscribe(listener: EventListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async createRun(id: string): Promise<void> {
    const { workflow, plan } = planOf({ name: id, operations: [op('a', ['x'])] });
    await this.store.createRun({ id, name: id, workflow, plan });
    this.seqs.set(id, 0);
  }

  /**
   * Commits `count` output events (and a final one with `final`), then publishes them, unless
   * `hold` (the test publishes them later) or `skip` says so.
   */
  write(
    runId: string,
    count: number,
    options: { final?: RunStatus; skip?: (seq: number) => boolean; hold?: RunEvent[] } = {},
  ): Promise<void> {
    const commit = async () => {
      let seq = this.seqs.get(runId) ?? 0;
      const events: NewRunEvent[] = [];
      for (let i = 0; i < count; i++) {
        events.push({
          runId,
          seq: ++seq,
          type: 'task:output',
          at: new Date(),
          operationId: 'a',
          taskId: 'a:x',
          data: { stream: 'info', line: `line ${seq}` },
        });
      }
      if (options.final) {
        events.push({
          runId,
          seq: ++seq,
          type: `run:${options.final}` as 'run:succeeded',
          at: new Date(),
          operationId: null,
          taskId: null,
          data: {},
        });
      }
      this.seqs.set(runId, seq);
      const ids = await this.store.commit(runId, {
        events,
        ...(options.final ? { run: { status: options.final } } : {}),
      });
      for (const e of events) {
        if (options.skip?.(e.seq)) continue;
        const event = { ...e, id: ids.get(e.seq)! } as RunEvent;
        if (options.hold) options.hold.push(event);
        else this.publish(event);
      }
    };
    this.chain = this.chain.then(commit);
    return this.chain;
  }

  publish(event: RunEvent): void {
    for (const listener of this.listeners) listener(event);
  }

  lastSeq(runId: string): number {
    return this.seqs.get(runId) ?? 0;
  }
}

/** Collects what a subscription delivers. */
function collector() {
  const events: RunEvent[] = [];
  const ends: Array<{ runId: string; status: RunStatus; afterEvents: number }> = [];
  return {
    events,
    ends,
    handlers: {
      onEvent: (e: RunEvent) => events.push(e),
      onEnd: (runId: string, status: RunStatus) =>
        ends.push({ runId, status, afterEvents: events.length }),
    },
  };
}

const range = (from: number, to: number) =>
  Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

let store: Store;
beforeAll(async () => {
  store = await memoryStore();
});
afterAll(async () => {
  await store.close();
});

describe('EventHub', () => {
  describe('rounds of live events', () => {
    test('a busy run reaches many subscribers in rounds: one shared array a round, in order, the end on its own', async () => {
      const pub = new Publisher(store);
      await pub.createRun('rounds');
      // Three subscriptions × 50 ms: rounds at least 150 ms apart, so commits pile up.
      const hub = createEventHub(pub, { roundCostMs: 50, maxRoundGapMs: 150 });
      const subs = [0, 1, 2].map(() => {
        const c = collector();
        const rounds: Array<readonly RunEvent[]> = [];
        const sub = hub.subscribe(
          { runs: ['rounds'] },
          {
            ...c.handlers,
            onEvents: (events) => {
              rounds.push(events);
              c.events.push(...events);
            },
          },
        );
        return { c, rounds, sub };
      });
      await Promise.all(subs.map((s) => s.sub.ready));
      for (let i = 0; i < 20; i++) await pub.write('rounds', 1);
      await pub.write('rounds', 0, { final: 'succeeded' });
      for (const { c, rounds } of subs) {
        await expect.poll(() => c.ends.length, { timeout: 10_000 }).toBe(1);
        expect(c.events.map((e) => e.seq)).toEqual(range(1, 21));
        expect(c.ends[0]).toMatchObject({ status: 'succeeded', afterEvents: 21 });
        expect(rounds.length).toBeLessThan(20);
        // The final event came through onEvent, so onEnd follows it.
        expect(rounds.flat().map((e) => e.seq)).not.toContain(21);
      }
      // Every subscriber got the very same arrays: what is sent is built once a round.
      subs[0]!.rounds.forEach((round, i) => {
        expect(subs[1]!.rounds[i]).toBe(round);
        expect(subs[2]!.rounds[i]).toBe(round);
      });
      hub.close();
    });
  });

  describe('replay then live', () => {
    test('subscriptions started at random moments get every event after their position once, in order', async () => {
      const pub = new Publisher(store);
      await pub.createRun('busy');
      // Tiny pages and buffer: replay takes many queries and the buffer overflows on the way.
      const hub = createEventHub(pub, { pageSize: 25, maxBuffered: 20 });
      const subs: Array<{ after: number; c: ReturnType<typeof collector> }> = [];
      const writing = (async () => {
        for (let i = 0; i < 80; i++) await pub.write('busy', 1 + (i % 13));
        await pub.write('busy', 0, { final: 'succeeded' });
      })();
      let seed = 7;
      const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
      for (let i = 0; i < 20; i++) {
        await pause(rand() * 40);
        const after = Math.floor(rand() * pub.lastSeq('busy'));
        const c = collector();
        hub.subscribe({ runs: ['busy'], after }, c.handlers);
        subs.push({ after, c });
      }
      await writing;
      const last = pub.lastSeq('busy');
      for (const { after, c } of subs) {
        await expect.poll(() => c.ends.length, { timeout: 10_000 }).toBe(1);
        expect(c.events.map((e) => e.seq)).toEqual(range(after + 1, last));
        expect(c.ends[0]).toEqual({
          runId: 'busy',
          status: 'succeeded',
          afterEvents: c.events.length,
        });
      }
      const logged = await store.events('busy');
      expect(subs[0]!.c.events).toEqual(logged.slice(subs[0]!.after));
      hub.close();
    });

    test('"*" gets every run’s events after the global id, each once', async () => {
      const pub = new Publisher(store);
      await pub.createRun('all-a');
      await pub.createRun('all-b');
      await pub.write('all-a', 5);
      const [before] = (await store.events('all-a')).slice(-1);
      const hub = createEventHub(pub, { pageSize: 3, maxBuffered: 4 });
      const c = collector();
      const writing = (async () => {
        for (let i = 0; i < 40; i++) await pub.write(i % 2 ? 'all-a' : 'all-b', 1 + (i % 5));
      })();
      await pause(5);
      const sub = hub.subscribe({ runs: '*', after: before!.id }, c.handlers);
      await writing;
      await sub.ready;
      const expected = (await store.allEvents(before!.id)).filter((e) =>
        ['all-a', 'all-b'].includes(e.runId),
      );
      await expect.poll(() => c.events.length).toBe(expected.length);
      expect(c.events.map((e) => e.id)).toEqual(expected.map((e) => e.id));
      expect(c.ends).toEqual([]);
      hub.close();
    });

    test('several runs: each run in seq order from its own position', async () => {
      const pub = new Publisher(store);
      await pub.createRun('multi-a');
      await pub.createRun('multi-b');
      await pub.write('multi-a', 10);
      await pub.write('multi-b', 10);
      const hub = createEventHub(pub);
      const c = collector();
      hub.subscribe(
        { runs: ['multi-a', 'multi-b'], after: { 'multi-a': 4, 'multi-b': 8 } },
        c.handlers,
      );
      await pub.write('multi-b', 3, { final: 'failed' });
      await pub.write('multi-a', 2, { final: 'succeeded' });
      await expect.poll(() => c.ends.length).toBe(2);
      const seqs = (run: string) => c.events.filter((e) => e.runId === run).map((e) => e.seq);
      expect(seqs('multi-a')).toEqual(range(5, 13));
      expect(seqs('multi-b')).toEqual(range(9, 14));
      expect(c.ends.map((e) => [e.runId, e.status]).sort()).toEqual([
        ['multi-a', 'succeeded'],
        ['multi-b', 'failed'],
      ]);
      hub.close();
    });
  });

  describe('the seam between replay and live', () => {
    /** A source whose reads return their result only once `open()` is called. */
    function gated(pub: Publisher) {
      let open!: () => void;
      const gate = new Promise<void>((resolve) => (open = resolve));
      let reads = 0;
      const source: EventHubSource = {
        subscribe: (listener) => pub.subscribe(listener),
        store: {
          runStatus: (id) => store.runStatus(id),
          events: async (...args) => {
            const result = await store.events(...args);
            if (reads++ === 0) await gate;
            return result;
          },
          allEvents: async (...args) => {
            const result = await store.allEvents(...args);
            if (reads++ === 0) await gate;
            return result;
          },
        },
      };
      return { source, open, reads: () => reads };
    }

    test.each(['run', '*'] as const)(
      '%s: events committed after the replay query read, published during replay, come from the buffer',
      async (kind) => {
        const pub = new Publisher(store);
        const runId = `seam-late-${kind === '*' ? 'all' : 'run'}`;
        await pub.createRun(runId);
        await pub.write(runId, 3);
        const [start] = await store.events(runId, 0, 1);
        const gate = gated(pub);
        const hub = createEventHub(gate.source);
        const c = collector();
        const sub = hub.subscribe(
          kind === '*' ? { runs: '*', after: start!.id - 1 } : { runs: [runId] },
          c.handlers,
        );
        await expect.poll(() => gate.reads()).toBe(1);
        // The query has its result (3 events); these come after it, and nothing after them.
        await pub.write(runId, 4);
        gate.open();
        await sub.ready;
        expect(c.events.filter((e) => e.runId === runId).map((e) => e.seq)).toEqual(range(1, 7));
        hub.close();
      },
    );

    test.each(['run', '*'] as const)(
      '%s: events both read by the replay and published during it are delivered once',
      async (kind) => {
        const pub = new Publisher(store);
        const runId = `seam-both-${kind === '*' ? 'all' : 'run'}`;
        await pub.createRun(runId);
        const held: RunEvent[] = [];
        // Committed before the query, published only while it runs: the engine's window
        // between a commit and its notification.
        await pub.write(runId, 5, { hold: held });
        const gate = gated(pub);
        const hub = createEventHub(gate.source);
        const c = collector();
        const sub = hub.subscribe(
          kind === '*' ? { runs: '*', after: held[0]!.id - 1 } : { runs: [runId] },
          c.handlers,
        );
        await expect.poll(() => gate.reads()).toBe(1);
        for (const event of held) pub.publish(event);
        gate.open();
        await sub.ready;
        await pub.write(runId, 2);
        const ofRun = () => c.events.filter((e) => e.runId === runId);
        await expect.poll(() => ofRun().length).toBe(7);
        expect(ofRun().map((e) => e.seq)).toEqual(range(1, 7));
        hub.close();
      },
    );
  });

  describe('many subscribers', () => {
    test('subscriptions made together share one read of the log', async () => {
      const pub = new Publisher(store);
      await pub.createRun('crowd');
      await pub.write('crowd', 30, { final: 'succeeded' });
      let reads = 0;
      const hub = createEventHub({
        subscribe: (l) => pub.subscribe(l),
        store: {
          runStatus: (id) => store.runStatus(id),
          allEvents: (...args) => store.allEvents(...args),
          events: (...args) => {
            reads++;
            return store.events(...args);
          },
        },
      });
      const crowd = Array.from({ length: 50 }, () => collector());
      const subs = crowd.map((c) => hub.subscribe({ runs: ['crowd'] }, c.handlers));
      await Promise.all(subs.map((sub) => sub.ready));
      // One read for all 50 (the end came with the replayed final event: no probe of the tail).
      expect(reads).toBe(1);
      for (const c of crowd) expect(c.events.map((e) => e.seq)).toEqual(range(1, 31));
      hub.close();
    });
  });

  describe('ends', () => {
    test('a run that ended before the subscription, with nothing after the position, ends at once', async () => {
      const pub = new Publisher(store);
      await pub.createRun('ended');
      await pub.write('ended', 3, { final: 'cancelled' });
      const hub = createEventHub(pub);
      const c = collector();
      const sub = hub.subscribe({ runs: ['ended'], after: 4 }, c.handlers);
      await sub.ready;
      expect(c.events).toEqual([]);
      expect(c.ends).toEqual([{ runId: 'ended', status: 'cancelled', afterEvents: 0 }]);
      hub.close();
    });

    test('a run reopened after its end ends again after its new final event', async () => {
      const pub = new Publisher(store);
      await pub.createRun('reopened');
      await pub.write('reopened', 2, { final: 'failed' });
      const hub = createEventHub(pub);
      const c = collector();
      await hub.subscribe({ runs: ['reopened'] }, c.handlers).ready;
      expect(c.ends.map((e) => e.status)).toEqual(['failed']);
      await pub.write('reopened', 2, { final: 'succeeded' });
      await expect.poll(() => c.ends.length).toBe(2);
      expect(c.ends[1]).toEqual({ runId: 'reopened', status: 'succeeded', afterEvents: 6 });
      hub.close();
    });
  });

  describe('lost notifications', () => {
    test('a run subscription fills a gap in live events from the store', async () => {
      const pub = new Publisher(store);
      await pub.createRun('gappy');
      const hub = createEventHub(pub);
      const c = collector();
      await hub.subscribe({ runs: ['gappy'] }, c.handlers).ready;
      await pub.write('gappy', 20, { skip: (seq) => seq % 4 === 0 });
      await pub.write('gappy', 0, { final: 'succeeded', skip: () => false });
      await expect.poll(() => c.ends.length).toBe(1);
      expect(c.events.map((e) => e.seq)).toEqual(range(1, 21));
      hub.close();
    });
  });

  describe('follow', () => {
    test('a consumer slower than the run gets every event and the end, with a bounded queue', async () => {
      const pub = new Publisher(store);
      await pub.createRun('slow-reader');
      const hub = createEventHub(pub);
      const writing = (async () => {
        for (let i = 0; i < 30; i++) await pub.write('slow-reader', 10);
        await pub.write('slow-reader', 0, { final: 'succeeded' });
      })();
      const seen: number[] = [];
      let end: RunStatus | undefined;
      for await (const item of hub.follow('slow-reader', 0, { highWater: 5 })) {
        if (item.type === 'end') end = item.status;
        else seen.push(item.event.seq);
        if (seen.length % 20 === 0) await pause(5);
      }
      await writing;
      expect(seen).toEqual(range(1, 301));
      expect(end).toBe('succeeded');
      expect(hub.size).toBe(0);
      hub.close();
    });

    test('aborting the signal ends the stream and lets go of the subscription', async () => {
      const pub = new Publisher(store);
      await pub.createRun('aborted');
      await pub.write('aborted', 3);
      const hub = createEventHub(pub);
      const abort = new AbortController();
      const seen: number[] = [];
      for await (const item of hub.follow('aborted', 0, { signal: abort.signal })) {
        if (item.type === 'event') seen.push(item.event.seq);
        if (seen.length === 3) setTimeout(() => abort.abort(), 5);
      }
      expect(seen).toEqual([1, 2, 3]);
      expect(hub.size).toBe(0);
      hub.close();
    });
  });

  describe('lifecycle', () => {
    test('closing subscriptions and the hub unregisters them', async () => {
      const pub = new Publisher(store);
      await pub.createRun('life');
      const hub: EventHub = createEventHub(pub);
      const a = hub.subscribe({ runs: ['life'] }, { onEvent: () => {} });
      const b = hub.subscribe({ runs: '*' }, { onEvent: () => {} });
      expect(hub.size).toBe(2);
      a.close();
      a.close();
      expect(hub.size).toBe(1);
      hub.close();
      expect(hub.size).toBe(0);
      await b.ready;
    });

    test('a failing store rejects ready and reports the error', async () => {
      const pub = new Publisher(store);
      const broken: EventHubSource = {
        subscribe: (l) => pub.subscribe(l),
        store: {
          ...store,
          events: () => Promise.reject(new Error('database is gone')),
          allEvents: store.allEvents,
          runStatus: store.runStatus,
        },
      };
      const hub = createEventHub(broken);
      const errors: string[] = [];
      const sub = hub.subscribe(
        { runs: ['x'] },
        { onEvent: () => {}, onError: (e) => errors.push(e.message) },
      );
      await expect(sub.ready).rejects.toThrow('database is gone');
      expect(errors).toEqual(['database is gone']);
      expect(hub.size).toBe(0);
      hub.close();
    });
  });
});
