import { createServer } from 'node:http';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, test } from 'vitest';
import { WebSocketServer } from 'ws';
import type { WebSocket } from 'ws';
import { ApiError } from './client-errors.ts';
import { watchRun, wsUrl } from './run-watch.ts';
import type { WatchItem } from './run-watch.ts';

// A stand-in `/ws` speaking the protocol of orchestrator/src/ws/protocol.ts; the real endpoint
// is exercised end to end in cli/test/batch.test.ts.
let http: Server | undefined;
let wss: WebSocketServer | undefined;

async function serve(onConnection: (ws: WebSocket, n: number, auth?: string) => void) {
  http = createServer();
  wss = new WebSocketServer({ server: http, path: '/ws' });
  let n = 0;
  wss.on('connection', (ws, req) => onConnection(ws, ++n, req.headers.authorization));
  await new Promise<void>((resolve) => http!.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
}

afterEach(async () => {
  for (const c of wss?.clients ?? []) c.terminate();
  await new Promise((resolve) => wss?.close(resolve) ?? resolve(undefined));
  await new Promise((resolve) => http?.close(resolve) ?? resolve(undefined));
  http = wss = undefined;
});

const event = (seq: number) => ({
  type: 'event',
  event: {
    id: seq,
    run_id: 'r-1',
    seq,
    type: 'task:started',
    at: '2026-05-01T08:00:00.000Z',
    operation_id: 'op',
    task_id: 't',
    data: { attempt: 1 },
  },
});

async function collect(items: AsyncIterable<WatchItem>) {
  const out: string[] = [];
  for await (const item of items) {
    out.push(item.kind === 'event' ? `event ${item.event.seq}` : `end ${item.status}`);
  }
  return out;
}

describe('watchRun', () => {
  test('subscribes again from the last seq after a drop, and ends with the run', async () => {
    const subscribes: unknown[] = [];
    const server = await serve((ws, n, auth) => {
      ws.on('message', (raw) => {
        subscribes.push({ auth, ...JSON.parse(String(raw)) });
        if (n === 1) {
          ws.send(JSON.stringify(event(1)));
          ws.send(JSON.stringify(event(2)), () => ws.terminate());
        } else {
          for (const m of [event(2), event(3), { type: 'end', run_id: 'r-1', status: 'failed' }]) {
            ws.send(JSON.stringify(m));
          }
        }
      });
    });
    const reconnects: number[] = [];
    const items = await collect(
      watchRun({ server, token: 'tok', runId: 'r-1', onReconnect: (seq) => reconnects.push(seq) }),
    );
    expect(items).toEqual(['event 1', 'event 2', 'event 3', 'end failed']);
    expect(reconnects).toEqual([2]);
    expect(subscribes).toEqual([
      { auth: 'Bearer tok', type: 'subscribe', runs: ['r-1'], after: { 'r-1': 0 } },
      { auth: 'Bearer tok', type: 'subscribe', runs: ['r-1'], after: { 'r-1': 2 } },
    ]);
  });

  test('fails on a refused token instead of reconnecting', async () => {
    const server = await serve((ws) => ws.close(4401, 'unknown token'));
    await expect(collect(watchRun({ server, runId: 'r-1' }))).rejects.toThrow(ApiError);
    await expect(collect(watchRun({ server, runId: 'r-1' }))).rejects.toThrow(
      '[API4010] unknown token (GET /ws); pass a token with --token or MUSTER_TOKEN',
    );
  });

  test('fails on an unknown run', async () => {
    const server = await serve((ws) =>
      ws.on('message', () =>
        ws.send(JSON.stringify({ type: 'error', code: 'ORC1001', detail: 'no run with id "r-1"' })),
      ),
    );
    await expect(collect(watchRun({ server, runId: 'r-1' }))).rejects.toThrow(
      '[ORC1001] no run with id "r-1"',
    );
  });

  test('stops when the signal fires', async () => {
    const server = await serve((ws) => ws.on('message', () => ws.send(JSON.stringify(event(1)))));
    const controller = new AbortController();
    const items: number[] = [];
    for await (const item of watchRun({ server, runId: 'r-1', signal: controller.signal })) {
      if (item.kind === 'event') items.push(item.event.seq);
      controller.abort();
    }
    expect(items).toEqual([1]);
  });
});

test('wsUrl keeps the path prefix and maps the scheme', () => {
  expect(wsUrl('https://proxy/muster/')).toBe('wss://proxy/muster/ws');
  expect(wsUrl('http://127.0.0.1:7070')).toBe('ws://127.0.0.1:7070/ws');
});
