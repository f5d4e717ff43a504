import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { AddressInfo, Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, onTestFailed, test } from 'vitest';
import { WebSocket } from 'ws';
import { toWireEvent, type WireEvent } from '../src/ws/protocol.ts';
import { attachWebSocket } from '../src/ws/server.ts';
import {
  TOKENS,
  TestClient,
  busyWorkflow,
  startStreamServer,
  until,
  type StreamServer,
} from './helpers/streams.ts';

const range = (from: number, to: number) =>
  Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);
const pause = (ms: number) => new Promise((r) => setTimeout(r, ms));

const isType =
  <T extends string>(type: T) =>
  (m: { type: string }): boolean =>
    m.type === type;

/** The wire form of a run's whole log, as the store has it. */
async function logOf(server: StreamServer, runId: string): Promise<WireEvent[]> {
  return (await server.orchestrator.store.events(runId)).map(toWireEvent);
}

let server: StreamServer;
/** A run that has ended, shared by the tests that replay. */
let ended: { id: string; log: WireEvent[] };

beforeAll(async () => {
  server = await startStreamServer();
  const run = await server.startRun(busyWorkflow('ended', 5, 2));
  expect(await run.done).toBe('succeeded');
  ended = { id: run.id, log: await logOf(server, run.id) };
});
afterAll(async () => {
  await server?.close();
});

