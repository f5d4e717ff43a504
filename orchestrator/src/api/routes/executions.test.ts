import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  createTestApi,
  expectJson,
  expectProblem,
  json,
  waitForStatus,
  type TestApi,
} from '../../../test/helpers/api.ts';

let api: TestApi;
beforeAll(async () => {
  api = await createTestApi();
});
afterAll(async () => {
  await api?.close();
});

/** A request in the reference format: write a file, then run a script, on every server. */
const request = (servers: string[], extra: Record<string, unknown> = {}) => ({
  servers,
  steps: [
    {
      name: 'write-config',
      type: 'file_write',
      params: { path: 'app/config.json', content: '{"key": "value"}' },
      required: true,
    },
    {
      name: 'run-deploy',
      type: 'script',
      params: { command: 'sh', args: ['-c', 'echo "deployed $1" > app/deployed', 'sh', 'v1.2.3'] },
      required: true,
      continueOnFailure: false,
    },
  ],
  rolloutStrategy: { type: 'Rolling', batchSize: 1, batchDelaySeconds: 0, maxFailures: 0 },
  ...extra,
});

describe('POST /executions', () => {
  test('runs a reference-format request on local servers and answers with the run id', async () => {
    const res = await api.request('/executions', json(request(['exec-1', 'exec-2'])));
    const body = await expectJson<{ id: string; name: string; status: string; created: boolean }>(
      res,
      201,
    );
    expect(body).toMatchObject({ name: 'execution', created: true });
    expect(body.id).toMatch(/^execution-/);
    expect(res.headers.get('location')).toBe(`/workflows/${body.id}/status`);
    const status = await waitForStatus(api, body.id, ['succeeded', 'failed', 'rolled_back']);
    expect(status).toMatchObject({
      status: 'succeeded',
      tasks: { total: 2, succeeded: 2 },
      operations: [expect.objectContaining({ id: 'execute', status: 'succeeded' })],
    });
    for (const server of ['exec-1', 'exec-2']) {
      const sandbox = join(api.stateDir, 'servers', server);
      expect(await readFile(join(sandbox, 'app/config.json'), 'utf8')).toBe('{"key": "value"}');
      expect(await readFile(join(sandbox, 'app/deployed'), 'utf8')).toBe('deployed v1.2.3\n');
    }
    // The run is a Muster run like any other: its plan shows the translated rollout.
    const plan = await expectJson<{ operations: Array<{ id: string; rollout: unknown }> }>(
      await api.request(`/workflows/${body.id}/plan`, { as: 'viewer' }),
      200,
    );
    expect(plan.operations[0]).toMatchObject({
      id: 'execute',
      rollout: { strategy: 'rolling', batch_size: 1, max_failures: 0 },
    });
  });

  test('?dry_run=1 answers with the translated workflow and its plan, and runs nothing', async () => {
    const before = (await api.orchestrator.store.listRuns({ limit: 100 })).items.length;
    const res = await api.request(
      '/executions?dry_run=1',
      json(request(['dry-1', 'dry-2', 'dry-3'], { rolloutStrategy: { type: 'Sequential' } })),
    );
    const body = await expectJson<{
      workflow: { operations: Array<{ rollout: { strategy: string }; parallel: boolean }> };
      plan: { tasks: unknown[] };
    }>(res, 200);
    expect(body.workflow.operations[0]).toMatchObject({
      parallel: false,
      rollout: { strategy: 'sequential' },
    });
    expect(body.plan.tasks).toHaveLength(3);
    expect((await api.orchestrator.store.listRuns({ limit: 100 })).items).toHaveLength(before);
  });

  test('a malformed request is a 400 naming each field, with a hint', async () => {
    const res = await api.request(
      '/executions',
      json({ servers: ['a'], steps: [], rolloutStrategy: { type: 'Rolling', batchSise: 2 } }),
    );
    const problem = await expectProblem(res, 400, 'API4001');
    expect(problem.problems).toEqual([
      expect.objectContaining({ path: 'steps', message: 'steps: expected at least one step' }),
      expect.objectContaining({
        path: 'rolloutStrategy.batchSise',
        hint: 'did you mean "batchSize"?',
      }),
    ]);
  });

  test('steps Muster refuses are a 422 located in the request', async () => {
    const res = await api.request(
      '/executions',
      json({
        servers: ['a'],
        steps: [{ name: 'deploy', type: 'script', params: { args: ['x'] } }],
      }),
    );
    const problem = await expectProblem(res, 422, 'MUS2001');
    expect(problem.problems).toEqual([
      expect.objectContaining({ path: expect.stringMatching(/^steps\.0\.params/) }),
    ]);
    expect(problem.problems?.[0]).not.toHaveProperty('line');
  });

  test('a repeated Idempotency-Key returns the first run', async () => {
    const init = json(request(['idem-1']), { headers: { 'Idempotency-Key': 'exec-key-1' } });
    const first = await expectJson<{ id: string }>(await api.request('/executions', init), 201);
    const again = await expectJson<{ id: string; created: boolean }>(
      await api.request('/executions', init),
      200,
    );
    expect(again).toMatchObject({ id: first.id, created: false });
    await waitForStatus(api, first.id, ['succeeded', 'failed', 'rolled_back']);
  });

  test('needs the operator role', async () => {
    await expectProblem(
      await api.request('/executions', json(request(['x']), { as: 'viewer' })),
      403,
      'API4030',
    );
  });
});
