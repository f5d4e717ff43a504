import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, test } from 'vitest';
import { createClient } from './client.ts';
import type { MusterClient } from './client.ts';
import { ApiError, ServerUnreachableError, UnexpectedResponseError } from './client-errors.ts';

// A stand-in orchestrator: the network is the edge of the world these tests stop at. The real
// server is exercised end to end in cli/test/batch.test.ts.
type Handler = (req: IncomingMessage, res: ServerResponse) => void;
let server: Server | undefined;

async function serve(handler: Handler): Promise<MusterClient> {
  server = createServer(handler);
  await new Promise<void>((resolve) => server!.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return createClient({ server: `http://127.0.0.1:${port}/`, token: 'tok', timeoutMs: 5_000 });
}

afterEach(async () => {
  server?.closeAllConnections();
  await new Promise((resolve) => server?.close(resolve) ?? resolve(undefined));
  server = undefined;
});

const event = (seq: number, type = 'task:started') => ({
  id: 100 + seq,
  run_id: 'r-1',
  seq,
  type,
  at: '2026-05-01T08:00:00.000Z',
  operation_id: 'op',
  task_id: null,
  data: {},
});

function sse(res: ServerResponse, events: ReturnType<typeof event>[]) {
  for (const e of events)
    res.write(`id: ${e.seq}\nevent: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`);
}

describe('createClient', () => {
  test('says the orchestrator cannot be reached, with the address and how to start it', async () => {
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const { port } = probe.address() as AddressInfo;
    await new Promise((resolve) => probe.close(resolve));
    const client = createClient({ server: `http://127.0.0.1:${port}` });
    const error = await client.list().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ServerUnreachableError);
    expect((error as Error).message).toBe(
      `[CLI3001] cannot reach the orchestrator at http://127.0.0.1:${port}: connect ECONNREFUSED ` +
        `127.0.0.1:${port} — is \`muster server\` running? (set the address with --server or MUSTER_SERVER)`,
    );
  });

  test('sends the token and the filters, and follows next_cursor to the end', async () => {
    const seen: string[] = [];
    const run = (id: string) => ({
      id,
      name: 'n',
      status: 'running',
      labels: {},
      created_at: 'x',
      started_at: null,
      finished_at: null,
      error: null,
    });
    const client = await serve((req, res) => {
      seen.push(`${req.headers.authorization} ${req.url}`);
      const cursor = new URL(req.url!, 'http://x').searchParams.get('cursor');
      res.setHeader('content-type', 'application/json');
      res.end(
        JSON.stringify(
          cursor === null
            ? { items: [run('b'), run('a')], next_cursor: 'c1' }
            : { items: [run('z')], next_cursor: null },
        ),
      );
    });
    const items = await client.listAll({ status: 'running', labels: ['env=prod', 'team=a b'] });
    expect(items.map((r) => r.id)).toEqual(['b', 'a', 'z']);
    expect(seen).toEqual([
      'Bearer tok /workflows?status=running&label=env%3Dprod&label=team%3Da+b',
      'Bearer tok /workflows?status=running&label=env%3Dprod&label=team%3Da+b&cursor=c1',
    ]);
  });

  test('turns a problem document into an ApiError with its code, message and problems', async () => {
    const client = await serve((_req, res) => {
      res.writeHead(422, { 'content-type': 'application/problem+json' });
      res.end(
        JSON.stringify({
          type: 'about:blank',
          title: 'Invalid workflow',
          status: 422,
          code: 'MUS2001',
          detail: '[MUS2001] <request body> source has 1 problem; see problems',
          problems: [{ code: 'schema', path: 'operations[0].type', message: 'bad', line: 3 }],
        }),
      );
    });
    const error = (await client
      .validate({ source: '{}', format: 'json' })
      .catch((e) => e)) as ApiError;
    expect(error).toBeInstanceOf(ApiError);
    expect(error.message).toBe('[MUS2001] <request body> source has 1 problem; see problems');
    expect(error.status).toBe(422);
    expect(error.exitCode).toBe(2);
    expect(error.problems).toEqual([
      { code: 'schema', path: 'operations[0].type', message: 'bad', line: 3 },
    ]);
  });

  test('tells how to fix a refused token, and exits 1 for it', async () => {
    const client = await serve((_req, res) => {
      res.writeHead(401, { 'content-type': 'application/problem+json' });
      res.end(JSON.stringify({ status: 401, code: 'API4010', detail: 'send a token' }));
    });
    const error = (await client.status('r-1').catch((e) => e)) as ApiError;
    expect(error.message).toBe(
      '[API4010] send a token (GET /workflows/r-1/status); pass a token with --token or MUSTER_TOKEN',
    );
    expect(error.exitCode).toBe(1);
  });

  test('keeps the first line of an error page that is not JSON', async () => {
    const client = await serve((_req, res) => {
      res.writeHead(502, 'Bad Gateway', { 'content-type': 'text/html' });
      res.end('<html>upstream gone</html>\n<body></body>');
    });
    const error = (await client.status('r 1').catch((e) => e)) as ApiError;
    expect(error.message).toBe('[HTTP502] <html>upstream gone</html>');
  });

  test('refuses a body of the wrong shape, naming the field', async () => {
    const client = await serve((_req, res) => {
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify({ id: 'r-1', status: 'sleeping' }));
    });
    const error = await client.control('r-1', 'pause').catch((e) => e);
    expect(error).toBeInstanceOf(UnexpectedResponseError);
    expect((error as Error).message).toMatch(
      /^\[CLI3002\] unexpected answer to POST \/workflows\/r-1\/pause: status: Invalid type: Expected .*"paused".*; are the CLI and the server the same version\?$/,
    );
  });
});

