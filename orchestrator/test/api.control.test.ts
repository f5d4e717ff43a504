import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  createTestApi,
  expectJson,
  expectProblem,
  json,
  waitForRunningTasks,
  waitForStatus,
  workflow,
  type TestApi,
} from './helpers/api.ts';

let api: TestApi;
beforeAll(async () => {
  api = await createTestApi();
});
afterAll(async () => {
  await api.close();
});

async function submit(body: unknown): Promise<string> {
  const res = await api.request('/workflows/batch', json(body));
  return (await expectJson<{ id: string }>(res, 201)).id;
}

function act(id: string, action: string, body?: unknown) {
  return api.request(
    `/workflows/${id}/${action}`,
    body === undefined ? { method: 'POST' } : json(body),
  );
}

async function expectAccepted(res: Response, id: string, status: string): Promise<void> {
  expect(await expectJson(res, 202)).toEqual({ id, status });
}

/** A workflow whose only task fails: `sh -c "exit 3"`. */
function failing(name: string) {
  return {
    name,
    retry_policy: { max_attempts: 1 },
    rollback_strategy: { enabled: false },
    operations: [
      {
        id: 'fails',
        type: 'update',
        target: 'cluster',
        items: ['x'],
        steps: [
          { name: 'boom', type: 'script', params: { command: 'sh', args: ['-c', 'exit 3'] } },
        ],
      },
    ],
  };
}

describe('control actions', () => {
  test('pause and resume a running run; repeating either is a 409 ORC1002', async () => {
    const id = await submit(workflow('pausing', { sleep: '800ms', ops: 2 }));
    await waitForRunningTasks(api, id);
    await expectAccepted(await act(id, 'pause'), id, 'paused');
    const again = await expectProblem(await act(id, 'pause'), 409, 'ORC1002');
    expect(again.detail).toBe(`cannot pause run "${id}" while it is paused`);
    // Paused: the running task finishes, nothing new starts.
    await new Promise((r) => setTimeout(r, 1500));
    const paused = await waitForStatus(api, id, ['paused']);
    expect(paused).toMatchObject({ tasks: { succeeded: 1, pending: 1 } });
    await expectAccepted(await act(id, 'resume'), id, 'running');
    await expectProblem(await act(id, 'resume'), 409, 'ORC1002');
    await waitForStatus(api, id, ['succeeded']);
    // A run that succeeded can be neither paused nor retried.
    await expectProblem(await act(id, 'pause'), 409, 'ORC1002');
    await expectProblem(await act(id, 'retry'), 409, 'ORC1002');
  });

  test('cancel lets the running task finish; then retry runs the rest to success', async () => {
    const id = await submit(workflow('cancelling', { sleep: '600ms', ops: 3 }));
    await waitForRunningTasks(api, id);
    await expectAccepted(await act(id, 'cancel'), id, 'cancelling');
    const cancelled = await waitForStatus(api, id, ['cancelled']);
    expect(cancelled).toMatchObject({ tasks: { succeeded: 1 } });
    await expectProblem(await act(id, 'cancel'), 409, 'ORC1002');
    await expectAccepted(await act(id, 'retry'), id, 'running');
    const done = await waitForStatus(api, id, ['succeeded']);
    expect(done).toMatchObject({ tasks: { succeeded: 3, total: 3 } });
  });

  test('terminate aborts the running task at once', async () => {
    const id = await submit(workflow('terminating', { sleep: '60s', ops: 1 }));
    await waitForRunningTasks(api, id);
    const started = Date.now();
    const res = await act(id, 'terminate');
    expect(res.status).toBe(202);
    expect(((await res.json()) as { status: string }).status).toMatch(/^(cancelling|cancelled)$/);
    const done = await waitForStatus(api, id, ['cancelled']);
    expect(Date.now() - started).toBeLessThan(10_000);
    expect(done).toMatchObject({ tasks: { succeeded: 0 } });
  });

  test('rollback of a finished run is accepted and ends rolled back; a second one is a 409', async () => {
    const id = await submit(workflow('rolling-back', { ops: 1 }));
    await waitForStatus(api, id, ['succeeded']);
    const res = await act(id, 'rollback', {});
    expect(res.status).toBe(202);
    expect(((await res.json()) as { status: string }).status).toMatch(
      /^(rolling_back|rolled_back)$/,
    );
    await waitForStatus(api, id, ['rolled_back']);
    await expectProblem(await act(id, 'rollback'), 409, 'ORC1002');
  });

  test('retry of one operation of a failed run; an unknown operation is a 422 ORC1205', async () => {
    const id = await submit(failing('failing'));
    const failed = await waitForStatus(api, id, ['failed']);
    expect(failed).toMatchObject({ tasks: { failed: 1 } });
    const unknown = await expectProblem(
      await act(id, 'retry', { operation: 'fail' }),
      422,
      'ORC1205',
    );
    expect(unknown.detail).toContain('fails');
    await expectAccepted(await act(id, 'retry', { operation: 'fails' }), id, 'running');
    await waitForStatus(api, id, ['failed']);
    const metrics = await expectJson<{
      attempts: { total: number; failed: number };
      retries: number;
    }>(await api.request(`/workflows/${id}/metrics`, { as: 'viewer' }), 200);
    expect(metrics).toMatchObject({ attempts: { total: 2, failed: 2 }, retries: 1 });
  });

  test('rollback to a checkpoint the run does not have is a 422 ORC1203', async () => {
    const id = await submit(failing('no-checkpoint'));
    await waitForStatus(api, id, ['failed']);
    const problem = await expectProblem(
      await act(id, 'rollback', { to_checkpoint: 7 }),
      422,
      'ORC1203',
    );
    expect(problem.detail).toContain('no checkpoint 7');
  });

  test('bad bodies are 400s naming the field; a non-JSON body is a 415', async () => {
    const id = await submit(failing('bad-bodies'));
    await waitForStatus(api, id, ['failed']);
    const type = await expectProblem(
      await act(id, 'rollback', { to_checkpoint: 'one' }),
      400,
      'API4001',
    );
    expect(type.problems?.[0]).toMatchObject({ path: 'to_checkpoint', received: '"one"' });
    const extra = await expectProblem(await act(id, 'pause', { force: true }), 400, 'API4001');
    expect(extra.problems?.[0]).toMatchObject({ path: 'force' });
    await expectProblem(
      await api.request(`/workflows/${id}/retry`, {
        method: 'POST',
        headers: { 'Content-Type': 'text/plain' },
        body: 'operation=fails',
      }),
      415,
      'API4150',
    );
    await expectProblem(
      await api.request(`/workflows/${id}/retry`, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: '{"operation":',
      }),
      400,
      'API4001',
    );
  });

  test('every action on an unknown run is a 404 ORC1001', async () => {
    for (const action of ['pause', 'resume', 'cancel', 'terminate', 'retry', 'rollback']) {
      await expectProblem(await act('ghost-run', action), 404, 'ORC1001');
    }
  });
});
