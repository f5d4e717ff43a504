import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { ROUTES } from '../src/api/openapi.ts';
import {
  createTestApi,
  expectJson,
  expectProblem,
  json,
  waitForStatus,
  workflow,
  type As,
  type TestApi,
} from './helpers/api.ts';

let api: TestApi;
let runId: string;
beforeAll(async () => {
  api = await createTestApi();
  const res = await api.request('/workflows/batch', json(workflow('auth-target', { ops: 1 })));
  runId = (await expectJson<{ id: string }>(res, 201)).id;
  await waitForStatus(api, runId, ['succeeded']);
});
afterAll(async () => {
  await api.close();
});

/** A request for a route that, once past auth, does not change anything. */
function harmless(method: string, path: string): { path: string; init: RequestInit } {
  const concrete = path.replace('{id}', runId);
  if (method === 'get') return { path: concrete, init: {} };
  if (!path.includes('{id}')) {
    // Submissions: validate only, so nothing is created.
    const body = path === '/workflows/batch' ? workflow('auth-probe') : {};
    return { path: `${concrete}?validate=1`, init: json(body) };
  }
  // Control actions: retry of a succeeded run is refused (409) without touching it.
  return { path: concrete.replace(/\/[a-z]+$/, '/retry'), init: { method: 'POST' } };
}

// The WebSocket upgrade is not a route of the app (it is attached to the HTTP server).
const routes = ROUTES.filter((r) => r.path !== '/ws');

describe('auth on every route', () => {
  const callers: As[] = ['none', 'unknown', 'agent', 'viewer', 'operator'];

  for (const route of routes) {
    test(`${route.method.toUpperCase()} ${route.path} needs ${route.role ?? 'nothing'}`, async () => {
      const statuses: Record<string, number> = {};
      for (const as of callers) {
        const { path, init } = harmless(route.method, route.path);
        const res = await api.request(path, { ...init, as });
        statuses[as] = res.status;
        if (res.status === 401) await expectProblem(res, 401, 'API4010');
        else if (res.status === 403) await expectProblem(res, 403, 'API4030');
        else await res.body?.cancel();
      }
      if (route.role === null) {
        expect(statuses).toEqual({
          none: 200,
          unknown: 200,
          agent: 200,
          viewer: 200,
          operator: 200,
        });
        return;
      }
      expect(statuses['none']).toBe(401);
      expect(statuses['unknown']).toBe(401);
      expect(statuses['agent']).toBe(403);
      if (route.role === 'viewer') {
        expect(statuses['viewer']).toBe(200);
        expect(statuses['operator']).toBe(200);
      } else {
        expect(statuses['viewer']).toBe(403);
        // Past auth: accepted, or refused for what was sent (never for who sent it).
        expect([200, 400, 409, 422]).toContain(statuses['operator']);
      }
    });
  }

  test('the 403 names the role needed and the role held, never the token', async () => {
    const res = await api.request(`/workflows/${runId}/pause`, { method: 'POST', as: 'viewer' });
    const problem = await expectProblem(res, 403, 'API4030');
    expect(problem.detail).toBe("this needs the operator role; the token's role is viewer");
  });

  test('another scheme or a malformed header counts as no token', async () => {
    for (const header of [
      'Basic dXNlcjpwYXNz',
      'Bearer',
      'Bearer a b',
      'viewer-token-0123456789',
    ]) {
      const res = await api.request('/workflows', {
        as: 'none',
        headers: { Authorization: header },
      });
      await expectProblem(res, 401, 'API4010');
    }
    const lower = await api.request('/workflows', {
      as: 'none',
      headers: { Authorization: 'bearer viewer-token-0123456789' },
    });
    expect(lower.status).toBe(200);
  });

  test('an unknown token is told apart from a missing one, without echoing it', async () => {
    const res = await api.request('/workflows', { as: 'unknown' });
    const problem = await expectProblem(res, 401, 'API4010');
    expect(problem.detail).toContain('not valid');
    expect(JSON.stringify(problem)).not.toContain('not-a-known-token');
  });
});
