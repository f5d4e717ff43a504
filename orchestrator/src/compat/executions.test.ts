import * as v from 'valibot';
import { describe, expect, test } from 'vitest';
import { ServerSchema, WorkflowSchema, type Server } from '../../../schemas/src/workflow.ts';
import {
  parseExecutionRequest,
  requestPath,
  translateExecution,
  type ExecutionRequest,
} from './executions.ts';

/** The request of the reference's README ("Trigger an Orchestration"). */
const REFERENCE = {
  servers: ['server-1', 'server-2', 'server-3'],
  steps: [
    {
      name: 'deploy',
      type: 'script',
      params: { command: 'deploy.sh', args: ['--version', 'v1.2.3'] },
      required: true,
    },
  ],
  rolloutStrategy: { type: 'Rolling', batchSize: 1, batchDelaySeconds: 30, maxFailures: 1 },
};

function parse(value: unknown): ExecutionRequest {
  const parsed = parseExecutionRequest(value);
  if (!parsed.success) throw new Error(JSON.stringify(parsed.problems));
  return parsed.output;
}

function problemsOf(value: unknown) {
  const parsed = parseExecutionRequest(value);
  if (parsed.success) throw new Error('expected problems');
  return parsed.problems;
}

/** Translates and parses with the workflow schema, as Muster will. */
function workflowOf(value: unknown, inventory?: Server[]) {
  const translated = translateExecution(parse(value), inventory ? { inventory } : {});
  const parsed = v.safeParse(WorkflowSchema, translated);
  if (!parsed.success) throw new Error(JSON.stringify(parsed.issues.map((i) => i.message)));
  return parsed.output;
}

describe('translateExecution', () => {
  test("the reference's request becomes one rolling update over its servers", () => {
    const wf = workflowOf(REFERENCE);
    expect(wf.name).toBe('execution');
    expect(wf.labels).toEqual({ source: 'executions' });
    expect(wf.servers.map((s) => [s.name, s.provider])).toEqual([
      ['server-1', 'local'],
      ['server-2', 'local'],
      ['server-3', 'local'],
    ]);
    expect(wf.operations).toHaveLength(1);
    const [op] = wf.operations;
    expect(op).toMatchObject({
      id: 'execute',
      type: 'update',
      target: 'server',
      items: ['server-1', 'server-2', 'server-3'],
      parallel: true,
      on_failure: 'rollback',
      rollout: {
        strategy: 'rolling',
        batch_size: 1,
        batch_delay: 30,
        max_failures: 1,
      },
    });
    expect(op?.steps).toEqual([
      {
        name: 'deploy',
        type: 'script',
        params: { command: 'deploy.sh', args: ['--version', 'v1.2.3'] },
        required: true,
        continue_on_failure: false,
      },
    ]);
  });

  test.each([
    ['Parallel', { strategy: 'parallel' }, true],
    ['Sequential', { strategy: 'sequential' }, false],
    ['rolling', { strategy: 'rolling', batch_size: 2, batch_delay: 5 }, true],
    ['CANARY', { strategy: 'canary', batch_size: 2, batch_delay: 5, canary_percentage: 20 }, true],
  ] as const)('type %s maps to %o', (type, rollout, parallel) => {
    const wf = workflowOf({
      ...REFERENCE,
      rolloutStrategy: {
        type,
        batchSize: 2,
        batchDelaySeconds: 5,
        maxFailures: 0,
        canaryPercentage: 20,
      },
    });
    const op = wf.operations[0]!;
    expect(op.parallel).toBe(parallel);
    // Fields that mean nothing to a strategy are dropped; the rest keep Muster's defaults.
    expect(op.rollout).toMatchObject({ ...rollout, max_failures: 0 });
    if (rollout.strategy !== 'canary') expect(op.rollout?.canary_percentage).toBe(10);
    if (rollout.strategy === 'parallel' || rollout.strategy === 'sequential') {
      expect(op.rollout?.batch_size).toBe(1);
    }
  });

  test('without a rollout strategy the servers run in parallel', () => {
    const wf = workflowOf({ servers: ['a'], steps: [{ name: 'hi', type: 'echo', params: {} }] });
    expect(wf.operations[0]?.rollout?.strategy).toBe('parallel');
  });

  test('canaryPromotion is passed on; Muster waits for approval by default', () => {
    const canary = (extra: object) =>
      workflowOf({ ...REFERENCE, rolloutStrategy: { type: 'Canary', ...extra } }).operations[0]!
        .rollout;
    expect(canary({})?.canary_promotion).toBe('manual');
    expect(canary({ canaryPromotion: 'auto' })?.canary_promotion).toBe('auto');
  });

  test('required defaults to true, and continueOnFailure becomes continue_on_failure', () => {
    const wf = workflowOf({
      servers: ['a'],
      steps: [
        { name: 'must', type: 'echo', params: { message: 'x' } },
        { name: 'may', type: 'echo', params: { message: 'y' }, required: false },
        { name: 'goes-on', type: 'echo', params: { message: 'z' }, continueOnFailure: true },
      ],
    });
    expect(wf.operations[0]!.steps.map((s) => [s.name, s.required, s.continue_on_failure])).toEqual(
      [
        ['must', true, false],
        ['may', false, false],
        ['goes-on', true, true],
      ],
    );
  });

  test('servers in the inventory keep their provider; others are local', () => {
    const inventory: Server[] = [
      v.parse(ServerSchema, {
        name: 'server-2',
        provider: 'ssh',
        address: '10.0.0.2',
        ssh: { user: 'deploy' },
      }),
    ];
    const wf = workflowOf(REFERENCE, inventory);
    expect(wf.servers.map((s) => s.provider)).toEqual(['local', 'ssh', 'local']);
    expect(wf.servers[1]).toMatchObject({ address: '10.0.0.2', ssh: { user: 'deploy', port: 22 } });
  });

  test('a server may be given whole, as a Muster extension', () => {
    const wf = workflowOf({
      ...REFERENCE,
      servers: ['server-1', { name: 'edge-1', provider: 'local', labels: { tier: 'edge' } }],
    });
    expect(wf.servers.map((s) => s.name)).toEqual(['server-1', 'edge-1']);
    expect(wf.servers[1]?.labels).toEqual({ tier: 'edge' });
    expect(wf.operations[0]?.items).toEqual(['server-1', 'edge-1']);
  });

  test('name and labels are Muster extensions', () => {
    const wf = workflowOf({ ...REFERENCE, name: 'deploy-v1.2.3', labels: { team: 'web' } });
    expect(wf.name).toBe('deploy-v1.2.3');
    expect(wf.labels).toEqual({ source: 'executions', team: 'web' });
  });
});