describe('followLogs', () => {
  test('reconnects after a dropped stream from the last seq, without a gap or a duplicate', async () => {
    const requests: string[] = [];
    const client = await serve((req, res) => {
      requests.push(`${req.headers['last-event-id']} ${req.url}`);
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      if (requests.length === 1) {
        sse(res, [event(1), event(2)]);
        // A proxy dropping the connection mid-stream.
        setTimeout(() => res.socket?.destroy(), 50);
      } else {
        // The server repeats the last event the client saw: the client must drop it.
        sse(res, [event(2), event(3), event(4, 'run:succeeded')]);
        res.end('event: end\ndata: {"run_id":"r-1","status":"succeeded"}\n\n');
      }
    });
    const reconnects: number[] = [];
    const seqs: number[] = [];
    for await (const e of client.followLogs('r-1', {
      onReconnect: (seq) => reconnects.push(seq),
    })) {
      seqs.push(e.seq);
    }
    expect(seqs).toEqual([1, 2, 3, 4]);
    expect(reconnects).toEqual([2]);
    expect(requests).toEqual([
      '0 /workflows/r-1/logs?follow=1&after=0',
      '2 /workflows/r-1/logs?follow=1&after=2',
    ]);
  });

  test('ends at once on 204, when an ended run has nothing after the position', async () => {
    const client = await serve((_req, res) => {
      res.writeHead(204);
      res.end();
    });
    const events = [];
    for await (const e of client.followLogs('r-1', { after: 9 })) events.push(e);
    expect(events).toEqual([]);
  });

  test('stops on an error the server sends, such as an unknown run', async () => {
    const client = await serve((_req, res) => {
      res.writeHead(404, { 'content-type': 'application/problem+json' });
      res.end(
        JSON.stringify({ status: 404, code: 'ORC1001', detail: '[ORC1001] no run with id "x"' }),
      );
    });
    const iterator = client.followLogs('x');
    await expect(iterator.next()).rejects.toThrow('[ORC1001] no run with id "x"');
  });

  test('gives up when the orchestrator stays away longer than reconnectForMs', async () => {
    let calls = 0;
    const client0 = await serve((_req, res) => {
      calls++;
      res.socket?.destroy();
    });
    const client = createClient({ server: client0.server, reconnectForMs: 300 });
    const iterator = client.followLogs('r-1');
    await expect(iterator.next()).rejects.toThrow(/^\[CLI3001\] cannot reach the orchestrator at/);
    expect(calls).toBeGreaterThan(1);
  });
});