describe('/ws', () => {
  describe('subscribe', () => {
    test('one run: its log from the start, live, in order, then end', async () => {
      const run = await server.startRun(busyWorkflow('one', 8, 3, { sleep: '20ms' }));
      const client = new TestClient(server.wsUrl, { token: TOKENS.viewer });
      await client.opened;
      client.send({ type: 'subscribe', runs: [run.id] });
      const end = await client.waitFor(isType('end'));
      expect(end).toEqual({ type: 'end', run_id: run.id, status: 'succeeded' });
      expect(client.messages[0]).toEqual({
        type: 'subscribed',
        runs: [run.id],
        after: { [run.id]: 0 },
      });
      expect(client.events).toEqual(await logOf(server, run.id));
      expect(client.events.at(-1)?.type).toBe('run:succeeded');
      await client.close();
    });

    test('several runs: each from its own seq, each ends', async () => {
      const a = await server.startRun(busyWorkflow('several-a', 4, 2, { sleep: '10ms' }));
      const b = await server.startRun(busyWorkflow('several-b', 4, 2, { sleep: '10ms' }));
      const client = new TestClient(server.wsUrl, { token: TOKENS.operator });
      await client.opened;
      client.send({ type: 'subscribe', runs: [a.id, b.id, ended.id], after: { [a.id]: 3 } });
      await until(() => client.messages.filter((m) => m.type === 'end').length === 3);
      const ofRun = (id: string) => client.events.filter((e) => e.run_id === id);
      expect(ofRun(a.id)).toEqual((await logOf(server, a.id)).slice(3));
      expect(ofRun(b.id)).toEqual(await logOf(server, b.id));
      expect(ofRun(ended.id)).toEqual(ended.log);
      await client.close();
    });

    test('every run ("*"): all events after a global id, in order, once', async () => {
      const [latest] = (await server.orchestrator.store.allEvents(0, 100_000)).slice(-1);
      const client = new TestClient(server.wsUrl, { token: TOKENS.viewer });
      await client.opened;
      client.send({ type: 'subscribe', runs: '*', after: latest!.id });
      await client.waitFor(isType('subscribed'));
      const a = await server.startRun(busyWorkflow('star-a', 3, 2));
      const b = await server.startRun(busyWorkflow('star-b', 3, 2));
      await Promise.all([a.done, b.done]);
      const expected = (await server.orchestrator.store.allEvents(latest!.id)).map(toWireEvent);
      await until(() => client.events.length >= expected.length);
      await pause(50);
      expect(client.events).toEqual(expected);
      expect(new Set(client.events.map((e) => e.run_id))).toEqual(new Set([a.id, b.id]));
      await client.close();
    });

    test('an ended run with nothing after the position: subscribed, then end, no event', async () => {
      const client = new TestClient(server.wsUrl, { token: TOKENS.viewer });
      await client.opened;
      client.send({ type: 'subscribe', runs: [ended.id], after: ended.log.length });
      await client.waitFor(isType('end'));
      expect(client.messages.map((m) => m.type)).toEqual(['subscribed', 'end']);
      await client.close();
    });

    test('unsubscribe stops a run’s events', async () => {
      const run = await server.startRun(busyWorkflow('unsub', 6, 2, { sleep: '50ms' }));
      const client = new TestClient(server.wsUrl, { token: TOKENS.viewer });
      await client.opened;
      client.send({ type: 'subscribe', runs: [run.id] });
      await client.waitFor(isType('event'));
      client.send({ type: 'unsubscribe', runs: [run.id] });
      await client.waitFor(isType('unsubscribed'));
      const received = client.events.length;
      await run.done;
      await pause(100);
      expect(client.events.length).toBe(received);
      expect((await logOf(server, run.id)).length).toBeGreaterThan(received);
      expect(client.messages.some((m) => m.type === 'end')).toBe(false);
      await client.close();
    });
  });

  describe('reconnect', () => {
    test('a client dropped at random moments resumes from its last seq: every event once, in order', async () => {
      const run = await server.startRun(busyWorkflow('reconnect', 48, 4, { sleep: '250ms' }));
      const received: WireEvent[] = [];
      let seed = 11;
      const rand = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
      let drops = 0;
      let dropsWhileRunning = 0;
      let finished = false;
      void run.done.then(() => (finished = true));
      for (;;) {
        const client = new TestClient(server.wsUrl, { token: TOKENS.viewer });
        await client.opened;
        // Cut the connection without a close handshake, as a network failure would: after a
        // random number of events (replayed or live), or a random time, whichever comes first.
        const cut = () => client.socket.terminate();
        const enough = 1 + Math.floor(rand() * 40);
        let timer: NodeJS.Timeout | undefined;
        if (drops < 12) {
          client.socket.on('message', () => client.events.length >= enough && cut());
          timer = setTimeout(cut, 20 + rand() * 150);
        }
        client.send({ type: 'subscribe', runs: [run.id], after: received.at(-1)?.seq ?? 0 });
        const outcome = await Promise.race([
          client.waitFor(isType('end'), 60_000).then(
            () => 'end' as const,
            () => 'dropped' as const,
          ),
          client.closed.then(() => 'dropped' as const),
        ]);
        clearTimeout(timer);
        received.push(...client.events);
        if (outcome === 'end') {
          await client.close();
          break;
        }
        drops++;
        if (!finished) dropsWhileRunning++;
      }
      expect(drops).toBeGreaterThanOrEqual(3);
      expect(dropsWhileRunning).toBeGreaterThanOrEqual(2);
      const log = await logOf(server, run.id);
      expect(received.map((e) => e.seq)).toEqual(range(1, log.length));
      expect(received).toEqual(log);
    });
  });

  describe('auth', () => {
    test.each([
      ['no token', {}],
      ['an unknown token', { token: 'nope' }],
      ['an unknown token in the query', { token: 'nope', viaQuery: true }],
    ])('%s: closed with 4401', async (_name, options) => {
      const client = new TestClient(server.wsUrl, options);
      const { code, reason } = await client.closed;
      expect(code).toBe(4401);
      expect(reason).toMatch(/Bearer/);
    });

    test('an agent token: closed with 4403', async () => {
      const client = new TestClient(server.wsUrl, { token: TOKENS.agent });
      const { code, reason } = await client.closed;
      expect(code).toBe(4403);
      expect(reason).toMatch(/viewer role/);
    });

    test('a viewer token in the query string is accepted', async () => {
      const client = new TestClient(server.wsUrl, { token: TOKENS.viewer, viaQuery: true });
      await client.opened;
      client.send({ type: 'subscribe', runs: [ended.id] });
      await client.waitFor(isType('end'));
      expect(client.events).toEqual(ended.log);
      await client.close();
    });

    test('other paths are not upgraded', async () => {
      const socket = new WebSocket(server.wsUrl.replace('/ws', '/elsewhere'), {
        headers: { authorization: `Bearer ${TOKENS.viewer}` },
      });
      const status = await new Promise<number>((resolve) => {
        socket.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
        socket.on('error', () => resolve(-1));
      });
      expect(status).toBe(404);
    });
  });

  describe('bad messages', () => {
    test('each is answered with an error naming what is wrong, and the connection goes on', async () => {
      const client = new TestClient(server.wsUrl, { token: TOKENS.viewer });
      await client.opened;
      const errorAfter = async (message: unknown) => {
        const before = client.messages.length;
        client.send(message);
        await until(() => client.messages.length > before);
        return client.messages[before]!;
      };
      expect(await errorAfter('{not json')).toMatchObject({
        type: 'error',
        code: 'API4001',
        detail: expect.stringMatching(/not JSON/),
      });
      const wrongRuns = await errorAfter({ type: 'subscribe', runs: 5 });
      expect(wrongRuns).toMatchObject({ type: 'error', code: 'API4001' });
      expect(wrongRuns.type === 'error' && wrongRuns.problems?.[0]?.path).toBe('runs');
      expect(await errorAfter({ type: 'watch', runs: ['x'] })).toMatchObject({
        type: 'error',
        code: 'API4001',
        detail: expect.stringMatching(/type/),
      });
      const starMap = await errorAfter({ type: 'subscribe', runs: '*', after: { x: 1 } });
      expect(starMap.type === 'error' && starMap.problems?.[0]?.path).toBe('after');
      expect(await errorAfter({ type: 'subscribe', runs: ['x'], after: -1 })).toMatchObject({
        type: 'error',
        code: 'API4001',
      });
      expect(await errorAfter({ type: 'subscribe', runs: [ended.id], extra: true })).toMatchObject({
        type: 'error',
        code: 'API4001',
      });
      expect(await errorAfter({ type: 'subscribe', runs: [ended.id, 'no-such-run'] })).toEqual({
        type: 'error',
        code: 'ORC1001',
        detail: 'no run with id "no-such-run"; nothing was subscribed',
      });
      const binary = client.messages.length;
      client.socket.send(Buffer.from([1, 2, 3]));
      await until(() => client.messages.length > binary);
      expect(client.messages[binary]).toMatchObject({ type: 'error', code: 'API4001' });

      client.send({ type: 'subscribe', runs: [ended.id] });
      await client.waitFor(isType('end'));
      expect(client.events).toEqual(ended.log);
      expect(client.socket.readyState).toBe(WebSocket.OPEN);
      await client.close();
    });

    test('a message over the size limit closes the connection with 1009', async () => {
      const client = new TestClient(server.wsUrl, { token: TOKENS.viewer });
      await client.opened;
      client.send({ type: 'subscribe', runs: ['x'.repeat(100 * 1024)] });
      expect((await client.closed).code).toBe(1009);
      await until(() => server.ws.clients === 0);
    });
  });
});