describe('parseExecutionRequest', () => {
  test('a misspelt field is named, with the field it was meant to be', () => {
    const problems = problemsOf({
      ...REFERENCE,
      rolloutStrategy: { type: 'Rolling', maxFailure: 1 },
    });
    expect(problems).toEqual([
      {
        code: 'unknown-field',
        path: 'rolloutStrategy.maxFailure',
        message: 'rolloutStrategy.maxFailure: unknown field',
        expected:
          'one of type, batchSize, batchDelaySeconds, maxFailures, canaryPercentage, canaryPromotion',
        received: '"maxFailure"',
        hint: 'did you mean "maxFailures"?',
      },
    ]);
    expect(problemsOf({ ...REFERENCE, step: [] })[0]).toMatchObject({
      path: 'step',
      hint: 'did you mean "steps"?',
    });
  });

  test('an unknown rollout type lists the known ones', () => {
    const [problem] = problemsOf({ ...REFERENCE, rolloutStrategy: { type: 'BlueGreen' } });
    expect(problem).toMatchObject({
      path: 'rolloutStrategy.type',
      message: 'rolloutStrategy.type: expected one of Parallel, Sequential, Rolling, Canary',
      received: '"BlueGreen"',
    });
  });

  test('every problem is reported, each with its path', () => {
    const problems = problemsOf({
      servers: ['web.example.com', 'ok-1'],
      steps: [{ name: '', type: 'shell' }],
      rolloutStrategy: { type: 'Rolling', batchSize: 0, canaryPercentage: 150 },
    });
    expect(problems.map((p) => p.path)).toEqual([
      'servers.0',
      'steps.0.name',
      'steps.0.type',
      'rolloutStrategy.batchSize',
      'rolloutStrategy.canaryPercentage',
    ]);
    expect(problems[0]?.message).toContain('letters, digits');
    expect(problems[2]?.message).toBe(
      'steps.0.type: expected one of echo, script, sleep, file_write, http',
    );
  });

  test('needs servers and steps, each server once', () => {
    expect(problemsOf({}).map((p) => p.path)).toEqual(['servers', 'steps']);
    expect(problemsOf({ servers: [], steps: [] }).map((p) => p.message)).toEqual([
      'servers: expected at least one server',
      'steps: expected at least one step',
    ]);
    expect(problemsOf({ ...REFERENCE, servers: ['a', 'b', 'a'] })).toEqual([
      expect.objectContaining({
        code: 'duplicate-server',
        path: 'servers.2',
        message: 'servers.2: "a" is listed twice; list each server once',
      }),
    ]);
  });

  test('a whole server is checked by the server schema', () => {
    const [problem] = problemsOf({ ...REFERENCE, servers: [{ name: 'x', provder: 'ssh' }] });
    expect(problem).toMatchObject({ path: 'servers.0.provder', hint: 'did you mean "provider"?' });
  });
});

describe('requestPath', () => {
  test("locates the translated workflow's problems in the request", () => {
    expect(requestPath('operations[0].steps[1].params.args[0]')).toBe('steps.1.params.args.0');
    expect(requestPath('servers[2].address')).toBe('servers.2.address');
    expect(requestPath('name')).toBe('name');
  });
});
