import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { toWireEvent, type WireEvent } from '../src/ws/protocol.ts';
import {
  TOKENS,
  busyWorkflow,
  readSse,
  startStreamServer,
  until,
  type StreamServer,
} from './helpers/streams.ts';

const range = (from: number, to: number) =>
  Array.from({ length: Math.max(0, to - from + 1) }, (_, i) => from + i);

let server: StreamServer;
/** A run that has ended, shared by the tests that read a finished log. */
let ended: { id: string; log: WireEvent[] };

async function logOf(runId: string): Promise<WireEvent[]> {
  return (await server.orchestrator.store.events(runId)).map(toWireEvent);
}

function get(path: string, headers: Record<string, string> = {}, signal?: AbortSignal) {
  return fetch(`${server.url}${path}`, {
    headers: { authorization: `Bearer ${TOKENS.viewer}`, ...headers },
    ...(signal ? { signal } : {}),
  });
}

/** Reads an SSE response to its end: the events (with their ids) and the end message. */
async function readAll(response: Response) {
  const events: Array<{ id: string | undefined; event: string | undefined; data: WireEvent }> = [];
  let end: unknown;
  const comments: string[] = [];
  for await (const message of readSse(response)) {
    if ('comment' in message) comments.push(message.comment);
    else if (message.event === 'end') end = JSON.parse(message.data);
    else events.push({ id: message.id, event: message.event, data: JSON.parse(message.data) });
  }
  return { events, end, comments };
}

beforeAll(async () => {
  server = await startStreamServer({ heartbeatMs: 50 });
  const run = await server.startRun(busyWorkflow('logs-ended', 5, 3));
  expect(await run.done).toBe('succeeded');
  ended = { id: run.id, log: await logOf(run.id) };
});
afterAll(async () => {
  await server?.close();
});

