import { readFile } from 'node:fs/promises';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { stringify } from 'yaml';
import * as v from 'valibot';
import {
  DryRunResultSchema,
  RunListSchema,
  RunMetricsSchema,
  RunSummarySchema,
} from '../src/api/schemas.ts';
import {
  createTestApi,
  expectJson,
  expectProblem,
  json,
  waitForStatus,
  workflow,
  type TestApi,
} from './helpers/api.ts';

let api: TestApi;
beforeAll(async () => {
  api = await createTestApi({ bodyLimit: 64 * 1024 });
});
afterAll(async () => {
  await api.close();
});

const runCount = async () => (await api.orchestrator.store.listRuns({ limit: 500 })).items.length;

describe('POST /workflows/batch', () => {
  describe('submit', () => {
    test('a JSON workflow creates a run that starts at once and succeeds', async () => {
      const res = await api.request('/workflows/batch', json(workflow('submit-json')));
      const body = await expectJson<{ id: string; name: string; status: string; created: boolean }>(
        res,
        201,
      );
      expect(body).toMatchObject({ name: 'submit-json', status: 'running', created: true });
      expect(body.id).toMatch(/^submit-json-[a-z0-9]+-[0-9a-f]{8}$/);
      expect(res.headers.get('location')).toBe(`/workflows/${body.id}/status`);
      const status = await waitForStatus(api, body.id, ['succeeded', 'failed']);
      expect(v.is(RunSummarySchema, status)).toBe(true);
      expect(status).toMatchObject({ status: 'succeeded', tasks: { total: 2, succeeded: 2 } });
    });

    test('YAML (application/yaml) and an envelope with YAML source and labels both run', async () => {
      const yaml = stringify(workflow('submit-yaml'));
      const raw = await api.request('/workflows/batch', {
        method: 'POST',
        headers: { 'Content-Type': 'application/yaml' },
        body: yaml,
      });
      const a = await expectJson<{ id: string }>(raw, 201);
      const wrapped = await api.request(
        '/workflows/batch',
        json({ source: yaml, format: 'yaml', labels: { team: 'core' } }),
      );
      const b = await expectJson<{ id: string }>(wrapped, 201);
      expect(b.id).not.toBe(a.id);
      const run = await api.orchestrator.store.getRun(b.id);
      expect(run?.labels).toEqual({ team: 'core' });
      await waitForStatus(api, a.id, ['succeeded']);
      await waitForStatus(api, b.id, ['succeeded']);
    });

    test('CUE source (text/x-cue) is evaluated against the schema; ?dry_run=1 answers the plan', async () => {
      const cue = await readFile(new URL('../../examples/quickstart.cue', import.meta.url), 'utf8');
      const before = await runCount();
      const res = await api.request('/workflows/batch?dry_run=1', {
        method: 'POST',
        headers: { 'Content-Type': 'text/x-cue' },
        body: cue,
      });
      const body = await expectJson<v.InferOutput<typeof DryRunResultSchema>>(res, 200);
      expect(v.is(DryRunResultSchema, body)).toBe(true);
      expect(body.plan.workflow).toBe('quickstart');
      expect(body.plan.operations.map((o) => [o.id, o.level])).toEqual([
        ['create-servers', 0],
        ['install-tools', 1],
        ['install-apps', 2],
        ['hello', 3],
        ['health', 4],
      ]);
      expect(body.plan.operations[1]?.depends_on).toEqual(['create-servers']);
      expect(body.plan.tasks.length).toBeGreaterThan(5);
      expect(await runCount()).toBe(before);
    });
  });

  describe('inputs', () => {
    const withInputs = {
      name: 'with-inputs',
      inputs: {
        greeting: { type: 'string', required: true },
        replicas: { type: 'int', default: 1 },
      },
      environments: { prod: { inputs: { replicas: 5 }, labels: { tier: 'prod' } } },
      rollback_strategy: { enabled: false },
      operations: [
        {
          id: 'greet',
          type: 'update',
          target: 'cluster',
          items: ['x'],
          steps: [{ name: 'say', type: 'echo', params: { message: '{{ inputs.greeting }}' } }],
        },
      ],
    };

    test('envelope inputs and environment are typed, stored with the run, and used by its steps', async () => {
      const res = await api.request(
        '/workflows/batch',
        json({
          source: JSON.stringify(withInputs),
          format: 'json',
          inputs: { greeting: 'hello api' },
          environment: 'prod',
        }),
      );
      const { id } = await expectJson<{ id: string }>(res, 201);
      await waitForStatus(api, id, ['succeeded']);
      const run = await api.orchestrator.store.getRun(id);
      const inputs = (run?.workflow as { inputs: Record<string, { default?: unknown }> }).inputs;
      expect(inputs['greeting']?.default).toBe('hello api');
      expect(inputs['replicas']?.default).toBe(5);
      expect(run?.labels).toMatchObject({ tier: 'prod', 'muster.dev/environment': 'prod' });
      const logs = await expectJson<{ items: Array<{ type: string; data: { line?: string } }> }>(
        await api.request(`/workflows/${id}/logs`, { as: 'viewer' }),
        200,
      );
      expect(logs.items.some((e) => e.data.line === 'hello api')).toBe(true);
    });

    test('?set= on a raw body, and a value of the wrong type is a 422 naming the input', async () => {
      const ok = await api.request('/workflows/batch?validate=1&set=greeting=hi&set=replicas=2', {
        method: 'POST',
        headers: { 'Content-Type': 'application/yaml' },
        body: stringify(withInputs),
      });
      expect(await expectJson(ok, 200)).toEqual({ valid: true, problems: [] });
      const bad = await api.request(
        '/workflows/batch?validate=1',
        json({ source: JSON.stringify(withInputs), format: 'json', inputs: { replicas: 'many' } }),
      );
      const problem = await expectProblem(bad, 422, 'MUS2001');
      const text = JSON.stringify(problem.problems);
      expect(text).toContain('replicas');
      expect(text).toContain('greeting');
    });
  });

  describe('validate and dry run', () => {
    test('?validate=1 answers valid without creating a run', async () => {
      const before = await runCount();
      const res = await api.request('/workflows/batch?validate=1', json(workflow('only-valid')));
      expect(await expectJson(res, 200)).toEqual({ valid: true, problems: [] });
      expect(await runCount()).toBe(before);
    });

    test('an invalid workflow is a 422 listing every problem with its path and line in the body', async () => {
      const bad = workflow('broken');
      (bad.operations[1] as { depends_on?: string[] }).depends_on = ['step-9'];
      (bad.operations[0] as Record<string, unknown>)['tyme'] = 'oops';
      const text = JSON.stringify(bad, null, 2);
      const before = await runCount();
      for (const query of ['?validate=1', '?dry_run=1', '']) {
        const res = await api.request(`/workflows/batch${query}`, {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: text,
        });
        const problem = await expectProblem(res, 422, 'MUS2001');
        expect(problem.problems?.length).toBeGreaterThan(0);
        expect(problem.problems?.[0]).toMatchObject({
          path: 'operations[0].tyme',
          file: '<request body>',
          line: text.split('\n').findIndex((l) => l.includes('"tyme"')) + 1,
        });
      }
      expect(await runCount()).toBe(before);
    });

    test('planning problems name the field and suggest the fix', async () => {
      const bad = workflow('unknown-dep');
      (bad.operations[1] as { depends_on?: string[] }).depends_on = ['step-l'];
      const res = await api.request('/workflows/batch?validate=1', json(bad));
      const problem = await expectProblem(res, 422, 'MUS2001');
      expect(problem.problems).toEqual(
        expect.arrayContaining([
          expect.objectContaining({
            path: 'operations[1].depends_on[0]',
            hint: expect.stringContaining('step-1'),
          }),
        ]),
      );
    });

    test('malformed JSON is a 422 located at the syntax error', async () => {
      const res = await api.request('/workflows/batch?validate=1', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: '{\n  "name": "x",\n  "operations": [,]\n}',
      });
      const problem = await expectProblem(res, 422, 'MUS2001');
      expect(problem.problems?.[0]).toMatchObject({ line: 3 });
    });
  });

  describe('bad requests', () => {
    test('an unknown content type is a 415 naming the accepted ones', async () => {
      const res = await api.request('/workflows/batch', {
        method: 'POST',
        headers: { 'Content-Type': 'text/plain' },
        body: 'name: x',
      });
      const problem = await expectProblem(res, 415, 'API4150');
      expect(problem.detail).toContain('text/x-cue');
    });

    test('an empty body, a bad flag or a bad envelope is a 400 naming the field', async () => {
      await expectProblem(
        await api.request('/workflows/batch', {
          method: 'POST',
          headers: { 'Content-Type': 'application/json' },
          body: ' ',
        }),
        400,
        'API4001',
      );
      const flag = await expectProblem(
        await api.request('/workflows/batch?validate=yes', json(workflow('x'))),
        400,
        'API4001',
      );
      expect(flag.problems?.[0]).toMatchObject({ path: 'validate', code: 'query' });
      const envelope = await expectProblem(
        await api.request('/workflows/batch', json({ source: 'name: x', format: 'toml' })),
        400,
        'API4001',
      );
      expect(envelope.problems?.[0]).toMatchObject({ path: 'format', received: '"toml"' });
      const extra = await expectProblem(
        await api.request('/workflows/batch', json({ source: 'x', format: 'yaml', lables: {} })),
        400,
        'API4001',
      );
      expect(extra.problems?.[0]).toMatchObject({
        path: 'lables',
        message: 'lables: unknown field',
      });
    });

    test('a body over the limit is a 413, by Content-Length or while streaming', async () => {
      const big = JSON.stringify({ ...workflow('big'), description: 'x'.repeat(70 * 1024) });
      const declared = await api.request('/workflows/batch', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'Content-Length': String(big.length) },
        body: big,
      });
      const problem = await expectProblem(declared, 413, 'API4130');
      expect(problem.detail).toContain(`${64 * 1024} bytes`);
      const bytes = new TextEncoder().encode(big);
      const streamed = await api.request('/workflows/batch', {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body: new ReadableStream({
          start(controller) {
            for (let i = 0; i < bytes.length; i += 8192)
              controller.enqueue(bytes.slice(i, i + 8192));
            controller.close();
          },
        }),
        duplex: 'half',
      } as RequestInit);
      await expectProblem(streamed, 413, 'API4130');
    });

    test('the token is checked before the body is read: no token and a large body is a 401', async () => {
      const res = await api.request('/workflows/batch', {
        as: 'none',
        method: 'POST',
        headers: { 'Content-Type': 'application/json', 'Content-Length': String(10 * 1024 * 1024) },
        body: 'x'.repeat(100),
      });
      await expectProblem(res, 401, 'API4010');
      expect(res.headers.get('www-authenticate')).toBe('Bearer realm="muster"');
    });
  });

  describe('idempotency', () => {
    test('a repeated Idempotency-Key answers 200 with the same run and created: false', async () => {
      const init = json(workflow('idem'), { headers: { 'Idempotency-Key': 'deploy-42' } });
      const first = await expectJson<{ id: string; created: boolean }>(
        await api.request('/workflows/batch', init),
        201,
      );
      const again = await expectJson<{ id: string; created: boolean; status: string }>(
        await api.request('/workflows/batch', init),
        200,
      );
      expect(again).toMatchObject({ id: first.id, created: false, name: 'idem' });
      // The same key in the envelope names the same run.
      const viaBody = await expectJson<{ id: string; created: boolean }>(
        await api.request(
          '/workflows/batch',
          json({
            source: JSON.stringify(workflow('idem')),
            format: 'json',
            idempotency_key: 'deploy-42',
          }),
        ),
        200,
      );
      expect(viaBody).toMatchObject({ id: first.id, created: false });
      await waitForStatus(api, first.id, ['succeeded']);
    });

    test('the key reused for a different workflow is a 409; header and body disagreeing is a 400', async () => {
      await api.request(
        '/workflows/batch',
        json(workflow('idem-a'), { headers: { 'Idempotency-Key': 'k-conflict' } }),
      );
      const other = await api.request(
        '/workflows/batch',
        json(workflow('idem-b'), { headers: { 'Idempotency-Key': 'k-conflict' } }),
      );
      const problem = await expectProblem(other, 409, 'API4090');
      expect(problem.detail).toContain('k-conflict');
      const mixed = await api.request(
        '/workflows/batch',
        json(
          { source: 'name: a', format: 'yaml', idempotency_key: 'one' },
          { headers: { 'Idempotency-Key': 'two' } },
        ),
      );
      await expectProblem(mixed, 400, 'API4001');
    });

    test('concurrent submits with one key create exactly one run', async () => {
      const init = () => json(workflow('idem-race'), { headers: { 'Idempotency-Key': 'race-1' } });
      const answers = await Promise.all(
        Array.from({ length: 6 }, () => api.request('/workflows/batch', init())),
      );
      const bodies = (await Promise.all(answers.map((r) => r.json()))) as Array<{
        id: string;
        created: boolean;
      }>;
      expect(answers.map((r) => r.status).sort()).toEqual([200, 200, 200, 200, 200, 201]);
      expect(new Set(bodies.map((b) => b.id)).size).toBe(1);
      expect(bodies.filter((b) => b.created)).toHaveLength(1);
      await waitForStatus(api, bodies[0]!.id, ['succeeded']);
    });
  });
});

