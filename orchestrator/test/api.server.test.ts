import { request as httpRequest } from 'node:http';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import WebSocket from 'ws';
import { startServer, type RunningServer } from '../src/api/server.ts';
import { TOKENS, workflow } from './helpers/api.ts';

let dir: string;
let tokensFile: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'muster-server-'));
  tokensFile = join(dir, 'tokens');
  await writeFile(
    tokensFile,
    `# test tokens\nviewer:${TOKENS.viewer}\noperator:${TOKENS.operator}:ci\n`,
  );
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const auth = (role: 'viewer' | 'operator') => ({ Authorization: `Bearer ${TOKENS[role]}` });

async function waitFor(
  server: RunningServer,
  id: string,
  statuses: string[],
): Promise<{ status: string }> {
  const deadline = Date.now() + 20_000;
  for (;;) {
    const res = await fetch(`${server.url}/workflows/${id}/status`, { headers: auth('viewer') });
    const body = (await res.json()) as { status: string };
    if (statuses.includes(body.status)) return body;
    if (Date.now() > deadline) throw new Error(`run ${id} is ${body.status}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe('startServer over a real socket', () => {
  let server: RunningServer;
  beforeAll(async () => {
    server = await startServer({
      port: 0,
      stateDir: join(dir, 'state-a'),
      tokensFile,
      bodyLimit: 4096,
      log: () => {},
    });
  });
  afterAll(async () => {
    await server.close();
  });

  test('listens on 127.0.0.1 on a free port; /health needs no token', async () => {
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const res = await fetch(`${server.url}/health`);
    expect(await res.json()).toEqual({ status: 'ok' });
    const ready = await fetch(`${server.url}/ready`, { headers: auth('viewer') });
    expect(await ready.json()).toEqual({ status: 'ready', store: 'pglite' });
  });

  test('submit, list and status over HTTP; tokens come from the file', async () => {
    const res = await fetch(`${server.url}/workflows/batch`, {
      method: 'POST',
      headers: { ...auth('operator'), 'Content-Type': 'application/json' },
      body: JSON.stringify(workflow('over-http')),
    });
    expect(res.status).toBe(201);
    const { id } = (await res.json()) as { id: string };
    expect(await waitFor(server, id, ['succeeded'])).toMatchObject({ status: 'succeeded' });
    const list = await fetch(`${server.url}/workflows?name=over-http`, { headers: auth('viewer') });
    expect(
      ((await list.json()) as { items: Array<{ id: string }> }).items.map((r) => r.id),
    ).toEqual([id]);
    const denied = await fetch(`${server.url}/workflows/${id}/pause`, {
      method: 'POST',
      headers: auth('viewer'),
    });
    expect(denied.status).toBe(403);
    expect(denied.headers.get('content-type')).toContain('application/problem+json');
  });

  test('a chunked body over the limit is cut off with 413', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const req = httpRequest(
        `${server.url}/workflows/batch`,
        {
          method: 'POST',
          headers: { ...auth('operator'), 'Content-Type': 'application/json' },
        },
        (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        },
      );
      req.on('error', reject);
      // No Content-Length: Node sends it chunked.
      for (let i = 0; i < 10; i++) req.write('x'.repeat(1024));
      req.end();
    });
    expect(status).toBe(413);
  });

  test('the WebSocket is served on the same port and checks the token', async () => {
    const refused = await new Promise<number>((resolve) => {
      const ws = new WebSocket(`${server.url.replace('http', 'ws')}/ws`);
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.on('close', (code) => resolve(code));
      ws.on('error', () => {});
    });
    expect([401, 4401]).toContain(refused);
    const opened = await new Promise<boolean>((resolve) => {
      const ws = new WebSocket(`${server.url.replace('http', 'ws')}/ws`, {
        headers: auth('viewer'),
      });
      ws.on('open', () => {
        ws.close();
        resolve(true);
      });
      ws.on('error', () => resolve(false));
    });
    expect(opened).toBe(true);
  });

  test('an upgrade to a path no endpoint serves gets 404, with /ws and /agents both served', async () => {
    const status = await new Promise<number>((resolve) => {
      const ws = new WebSocket(`${server.url.replace('http', 'ws')}/elsewhere`, {
        headers: auth('viewer'),
      });
      ws.on('unexpected-response', (_req, res) => resolve(res.statusCode ?? 0));
      ws.on('error', () => resolve(-1));
    });
    expect(status).toBe(404);
  });
});

describe('starting and stopping', () => {
  test('refuses to start without tokens unless --insecure-no-auth', async () => {
    await expect(
      startServer({ port: 0, stateDir: join(dir, 'state-b'), log: () => {} }),
    ).rejects.toThrow(/no API tokens are configured.*--insecure-no-auth/);
    const open = await startServer({
      port: 0,
      stateDir: join(dir, 'state-b'),
      insecureNoAuth: true,
      log: () => {},
    });
    try {
      const res = await fetch(`${open.url}/workflows`);
      expect(res.status).toBe(200);
    } finally {
      await open.close();
    }
  });

  test('a port in use is a clear error, and leaves no database open', async () => {
    const first = await startServer({
      port: 0,
      stateDir: join(dir, 'state-c'),
      tokensEnv: `viewer:${TOKENS.viewer}`,
      log: () => {},
    });
    try {
      await expect(
        startServer({
          port: first.port,
          stateDir: join(dir, 'state-d'),
          tokensEnv: `viewer:${TOKENS.viewer}`,
          log: () => {},
        }),
      ).rejects.toThrow(`port ${first.port} on 127.0.0.1 is in use`);
    } finally {
      await first.close();
    }
  });

  test('stops gracefully, and the next start resumes the run it left unfinished', async () => {
    const stateDir = join(dir, 'state-e');
    const options = {
      port: 0,
      stateDir,
      tokensEnv: `operator:${TOKENS.operator},viewer:${TOKENS.viewer}`,
      log: () => {},
    };
    const first = await startServer(options);
    const res = await fetch(`${first.url}/workflows/batch`, {
      method: 'POST',
      headers: { ...auth('operator'), 'Content-Type': 'application/json' },
      // The task a stop interrupts is retried by its policy: give it a second attempt.
      body: JSON.stringify({
        ...workflow('survives', { ops: 3, sleep: '400ms' }),
        retry_policy: { max_attempts: 2, initial_delay: 0 },
      }),
    });
    const { id } = (await res.json()) as { id: string };
    // Stop while it runs: an SSE stream still open must not hold the stop up.
    const sse = await fetch(`${first.url}/workflows/${id}/logs?follow=1`, {
      headers: auth('viewer'),
    });
    expect(sse.status).toBe(200);
    const stopping = Date.now();
    await first.close();
    expect(Date.now() - stopping).toBeLessThan(8000);
    await sse.body?.cancel().catch(() => {});
    await expect(fetch(`${first.url}/health`)).rejects.toThrow();

    const second = await startServer(options);
    try {
      expect(second.resumed).toEqual([id]);
      const done = await waitFor(second, id, ['succeeded', 'failed']);
      expect(done.status).toBe('succeeded');
    } finally {
      await second.close();
    }
  });
});