describe('/ws liveness and back-pressure', () => {
  let strict: StreamServer;
  let big: { id: string; log: WireEvent[] } | undefined;
  const BOUND = 64 * 1024;

  beforeAll(async () => {
    strict = await startStreamServer({
      ws: { maxBufferedBytes: BOUND, slowGraceMs: 300, closeGraceMs: 10_000 },
      // Loopback TCP may buffer all the test sends for a reader that reads nothing (up to tens
      // of MB with autotuning); a Unix socket's few hundred KB make the backlog show everywhere.
      unixSocket: join(tmpdir(), `muster-ws-${process.pid}-${Date.now()}.sock`),
    });
  });
  afterAll(async () => {
    await strict?.close();
  });

  test('a client too slow for live events is closed with 1013 and let go of', async () => {
    // Which wait it was in, for the message if it fails (twice it ran past the test's timeout in a
    // full suite, and passes alone and under CPU hogs).
    let step = 'subscribing';
    const [latest] = (await strict.orchestrator.store.allEvents(0, 100_000)).slice(-1);
    const hubBefore = strict.hub.size;
    const slow = new TestClient(strict.wsUrl, { token: TOKENS.viewer });
    const fast = new TestClient(strict.wsUrl, { token: TOKENS.viewer });
    await Promise.all([slow.opened, fast.opened]);
    for (const client of [slow, fast]) {
      client.send({ type: 'subscribe', runs: '*', after: latest?.id ?? 0 });
      await client.waitFor(isType('subscribed'));
    }
    // It failed once, on a machine running two full suites, before its message was kept: if it
    // fails again, say where each side was.
    onTestFailed(() => {
      console.error('slow-client test state', {
        step,
        hubSize: strict.hub.size,
        hubBefore,
        clients: strict.ws.clients,
        bufferedBytes: strict.ws.bufferedBytes,
        slowEvents: slow.events.length,
        fastEvents: fast.events.length,
        slowState: slow.socket.readyState,
      });
    });
    const raw = (slow.socket as unknown as { _socket: Socket })._socket;
    raw.pause();
    step = 'running the big run';
    // About 6 MB of output: far more than the socket buffers hold for a client that reads nothing.
    const run = await strict.startRun(busyWorkflow('big', 6, 5, { lineBytes: 200_000 }));
    expect(await run.done).toBe('succeeded');
    big = { id: run.id, log: await logOf(strict, run.id) };
    // The watchdog finds the slow client stalled past the grace period; the fast one reads on.
    await pause(400);
    step = 'running the nudge run';
    const nudge = await strict.startRun(busyWorkflow('nudge', 1, 1));
    await nudge.done;
    step = 'the fast client reading both runs';
    await until(
      () => fast.events.at(-1)?.run_id === nudge.id,
      20_000,
      'the nudge run’s last event',
    );
    expect(fast.events.filter((e) => e.run_id === big!.id)).toEqual(big.log);
    // The server let go of the slow client's subscription at once.
    step = 'dropping the slow client';
    await until(() => strict.hub.size === hubBefore + 1, 10_000, 'the slow client to be dropped');
    // Its backlog is still held (bounded: a second of live events), until it reads or is cut.
    expect(strict.ws.bufferedBytes).toBeGreaterThan(BOUND);
    raw.resume();
    step = 'closing the slow client';
    const { code, reason } = await slow.closed;
    expect(code).toBe(1013);
    expect(reason).toMatch(/last seq/);
    // What it got is a prefix of what the fast client got, in order: it can resume from there.
    expect(slow.events.length).toBeGreaterThan(0);
    expect(slow.events).toEqual(fast.events.slice(0, slow.events.length));
    step = 'letting go of the slow client';
    await until(() => strict.ws.clients === 1);
    expect(strict.ws.bufferedBytes).toBe(0);
    await fast.close();
    await until(() => strict.hub.size === hubBefore);
  }, 60_000);

  test('a long log is replayed at the client’s pace: a reader that stalls is not dropped', async () => {
    if (!big) throw new Error('needs the run of the previous test');
    const stalled = new TestClient(strict.wsUrl, { token: TOKENS.viewer });
    const eager = new TestClient(strict.wsUrl, { token: TOKENS.viewer });
    await Promise.all([stalled.opened, eager.opened]);
    const raw = (stalled.socket as unknown as { _socket: Socket })._socket;
    raw.pause();
    stalled.send({ type: 'subscribe', runs: [big.id] });
    eager.send({ type: 'subscribe', runs: [big.id] });
    await eager.waitFor(isType('end'), 30_000);
    expect(eager.events).toEqual(big.log);
    await pause(300);
    expect(strict.ws.bufferedBytes).toBeLessThanOrEqual(BOUND + 210_000);
    raw.resume();
    await stalled.waitFor(isType('end'), 30_000);
    expect(stalled.events).toEqual(big.log);
    expect(stalled.socket.readyState).toBe(WebSocket.OPEN);
    await Promise.all([stalled.close(), eager.close()]);
  });

  test('a client past the backlog cap is closed at once, whatever the grace period', async () => {
    // A second endpoint on the same orchestrator whose grace never runs out: only the cap acts.
    const socketPath = join(tmpdir(), `muster-ws-cap-${process.pid}-${Date.now()}.sock`);
    const http = createServer();
    await new Promise<void>((resolve) => http.listen(socketPath, resolve));
    const CAP = 1024 * 1024;
    const endpoint = attachWebSocket(http, {
      orchestrator: strict.orchestrator,
      auth: strict.auth,
      hub: strict.hub,
      maxBufferedBytes: BOUND,
      slowGraceMs: 600_000,
      maxBacklogBytes: CAP,
      closeGraceMs: 10_000,
    });
    const hubBefore = strict.hub.size;
    const client = new TestClient(`ws+unix://${socketPath}:/ws`, { token: TOKENS.viewer });
    await client.opened;
    client.send({ type: 'subscribe', runs: '*', after: Number.MAX_SAFE_INTEGER });
    await client.waitFor(isType('subscribed'));
    const raw = (client.socket as unknown as { _socket: Socket })._socket;
    raw.pause();
    const run = await strict.startRun(busyWorkflow('capped', 4, 5, { lineBytes: 200_000 }));
    expect(await run.done).toBe('succeeded');
    await until(() => strict.hub.size === hubBefore, 10_000, 'the capped client to be dropped');
    // Held: what was queued before the cap was found, at most the cap and one commit more.
    expect(endpoint.bufferedBytes).toBeGreaterThan(CAP);
    expect(endpoint.bufferedBytes).toBeLessThan(CAP + 2_000_000);
    raw.resume();
    expect((await client.closed).code).toBe(1013);
    await endpoint.close();
    await new Promise((resolve) => http.close(resolve));
  });

  test('a client that answers no ping is dropped after two; one that answers stays', async () => {
    let gauge = 0;
    // A second endpoint on the same orchestrator, pinging every 100 ms.
    const http = createServer();
    await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
    const endpoint = attachWebSocket(http, {
      orchestrator: strict.orchestrator,
      auth: strict.auth,
      hub: strict.hub,
      pingIntervalMs: 100,
      metrics: { wsClients: { inc: () => gauge++, dec: () => gauge-- } },
    });
    const url = `ws://127.0.0.1:${(http.address() as AddressInfo).port}/ws`;
    const silent = new TestClient(url, { token: TOKENS.viewer, autoPong: false });
    const polite = new TestClient(url, { token: TOKENS.viewer });
    await Promise.all([silent.opened, polite.opened]);
    expect(gauge).toBe(2);
    const started = Date.now();
    const { code } = await silent.closed;
    expect(code).toBe(1006);
    expect(Date.now() - started).toBeGreaterThanOrEqual(150);
    await pause(400);
    expect(polite.socket.readyState).toBe(WebSocket.OPEN);
    expect(endpoint.clients).toBe(1);
    await polite.close();
    await until(() => gauge === 0, 5000, 'the clients gauge to reach 0');
    await endpoint.close();
    await new Promise((resolve) => http.close(resolve));
  });
});
