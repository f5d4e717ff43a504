import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createTestApi, expectJson, type TestApi } from './helpers/api.ts';

let api: TestApi;
let doc: {
  openapi: string;
  info: { title: string; version: string };
  paths: Record<
    string,
    Record<
      string,
      {
        operationId: string;
        security: unknown[];
        responses: Record<string, unknown>;
        requestBody?: unknown;
        parameters?: Array<{ name: string; in: string }>;
      }
    >
  >;
  components: {
    schemas: Record<string, Record<string, unknown>>;
    securitySchemes: Record<string, unknown>;
  };
};
beforeAll(async () => {
  api = await createTestApi();
  doc = await expectJson(await api.request('/openapi.json', { as: 'viewer' }), 200);
});
afterAll(async () => {
  await api.close();
});

/** Every `$ref` in a value. */
function refs(value: unknown, found: string[] = []): string[] {
  if (Array.isArray(value)) for (const v of value) refs(v, found);
  else if (value !== null && typeof value === 'object') {
    for (const [key, v] of Object.entries(value)) {
      if (key === '$ref' && typeof v === 'string') found.push(v);
      else refs(v, found);
    }
  }
  return found;
}

describe('GET /openapi.json', () => {
  test('is an OpenAPI 3.1 document with bearer security', () => {
    expect(doc.openapi).toBe('3.1.0');
    expect(doc.info).toMatchObject({ title: 'Muster orchestrator API', version: '0.1.0' });
    expect(doc.components.securitySchemes['bearer']).toEqual(
      expect.objectContaining({ type: 'http', scheme: 'bearer' }),
    );
  });

  test('lists every route the app serves, and no route it does not serve', () => {
    const served = new Set(
      api.app.routes
        .filter((r) => r.method !== 'ALL')
        .map((r) => `${r.method.toLowerCase()} ${r.path.replace(/:([a-z]+)/g, '{$1}')}`),
    );
    const documented = new Set(
      Object.entries(doc.paths).flatMap(([path, methods]) =>
        Object.keys(methods).map((m) => `${m} ${path}`),
      ),
    );
    // The WebSocket is attached to the HTTP server, not the app.
    documented.delete('get /ws');
    expect([...documented].sort()).toEqual([...served].sort());
    expect(served.size).toBe(18);
  });

  test('every $ref resolves to a component generated from the valibot schemas', () => {
    const all = refs(doc);
    expect(all.length).toBeGreaterThan(50);
    for (const ref of all) {
      expect(ref).toMatch(/^#\/components\/schemas\/[A-Za-z]+$/);
      expect(doc.components.schemas[ref.split('/').pop()!]).toBeDefined();
    }
    // Generated, not hand-written: the workflow's own constraints are there.
    const workflow = doc.components.schemas['Workflow']!;
    expect(workflow['type']).toBe('object');
    expect(workflow['required']).toEqual(expect.arrayContaining(['name', 'operations']));
    expect(doc.components.schemas['RunSummary']!['required']).toEqual(
      expect.arrayContaining(['id', 'status', 'tasks', 'operations', 'checkpoint']),
    );
    const status = (
      doc.components.schemas['RunListItem']!['properties'] as Record<string, { enum?: string[] }>
    )['status'];
    expect(status?.enum).toEqual(expect.arrayContaining(['pending', 'rolled_back']));
  });

  test('routes state their auth, parameters and problem answers', () => {
    expect(doc.paths['/health']!['get']!.security).toEqual([]);
    const submit = doc.paths['/workflows/batch']!['post']!;
    expect(submit.security).toEqual([{ bearer: [] }]);
    expect(Object.keys(submit.responses)).toEqual(
      expect.arrayContaining(['200', '201', '400', '401', '403', '409', '413', '415', '422']),
    );
    expect(Object.keys((submit.requestBody as { content: object }).content)).toEqual(
      expect.arrayContaining(['application/json', 'application/yaml', 'text/x-cue']),
    );
    expect(submit.parameters?.map((p) => `${p.in}:${p.name}`)).toEqual(
      expect.arrayContaining(['query:validate', 'query:dry_run', 'header:Idempotency-Key']),
    );
    const list = doc.paths['/workflows']!['get']!;
    expect(list.parameters?.map((p) => p.name)).toEqual([
      'status',
      'name',
      'label',
      'limit',
      'cursor',
    ]);
    const pause = doc.paths['/workflows/{id}/pause']!['post']!;
    expect(Object.keys(pause.responses)).toEqual(
      expect.arrayContaining(['202', '401', '403', '404', '409']),
    );
    expect(refs(pause.responses['409'])).toEqual(['#/components/schemas/ProblemDetails']);
  });
});
