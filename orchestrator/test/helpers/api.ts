/**
 * API test helpers: an orchestrator on a temporary PGlite, the app over it with one token per
 * role, a request function that picks the token by role, and small workflows that really run.
 *
 * @module
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { expect } from 'vitest';
import type { Hono } from 'hono';
import { createOrchestrator, type Orchestrator } from '../../src/orchestrator.ts';
import { createApp } from '../../src/api/app.ts';
import { createAuth, type Auth, type Role } from '../../src/api/auth.ts';
import { createMetrics, type Metrics } from '../../src/api/metrics.ts';
import type { AuthEnv } from '../../src/api/middleware/auth/index.ts';
import type { RunStatus } from '../../src/engine/types.ts';

/** One token per role. */
export const TOKENS: Readonly<Record<Role, string>> = {
  viewer: 'viewer-token-0123456789',
  operator: 'operator-token-0123456789',
  agent: 'agent-token-0123456789',
};

/** Who sends a request: a role's token, no token, or an unknown one. */
export type As = Role | 'none' | 'unknown';

/** A test API over its own state directory. */
export interface TestApi {
  readonly app: Hono<AuthEnv>;
  readonly orchestrator: Orchestrator;
  readonly metrics: Metrics;
  readonly auth: Auth;
  readonly stateDir: string;
  /** Sends a request in process, as `as` (default operator). */
  request(path: string, init?: RequestInit & { as?: As }): Promise<Response>;
  close(): Promise<void>;
}

/** Options of {@link createTestApi}. */
export interface TestApiOptions {
  readonly bodyLimit?: number;
  readonly idleDriverMs?: number;
}

/** Creates an orchestrator on a temporary PGlite and the app over it. */
export async function createTestApi(options: TestApiOptions = {}): Promise<TestApi> {
  const stateDir = await mkdtemp(join(tmpdir(), 'muster-api-'));
  const orchestrator = await createOrchestrator(
    { stateDir },
    options.idleDriverMs !== undefined ? { idleDriverMs: options.idleDriverMs } : {},
  );
  const auth = createAuth({
    tokens: (Object.keys(TOKENS) as Role[]).map((role) => ({ role, token: TOKENS[role] })),
  });
  const metrics = createMetrics({
    loadRun: (id) => orchestrator.store.loadRun(id),
    getRun: (id) => orchestrator.store.getRun(id),
  });
  const detach = metrics.attach(orchestrator);
  const app = createApp({
    orchestrator,
    auth,
    metrics,
    ...(options.bodyLimit !== undefined ? { bodyLimit: options.bodyLimit } : {}),
    logError: () => {},
  });
  return {
    app,
    orchestrator,
    metrics,
    auth,
    stateDir,
    request(path, init = {}) {
      const { as = 'operator', ...rest } = init;
      const headers = new Headers(rest.headers);
      if (as === 'unknown') headers.set('Authorization', 'Bearer not-a-known-token');
      else if (as !== 'none') headers.set('Authorization', `Bearer ${TOKENS[as]}`);
      return Promise.resolve(app.request(path, { ...rest, headers }));
    },
    async close() {
      detach();
      await orchestrator.close();
      await rm(stateDir, { recursive: true, force: true });
    },
  };
}

/** A JSON request body. */
export function json(
  body: unknown,
  init: RequestInit & { as?: As } = {},
): RequestInit & { as?: As } {
  return {
    method: 'POST',
    ...init,
    headers: { 'Content-Type': 'application/json', ...(init.headers as Record<string, string>) },
    body: JSON.stringify(body),
  };
}

/**
 * A workflow of cluster operations in a chain, whose tasks echo, or sleep for `sleep` (e.g.
 * `"30s"`). No retries and no automatic rollback, so outcomes are plain to assert.
 */
export function workflow(
  name: string,
  options: { ops?: number; items?: number; sleep?: string; labels?: Record<string, string> } = {},
) {
  const ops = options.ops ?? 2;
  const items = Array.from({ length: options.items ?? 1 }, (_, i) => `item-${i + 1}`);
  return {
    name,
    ...(options.labels ? { labels: options.labels } : {}),
    retry_policy: { max_attempts: 1 },
    rollback_strategy: { enabled: false },
    operations: Array.from({ length: ops }, (_, i) => ({
      id: `step-${i + 1}`,
      type: 'update',
      target: 'cluster',
      items,
      ...(i > 0 ? { depends_on: [`step-${i}`] } : {}),
      steps: [
        options.sleep
          ? { name: 'wait', type: 'sleep', params: { duration: options.sleep } }
          : { name: 'say', type: 'echo', params: { message: `step ${i + 1}` } },
      ],
    })),
  };
}

/** Reads a response as JSON, checking its status (the body is shown when it differs). */
export async function expectJson<T = Record<string, unknown>>(
  res: Response,
  status: number,
): Promise<T> {
  const text = await res.text();
  expect({ status: res.status, body: text }).toMatchObject({ status });
  return JSON.parse(text) as T;
}

/** Waits until a run has `n` tasks running. */
export async function waitForRunningTasks(
  api: Pick<TestApi, 'request'>,
  id: string,
  n = 1,
): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const res = await api.request(`/workflows/${id}/status`, { as: 'viewer' });
    const body = (await res.json()) as { tasks: { running: number } };
    if (body.tasks.running >= n) return;
    if (Date.now() > deadline) throw new Error(`run ${id} never had ${n} tasks running`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Checks a problem+json answer and returns it. */
export async function expectProblem(
  res: Response,
  status: number,
  code: string,
): Promise<{
  type: string;
  title: string;
  status: number;
  detail: string;
  code: string;
  problems?: Array<Record<string, unknown>>;
}> {
  expect(res.headers.get('content-type')).toContain('application/problem+json');
  const body = await expectJson<{
    type: string;
    title: string;
    status: number;
    detail: string;
    code: string;
    problems?: Array<Record<string, unknown>>;
  }>(res, status);
  expect(body).toMatchObject({ status, code, type: `urn:muster:problem:${code}` });
  expect(typeof body.title).toBe('string');
  expect(typeof body.detail).toBe('string');
  return body;
}

/** Waits until a run reaches one of `statuses` (polling its status route). */
export async function waitForStatus(
  api: Pick<TestApi, 'request'>,
  id: string,
  statuses: readonly RunStatus[],
  timeoutMs = 15_000,
): Promise<Record<string, unknown>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const res = await api.request(`/workflows/${id}/status`, { as: 'viewer' });
    const body = (await res.json()) as Record<string, unknown>;
    if (statuses.includes(body['status'] as RunStatus)) return body;
    if (Date.now() > deadline) {
      throw new Error(`run ${id} is ${String(body['status'])}, not ${statuses.join('|')}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}
