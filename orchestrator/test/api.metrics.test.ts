import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  createTestApi,
  expectJson,
  json,
  waitForStatus,
  workflow,
  type TestApi,
} from './helpers/api.ts';

let api: TestApi;
let ids: string[];
let text: string;
beforeAll(async () => {
  api = await createTestApi();
  ids = [];
  for (const name of ['metrics-a', 'metrics-b']) {
    const res = await api.request('/workflows/batch', json(workflow(name, { items: 2 })));
    ids.push((await expectJson<{ id: string }>(res, 201)).id);
  }
  const failing = {
    name: 'metrics-fail',
    retry_policy: { max_attempts: 2, initial_delay: 0 },
    rollback_strategy: { enabled: false },
    operations: [
      {
        id: 'fails',
        type: 'update',
        target: 'cluster',
        items: ['x'],
        steps: [{ name: 'boom', type: 'script', params: { command: 'false' } }],
      },
    ],
  };
  ids.push(
    (await expectJson<{ id: string }>(await api.request('/workflows/batch', json(failing)), 201))
      .id,
  );
  for (const id of ids) await waitForStatus(api, id, ['succeeded', 'failed']);
  await api.metrics.settled();
  api.metrics.wsClients.inc();
  api.metrics.agents.set(3);
  const res = await api.request('/metrics', { as: 'viewer' });
  expect(res.status).toBe(200);
  expect(res.headers.get('content-type')).toContain('text/plain');
  text = await res.text();
});
afterAll(async () => {
  await api.close();
});

/** The value of one sample, e.g. `muster_tasks_total{status="succeeded"}`. */
function sample(name: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line === undefined ? undefined : Number(line.slice(name.length + 1));
}

describe('GET /metrics', () => {
  test('exposes every family, with the muster_ prefix, in seconds, counters in _total', () => {
    for (const family of [
      'muster_build_info',
      'muster_runs_total',
      'muster_runs_active',
      'muster_tasks_total',
      'muster_task_retries_total',
      'muster_rollbacks_total',
      'muster_task_duration_seconds',
      'muster_run_duration_seconds',
      'muster_queue_depth',
      'muster_queue_wait_seconds',
      'muster_websocket_clients',
      'muster_agents_connected',
      'muster_http_requests_total',
      'muster_http_request_duration_seconds',
      'process_cpu_user_seconds_total',
      'nodejs_eventloop_lag_seconds',
    ]) {
      expect(text).toContain(`# TYPE ${family} `);
    }
    expect(text).toMatch(/^muster_build_info\{version="0\.1\.0",node="[\d.]+"\} 1$/m);
  });

  test('counts what the runs did', () => {
    expect(sample('muster_runs_total{status="running"}')).toBe(3);
    expect(sample('muster_runs_total{status="succeeded"}')).toBe(2);
    expect(sample('muster_runs_total{status="failed"}')).toBe(1);
    // 2 runs × 2 operations × 2 items, and the failing task's 2 attempts.
    expect(sample('muster_tasks_total{status="succeeded"}')).toBe(8);
    expect(sample('muster_tasks_total{status="running"}')).toBe(10);
    expect(sample('muster_tasks_total{status="failed"}')).toBe(1);
    expect(sample('muster_task_retries_total')).toBe(1);
    expect(
      sample('muster_task_duration_seconds_count{status="succeeded",queue_kind="orchestrator"}'),
    ).toBe(8);
    expect(
      sample('muster_task_duration_seconds_count{status="failed",queue_kind="orchestrator"}'),
    ).toBe(2);
    expect(sample('muster_run_duration_seconds_count{status="succeeded"}')).toBe(2);
    expect(sample('muster_queue_wait_seconds_count{queue_kind="orchestrator"}')).toBe(10);
    expect(sample('muster_queue_depth{queue_kind="orchestrator"}')).toBe(0);
    expect(sample('muster_runs_active{status="running"}')).toBe(0);
    expect(sample('muster_websocket_clients')).toBe(1);
    expect(sample('muster_agents_connected')).toBe(3);
    expect(
      sample('muster_http_requests_total{method="POST",route="/workflows/batch",status="201"}'),
    ).toBe(3);
  });

  test('labels stay bounded: no run id, task id or raw path anywhere', () => {
    for (const id of ids) expect(text).not.toContain(id);
    expect(text).not.toContain('item-1');
    expect(text).not.toContain('step-1');
    expect(text).toContain('route="/workflows/:id/status"');
  });

  test('a viewer may scrape; no token may not', async () => {
    expect((await api.request('/metrics', { as: 'none' })).status).toBe(401);
  });
});