describe('GET /workflows/:id/logs', () => {
  describe('JSON pages', () => {
    test('the whole log, then next_after null', async () => {
      const res = await get(`/workflows/${ended.id}/logs`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/application\/json/);
      expect(await res.json()).toEqual({ items: ended.log, next_after: null });
    });

    test('after and limit page through the log without a gap or an overlap', async () => {
      const pages: WireEvent[][] = [];
      let after: number | null = 2;
      while (after !== null) {
        const res = await get(`/workflows/${ended.id}/logs?after=${after}&limit=4`);
        const page = (await res.json()) as { items: WireEvent[]; next_after: number | null };
        pages.push(page.items);
        after = page.next_after;
        expect(page.items.length).toBeLessThanOrEqual(4);
      }
      expect(pages.flat()).toEqual(ended.log.slice(2));
      expect(pages[0]!.map((e) => e.seq)).toEqual([3, 4, 5, 6]);
    });
  });

  describe('errors', () => {
    test('an unknown run is a 404 problem', async () => {
      const res = await get('/workflows/no-such-run/logs');
      expect(res.status).toBe(404);
      expect(res.headers.get('content-type')).toMatch(/application\/problem\+json/);
      expect(await res.json()).toMatchObject({
        status: 404,
        code: 'ORC1001',
        detail: expect.stringMatching(/no-such-run/),
      });
    });

    test.each([
      ['after=-1', 'after'],
      ['after=abc', 'after'],
      ['limit=0', 'limit'],
      ['limit=10001', 'limit'],
      ['follow=maybe', 'follow'],
    ])('?%s is a 400 naming the parameter', async (query, name) => {
      const res = await get(`/workflows/${ended.id}/logs?${query}`);
      expect(res.status).toBe(400);
      const body = (await res.json()) as {
        code: string;
        problems: Array<{ path: string }>;
        detail: string;
      };
      expect(body.code).toBe('API4001');
      expect(body.problems.map((p) => p.path)).toEqual([name]);
      expect(body.detail).toContain(`?${name}=`);
    });

    test('a bad Last-Event-ID is a 400', async () => {
      const res = await get(`/workflows/${ended.id}/logs?follow=1`, { 'last-event-id': 'x1' });
      expect(res.status).toBe(400);
      expect(await res.json()).toMatchObject({
        code: 'API4001',
        detail: expect.stringMatching(/Last-Event-ID/),
      });
    });

    test('no token is a 401, an agent token a 403', async () => {
      const none = await fetch(`${server.url}/workflows/${ended.id}/logs`);
      expect(none.status).toBe(401);
      expect(await none.json()).toMatchObject({ code: 'API4010' });
      const agent = await get(`/workflows/${ended.id}/logs`, {
        authorization: `Bearer ${TOKENS.agent}`,
      });
      expect(agent.status).toBe(403);
      expect(await agent.json()).toMatchObject({ code: 'API4030' });
    });
  });

  describe('SSE (?follow=1)', () => {
    test('streams a live run in order (id = seq, event = type), then end, then closes', async () => {
      const run = await server.startRun(busyWorkflow('sse-live', 10, 2, { sleep: '100ms' }));
      const res = await get(`/workflows/${run.id}/logs?follow=1`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toMatch(/text\/event-stream/);
      const { events, end } = await readAll(res);
      const log = await logOf(run.id);
      expect(events.map((e) => e.data)).toEqual(log);
      expect(events.map((e) => e.id)).toEqual(log.map((e) => String(e.seq)));
      expect(events.map((e) => e.event)).toEqual(log.map((e) => e.type));
      expect(end).toEqual({ run_id: run.id, status: 'succeeded' });
    });

    test('resumes with Last-Event-ID after a dropped connection: every event once', async () => {
      const run = await server.startRun(busyWorkflow('sse-resume', 24, 3, { sleep: '150ms' }));
      const received: Array<{ id: string | undefined; data: WireEvent }> = [];
      let finished = false;
      for (let attempt = 0; !finished; attempt++) {
        const abort = new AbortController();
        const last = received.at(-1)?.id;
        const res = await get(
          `/workflows/${run.id}/logs?follow=1`,
          last ? { 'last-event-id': last } : {},
          abort.signal,
        );
        expect(res.status).toBe(200);
        const take = attempt < 3 ? 7 + attempt * 11 : Number.POSITIVE_INFINITY;
        let got = 0;
        try {
          for await (const message of readSse(res)) {
            if ('comment' in message) continue;
            if (message.event === 'end') {
              finished = true;
              break;
            }
            received.push({ id: message.id, data: JSON.parse(message.data) });
            if (++got >= take) {
              abort.abort();
              break;
            }
          }
        } catch (e: unknown) {
          if (!abort.signal.aborted) throw e;
        }
      }
      const log = await logOf(run.id);
      expect(received.map((e) => Number(e.id))).toEqual(range(1, log.length));
      expect(received.map((e) => e.data)).toEqual(log);
      await until(() => server.hub.size === 0, 5000, 'the streams to let go of the hub');
    });

    test('a reconnect to an ended run with nothing left gets 204', async () => {
      const res = await get(`/workflows/${ended.id}/logs?follow=1`, {
        'last-event-id': String(ended.log.length),
      });
      expect(res.status).toBe(204);
      expect(await res.text()).toBe('');
    });

    test('an ended run with events left: the rest, then end', async () => {
      const res = await get(`/workflows/${ended.id}/logs?follow=1&after=4`);
      const { events, end } = await readAll(res);
      expect(events.map((e) => e.data)).toEqual(ended.log.slice(4));
      expect(end).toEqual({ run_id: ended.id, status: 'succeeded' });
    });

    test('sends heartbeat comments while the run is quiet', async () => {
      const run = await server.startRun(busyWorkflow('sse-quiet', 1, 1, { sleep: '600ms' }));
      const { events, comments } = await readAll(await get(`/workflows/${run.id}/logs?follow=1`));
      expect(comments.filter((c) => c === 'ping').length).toBeGreaterThanOrEqual(3);
      expect(events.map((e) => e.data)).toEqual(await logOf(run.id));
    });

    test('a client that goes away releases its subscription', async () => {
      const run = await server.startRun(busyWorkflow('sse-leave', 4, 1, { sleep: '500ms' }));
      const abort = new AbortController();
      const res = await get(`/workflows/${run.id}/logs?follow=1`, {}, abort.signal);
      const reader = readSse(res);
      await reader.next();
      expect(server.hub.size).toBe(1);
      abort.abort();
      await reader.return(undefined).catch(() => {});
      await until(() => server.hub.size === 0, 5000, 'the subscription to be released');
      await run.done;
    });
  });

  describe('NDJSON (Accept: application/x-ndjson)', () => {
    const ndjson = { accept: 'application/x-ndjson' };
    const lines = async (res: Response) =>
      (await res.text())
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as WireEvent);

    test('the log as it is, one event a line, from after, up to limit', async () => {
      const all = await get(`/workflows/${ended.id}/logs`, ndjson);
      expect(all.headers.get('content-type')).toMatch(/application\/x-ndjson/);
      expect(await lines(all)).toEqual(ended.log);
      const some = await get(`/workflows/${ended.id}/logs?after=3&limit=5`, ndjson);
      expect(await lines(some)).toEqual(ended.log.slice(3, 8));
    });

    test('with follow=1, a live run to its end', async () => {
      const run = await server.startRun(busyWorkflow('ndjson-live', 8, 2, { sleep: '100ms' }));
      const res = await get(`/workflows/${run.id}/logs?follow=1`, ndjson);
      expect(res.headers.get('content-type')).toMatch(/application\/x-ndjson/);
      const got = await lines(res);
      expect(got).toEqual(await logOf(run.id));
      expect(got.at(-1)?.type).toBe('run:succeeded');
    });
  });
});