describe('GET /workflows', () => {
  let ids: string[];
  beforeAll(async () => {
    // Created through the orchestrator and never driven: they stay pending, which lists fast.
    const { loaded, plan } = await api.orchestrator.prepare(JSON.stringify(workflow('paged')), {
      format: 'json',
    });
    ids = [];
    for (let i = 0; i < 7; i++) {
      const { run } = await api.orchestrator.submit(loaded.workflow, plan, {
        labels: { shard: i % 2 === 0 ? 'even' : 'odd' },
      });
      ids.push(run.id);
    }
  });

  test('pages newest first with next_cursor until null, without repeats', async () => {
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res = await api.request(
        `/workflows?name=paged&limit=3${cursor ? `&cursor=${cursor}` : ''}`,
        { as: 'viewer' },
      );
      const page = await expectJson<v.InferOutput<typeof RunListSchema>>(res, 200);
      expect(v.is(RunListSchema, page)).toBe(true);
      seen.push(...page.items.map((r) => r.id));
      cursor = page.next_cursor;
      pages++;
    } while (cursor && pages < 10);
    expect(pages).toBe(3);
    expect(seen).toEqual([...ids].reverse());
  });

  test('filters by status, name and label', async () => {
    const odd = await expectJson<{ items: Array<{ id: string; labels: Record<string, string> }> }>(
      await api.request('/workflows?label=shard=odd&status=pending', { as: 'viewer' }),
      200,
    );
    expect(odd.items.map((r) => r.id)).toEqual([ids[5], ids[3], ids[1]]);
    expect(odd.items.every((r) => r.labels['shard'] === 'odd')).toBe(true);
    const none = await expectJson<{ items: unknown[] }>(
      await api.request('/workflows?name=paged&status=succeeded', { as: 'viewer' }),
      200,
    );
    expect(none.items).toEqual([]);
  });

  test('a bad status, limit or cursor is a 400 naming the parameter', async () => {
    const status = await expectProblem(
      await api.request('/workflows?status=done', { as: 'viewer' }),
      400,
      'API4001',
    );
    expect(status.problems?.[0]).toMatchObject({ path: 'status', received: '"done"' });
    expect(status.detail).toContain('?status=');
    const limit = await expectProblem(
      await api.request('/workflows?limit=0', { as: 'viewer' }),
      400,
      'API4001',
    );
    expect(limit.problems?.[0]).toMatchObject({ path: 'limit' });
    await expectProblem(
      await api.request('/workflows?limit=abc', { as: 'viewer' }),
      400,
      'API4001',
    );
    const cursor = await expectProblem(
      await api.request('/workflows?cursor=bm90LWEtY3Vyc29y', { as: 'viewer' }),
      400,
      'API4001',
    );
    expect(cursor.problems?.[0]).toMatchObject({ path: 'cursor' });
  });
});

