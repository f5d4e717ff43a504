import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { _step, _stepFailure, _testContext } from './fixtures/context.ts';
import { MAX_HTTP_BODY } from './http.ts';
import { createStepRegistry, runStep } from './registry.ts';

const registry = createStepRegistry();
let server: Server;
let base: string;
/** Requests the server is holding (the `/slow` route), to end them after the test. */
const held = new Set<ServerResponse>();

async function readAll(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

beforeAll(async () => {
  server = createServer((req, res) => {
    void (async () => {
      const url = new URL(req.url ?? '/', 'http://x');
      const body = await readAll(req);
      const status = /^\/status\/(\d{3})$/.exec(url.pathname);
      if (status) {
        res.writeHead(Number(status[1]), { 'content-type': 'text/plain' });
        res.end(`body of ${status[1]}`);
      } else if (url.pathname === '/echo') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ method: req.method, headers: req.headers, body }));
      } else if (url.pathname === '/big') {
        res.writeHead(200, { 'content-type': 'text/plain' });
        res.end('é'.repeat(MAX_HTTP_BODY));
      } else if (url.pathname === '/slow') {
        held.add(res);
        res.on('close', () => held.delete(res));
      } else {
        res.writeHead(200);
        res.end('ok');
      }
    })();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  for (const res of held) res.destroy();
  // fetch keeps connections alive for seconds; do not wait for them.
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

const http = (params: Record<string, unknown>, extra: { timeout?: number } = {}) =>
  _step({ name: 'call', type: 'http', params, ...extra });

describe('http', () => {
  describe('requests', () => {
    test('GET by default; outputs status and body; logs the exchange', async () => {
      const ctx = _testContext('/');
      const result = await runStep(registry, http({ url: `${base}/echo` }), ctx);
      expect(result.outputs?.['status']).toBe('200');
      expect(JSON.parse(result.outputs?.['body'] ?? '')).toMatchObject({ method: 'GET', body: '' });
      expect(ctx.linesOf('info')[0]).toMatch(
        new RegExp(`^GET ${base}/echo → 200 OK \\(\\d+ ms\\)$`),
      );
    });

    test('sends a JSON body with content-type, and headers', async () => {
      const result = await runStep(
        registry,
        http({
          url: `${base}/echo`,
          method: 'post',
          headers: { 'x-token': 'abc', 'x-count': 3 },
          body: { name: 'web-1', ports: [80, 443] },
        }),
        _testContext('/'),
      );
      const echoed = JSON.parse(result.outputs?.['body'] ?? '') as {
        method: string;
        headers: Record<string, string>;
        body: string;
      };
      expect(echoed.method).toBe('POST');
      expect(echoed.headers['content-type']).toBe('application/json');
      expect(echoed.headers['x-token']).toBe('abc');
      expect(echoed.headers['x-count']).toBe('3');
      expect(JSON.parse(echoed.body)).toEqual({ name: 'web-1', ports: [80, 443] });
    });

    test('sends a string body as is, keeping a given content-type', async () => {
      const result = await runStep(
        registry,
        http({
          url: `${base}/echo`,
          method: 'PUT',
          headers: { 'Content-Type': 'text/csv' },
          body: 'a,b\n1,2',
        }),
        _testContext('/'),
      );
      const echoed = JSON.parse(result.outputs?.['body'] ?? '') as {
        headers: Record<string, string>;
        body: string;
      };
      expect(echoed.body).toBe('a,b\n1,2');
      expect(echoed.headers['content-type']).toBe('text/csv');
    });

    test('cuts the body output to 64 KiB', async () => {
      const ctx = _testContext('/');
      const result = await runStep(registry, http({ url: `${base}/big` }), ctx);
      expect(Buffer.byteLength(result.outputs?.['body'] ?? '')).toBe(MAX_HTTP_BODY);
      expect(ctx.linesOf('info')).toContain(
        `response body cut to its first ${MAX_HTTP_BODY} bytes`,
      );
    });
  });

  describe('statuses', () => {
    test('accepts the statuses in expect_status, and only those', async () => {
      const ok = await runStep(
        registry,
        http({ url: `${base}/status/404`, expect_status: [200, 404] }),
        _testContext('/'),
      );
      expect(ok.outputs).toEqual({ status: '404', body: 'body of 404' });
      const f = await _stepFailure(
        runStep(
          registry,
          http({ url: `${base}/status/200`, expect_status: 201 }),
          _testContext('/'),
        ),
      );
      expect(f.type).toBe('http-status');
      expect(f.message).toBe(`step "call": GET ${base}/status/200 answered 200 OK; expected 201`);
    });

    test.each([
      [404, true],
      [400, true],
      [403, true],
      [429, false],
      [408, false],
      [500, false],
      [503, false],
    ])('an unexpected %i is http-status, nonRetryable %s', async (status, nonRetryable) => {
      const f = await _stepFailure(
        runStep(registry, http({ url: `${base}/status/${status}` }), _testContext('/')),
      );
      expect(f.type).toBe('http-status');
      expect(f.nonRetryable).toBe(nonRetryable);
      expect(f.details).toMatchObject({ status, body: `body of ${status}` });
      expect(f.message).toContain('expected a 2xx status');
    });
  });

  describe('network errors', () => {
    test('a refused connection is a retryable http-error', async () => {
      const closed = createServer();
      await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
      const port = (closed.address() as AddressInfo).port;
      await new Promise<void>((resolve) => closed.close(() => resolve()));
      const f = await _stepFailure(
        runStep(registry, http({ url: `http://127.0.0.1:${port}/` }), _testContext('/')),
      );
      expect(f.type).toBe('http-error');
      expect(f.nonRetryable).toBe(false);
      expect(f.message).toContain('ECONNREFUSED');
      expect(f.details).toMatchObject({ code: 'ECONNREFUSED' });
    });

    test('no response within the request timeout is an http-error', async () => {
      const started = Date.now();
      const f = await _stepFailure(
        runStep(registry, http({ url: `${base}/slow`, timeout: '200ms' }), _testContext('/')),
      );
      expect(f.type).toBe('http-error');
      expect(f.message).toContain('no response within 200 ms');
      expect(Date.now() - started).toBeLessThan(2000);
    });

    test('the step timeout aborts the request', async () => {
      const f = await _stepFailure(
        runStep(registry, http({ url: `${base}/slow` }, { timeout: 1 }), _testContext('/')),
      );
      expect(f.type).toBe('timeout');
    });

    test('cancelling the step aborts the request', async () => {
      const ctx = _testContext('/');
      const running = runStep(registry, http({ url: `${base}/slow` }), ctx);
      setTimeout(() => ctx.controller.abort(), 50);
      const f = await _stepFailure(running);
      expect(f.type).toBe('cancelled');
    });
  });

  describe('params', () => {
    test.each([
      [{ url: 'not a url' }, 'params.url: must be an absolute URL'],
      [
        { url: 'ftp://example.com/' },
        'params.url: must be an http:// or https:// URL, found "ftp://example.com/"',
      ],
      [{ url: 'http://x/', method: 'FETCH' }, 'params.method: must be one of GET, HEAD, POST'],
      [{ url: 'http://x/', body: 'x' }, 'params.body: a GET or HEAD request cannot have a body'],
      [
        { url: 'http://x/', expect_status: 42 },
        'params.expect_status: is not an HTTP status (100–599)',
      ],
      [{ url: 'http://x/', headers: { 'bad header': 'x' } }, 'params.headers["bad header"]'],
      [{ url: 'http://x/', timeout: 'soon' }, 'params.timeout: "soon" is not a duration'],
    ])('rejects %j', async (params, message) => {
      const f = await _stepFailure(runStep(registry, http(params), _testContext('/')));
      expect(f.type).toBe('invalid-params');
      expect(f.nonRetryable).toBe(true);
      expect(f.message).toContain(message);
    });
  });
});