describe('a run by id', () => {
  let id: string;
  beforeAll(async () => {
    const res = await api.request('/workflows/batch', json(workflow('by-id', { items: 2 })));
    id = (await expectJson<{ id: string }>(res, 201)).id;
    await waitForStatus(api, id, ['succeeded']);
  });

  test('/status is the run summary', async () => {
    const body = await expectJson<v.InferOutput<typeof RunSummarySchema>>(
      await api.request(`/workflows/${id}/status`, { as: 'viewer' }),
      200,
    );
    expect(v.is(RunSummarySchema, body)).toBe(true);
    expect(body.operations.map((o) => [o.id, o.status, o.tasks.succeeded])).toEqual([
      ['step-1', 'succeeded', 2],
      ['step-2', 'succeeded', 2],
    ]);
    expect(body.duration_ms).toBeGreaterThanOrEqual(0);
  });

  test('/plan is the JSON plan the run executes', async () => {
    const res = await api.request(`/workflows/${id}/plan`, { as: 'viewer' });
    expect(res.headers.get('content-type')).toContain('application/json');
    const plan = await expectJson<{
      workflow: string;
      tasks: Array<{ id: string }>;
      edges: unknown[];
    }>(res, 200);
    expect(plan.workflow).toBe('by-id');
    expect(plan.tasks.map((t) => t.id)).toEqual([
      'step-1:item-1',
      'step-1:item-2',
      'step-2:item-1',
      'step-2:item-2',
    ]);
    expect(plan.edges.length).toBe(4);
  });

  test('/metrics counts tasks, attempts and durations per operation', async () => {
    const body = await expectJson<v.InferOutput<typeof RunMetricsSchema>>(
      await api.request(`/workflows/${id}/metrics`, { as: 'viewer' }),
      200,
    );
    expect(v.is(RunMetricsSchema, body)).toBe(true);
    expect(body).toMatchObject({
      id,
      status: 'succeeded',
      tasks: { total: 4, succeeded: 4 },
      attempts: { total: 4, succeeded: 4, failed: 0 },
      retries: 0,
    });
    expect(body.operations[0]?.task_duration.count).toBe(2);
    expect(body.operations[0]?.task_duration.max_ms).toBeGreaterThanOrEqual(
      body.operations[0]!.task_duration.min_ms!,
    );
  });

  test('/logs pages the event log', async () => {
    const first = await expectJson<{
      items: Array<{ seq: number; type: string; run_id: string }>;
      next_after: number | null;
    }>(await api.request(`/workflows/${id}/logs?limit=3`, { as: 'viewer' }), 200);
    expect(first.items.map((e) => e.seq)).toEqual([1, 2, 3]);
    expect(first.items[0]).toMatchObject({ type: 'run:started', run_id: id });
    expect(first.next_after).toBe(3);
  });

  test('an unknown run is a 404 ORC1001 on every read', async () => {
    for (const route of ['status', 'plan', 'metrics', 'logs']) {
      const problem = await expectProblem(
        await api.request(`/workflows/no-such-run/${route}`, { as: 'viewer' }),
        404,
        'ORC1001',
      );
      expect(problem.detail).toContain('no-such-run');
    }
  });

  test('an unknown route is a 404 problem', async () => {
    const problem = await expectProblem(
      await api.request('/workflows/x/explode', { as: 'viewer' }),
      404,
      'API4040',
    );
    expect(problem.detail).toContain('/workflows/x/explode');
  });
});
