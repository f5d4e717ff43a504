import * as v from 'valibot';
import { describe, expect, test } from 'vitest';
import { parseDuration } from './duration.ts';
import { StepRegistryError } from './errors.ts';
import { _step, _stepFailure, _testContext } from './fixtures/context.ts';
import { checkStepParams, createStepRegistry, rollbackStep, runStep } from './registry.ts';
import { delay } from './sleep.ts';
import { StepFailure, type StepContext, type StepHandler } from './types.ts';

/** A registry with one custom handler built from `execute` (and `rollback`). */
function withHandler(
  execute: StepHandler<{ n: number }>['execute'],
  rollback?: StepHandler<{ n: number }>['rollback'],
) {
  const registry = createStepRegistry();
  const calls: Array<{ params: unknown; ctx: StepContext }> = [];
  registry.register({
    type: 'probe',
    params: v.strictObject({ n: v.optional(v.number(), 7) }),
    async execute(params, ctx) {
      calls.push({ params, ctx });
      return execute(params, ctx);
    },
    ...(rollback ? { rollback } : {}),
  } satisfies StepHandler<{ n: number }>);
  return { registry, calls };
}

const probe = (extra: Partial<Parameters<typeof _step>[0]> = {}) =>
  _step({ name: 'probe-step', type: 'custom', handler: 'probe', ...extra });

describe('registry', () => {
  test('has the built-ins by default, and none when asked', () => {
    expect(createStepRegistry().types()).toEqual(['echo', 'file_write', 'http', 'script', 'sleep']);
    expect(createStepRegistry({ builtins: false }).types()).toEqual([]);
  });

  test('refuses a second handler of the same type', () => {
    const registry = createStepRegistry();
    const echo = registry.get('echo');
    expect(echo).toBeDefined();
    expect(() => registry.register({ ...echo!, type: 'echo' })).toThrow(StepRegistryError);
    expect(() => registry.register({ ...echo!, type: 'echo' })).toThrow(
      '[ORC1401] a step handler of type "echo" is already registered',
    );
  });

  test.each([
    [null, 'must be an object { type, params, execute }, found null'],
    [{ params: v.object({}), execute: async () => {} }, 'needs a "type"'],
    [{ type: 'custom', params: v.object({}), execute: async () => {} }, 'reserved type "custom"'],
    [
      { type: 'x', params: { n: 1 }, execute: async () => {} },
      '("x") needs "params": a valibot schema',
    ],
    [{ type: 'x', params: v.object({}) }, '("x") needs "execute"'],
    [
      { type: 'x', params: v.object({}), execute: async () => {}, rollback: 1 },
      '"rollback" that is not a function',
    ],
  ])('refuses a malformed handler %#', (handler, message) => {
    expect(() => createStepRegistry().register(handler as never)).toThrow(message);
  });
});

describe('runStep', () => {
  test('passes the parsed params (defaults filled) and the context', async () => {
    const { registry, calls } = withHandler(async () => ({ outputs: { a: '1' } }));
    const ctx = _testContext('/tmp', {
      server: { name: 'web-1', address: '10.0.0.1', labels: { role: 'web' } },
      env: { MUSTER_RUN_ID: 'run-1' },
    });
    const result = await runStep(registry, probe(), ctx);
    expect(result).toEqual({ outputs: { a: '1' } });
    expect(calls).toHaveLength(1);
    const call = calls[0]!;
    expect(call.params).toEqual({ n: 7 });
    expect(call.ctx).toMatchObject({
      runId: 'run-1',
      taskId: 'deploy:web@web-1',
      attempt: 1,
      workdir: '/tmp',
      server: { name: 'web-1', address: '10.0.0.1', labels: { role: 'web' } },
      env: { MUSTER_RUN_ID: 'run-1' },
    });
    call.ctx.log('stdout', 'through');
    expect(ctx.lines).toEqual([{ stream: 'stdout', line: 'through' }]);
  });

  test('a handler that returns nothing succeeds with {}', async () => {
    const { registry } = withHandler(async () => {});
    expect(await runStep(registry, probe(), _testContext('/tmp'))).toEqual({});
  });

  test('invalid params fail before execute, naming the step and the field', async () => {
    const { registry, calls } = withHandler(async () => {});
    const f = await _stepFailure(
      runStep(registry, probe({ params: { n: 'seven', colour: 1 } }), _testContext('/tmp')),
    );
    expect(calls).toHaveLength(0);
    expect(f.type).toBe('invalid-params');
    expect(f.nonRetryable).toBe(true);
    expect(f.message).toBe(
      'step "probe-step": invalid params for "probe": params.n: invalid type (expected number, found "seven"); ' +
        'params.colour: unknown parameter "colour" (expected one of "n", found "colour")',
    );
    expect(f.details?.['problems']).toHaveLength(2);
  });

  test('an unknown custom handler is non-retryable, with a did-you-mean', async () => {
    const { registry } = withHandler(async () => {});
    const f = await _stepFailure(
      runStep(registry, probe({ handler: 'prob' }), _testContext('/tmp')),
    );
    expect(f.type).toBe('unknown-handler');
    expect(f.nonRetryable).toBe(true);
    expect(f.message).toBe(
      'step "probe-step": handler: no custom step handler named "prob" is registered (registered: probe); did you mean "probe"?',
    );
  });

  test('a custom step without handler says what to add', async () => {
    const f = await _stepFailure(
      runStep(createStepRegistry(), _step({ name: 's', type: 'custom' }), _testContext('/tmp')),
    );
    expect(f.type).toBe('unknown-handler');
    expect(f.message).toContain('a step of type "custom" needs "handler"');
    expect(f.message).toContain('load yours with --handlers or MUSTER_HANDLERS');
  });

  test('a built-in type missing from the registry is unknown-handler', async () => {
    const f = await _stepFailure(
      runStep(
        createStepRegistry({ builtins: false }),
        _step({ name: 's', type: 'echo', params: { message: 'x' } }),
        _testContext('/tmp'),
      ),
    );
    expect(f.type).toBe('unknown-handler');
  });

  test('anything else thrown becomes a retryable failure of type error', async () => {
    const { registry } = withHandler(async () => {
      throw new RangeError('disk on fire');
    });
    const f = await _stepFailure(runStep(registry, probe(), _testContext('/tmp')));
    expect(f.type).toBe('error');
    expect(f.nonRetryable).toBe(false);
    expect(f.message).toBe('step "probe-step": disk on fire');
    expect(f.details).toEqual({ name: 'RangeError' });
    expect(f.cause).toBeInstanceOf(RangeError);

    const strings = withHandler(async () => {
      throw 'just a string';
    });
    expect(
      (await _stepFailure(runStep(strings.registry, probe(), _testContext('/tmp')))).message,
    ).toBe('step "probe-step": just a string');
  });

  test("a handler's StepFailure keeps its type, retryability and details", async () => {
    const { registry } = withHandler(async () => {
      throw new StepFailure('quota', 'over quota', { nonRetryable: true, details: { used: 11 } });
    });
    const f = await _stepFailure(runStep(registry, probe(), _testContext('/tmp')));
    expect(f.toJSON()).toEqual({
      type: 'quota',
      message: 'step "probe-step": over quota',
      nonRetryable: true,
      details: { used: 11 },
    });
  });

  test('outputs that are not strings are an invalid-result', async () => {
    const { registry } = withHandler(async () => ({ outputs: { n: 1 as unknown as string } }));
    const f = await _stepFailure(runStep(registry, probe(), _testContext('/tmp')));
    expect(f.type).toBe('invalid-result');
    expect(f.message).toContain('handler "probe" returned outputs that are not all strings');
  });

  describe('timeout and abort', () => {
    test('step.timeout aborts the signal and fails with timeout', async () => {
      let seen: unknown;
      const { registry } = withHandler(async (_p, ctx) => {
        try {
          await delay(60_000, ctx.signal);
        } catch (e: unknown) {
          seen = e;
          throw e;
        }
      });
      const started = Date.now();
      const f = await _stepFailure(runStep(registry, probe({ timeout: 1 }), _testContext('/tmp')));
      expect(Date.now() - started).toBeLessThan(1500);
      expect(f.type).toBe('timeout');
      expect(f.nonRetryable).toBe(false);
      expect(f.details).toEqual({ timeout: 1 });
      expect(seen).toBeInstanceOf(StepFailure);
    });

    test('a handler that ignores its signal is abandoned after the grace period', async () => {
      const { registry } = withHandler(() => new Promise(() => {}));
      const ctx = _testContext('/tmp');
      const running = runStep(registry, probe(), ctx, { abortGraceMs: 100 });
      setTimeout(() => ctx.controller.abort(), 20);
      const f = await _stepFailure(running);
      expect(f.type).toBe('cancelled');
      expect(ctx.linesOf('info')).toEqual([
        'step "probe-step": the handler did not stop within 100 ms of being aborted; abandoning it',
      ]);
    });

    test('a handler that succeeds after the abort still fails the step', async () => {
      const { registry } = withHandler(async () => {
        await new Promise((r) => setTimeout(r, 100));
        return { outputs: { late: 'yes' } };
      });
      const ctx = _testContext('/tmp');
      const running = runStep(registry, probe(), ctx);
      ctx.controller.abort('operator pressed stop');
      const f = await _stepFailure(running);
      expect(f.type).toBe('cancelled');
      expect(f.message).toBe('step "probe-step": the step was cancelled (operator pressed stop)');
    });

    test('an abort whose reason is a StepFailure fails with that failure', async () => {
      const { registry } = withHandler((_p, ctx) => delay(60_000, ctx.signal));
      const ctx = _testContext('/tmp');
      const running = runStep(registry, probe(), ctx);
      ctx.controller.abort(
        new StepFailure('operation-timeout', 'the operation ran out of time', {
          nonRetryable: true,
        }),
      );
      const f = await _stepFailure(running);
      expect(f.type).toBe('operation-timeout');
      expect(f.nonRetryable).toBe(true);
      expect(f.message).toBe('step "probe-step": the operation ran out of time');
    });
  });
});

describe('rollbackStep', () => {
  const rollbackLog: string[] = [];
  const { registry } = withHandler(
    async ({ n }) => ({ rollbackData: { saved: n } }),
    async (params, data) => {
      rollbackLog.push(`own rollback ${JSON.stringify(params)} ${JSON.stringify(data)}`);
    },
  );

  test("runs step.rollback instead of the handler's own rollback", async () => {
    rollbackLog.length = 0;
    const ctx = _testContext('/tmp');
    const step = probe({ rollback: { type: 'echo', params: { message: 'undo it' } } });
    await rollbackStep(registry, step, await runStep(registry, step, ctx), ctx);
    expect(ctx.linesOf('info')).toEqual(['undo it']);
    expect(rollbackLog).toEqual([]);
  });

  test('runs step.rollback even when the step did not succeed', async () => {
    const ctx = _testContext('/tmp');
    const step = probe({ rollback: { type: 'echo', params: { message: 'undo half' } } });
    await rollbackStep(registry, step, undefined, ctx);
    expect(ctx.linesOf('info')).toEqual(['undo half']);
  });

  test("otherwise calls the handler's rollback with the params and saved rollbackData", async () => {
    rollbackLog.length = 0;
    const ctx = _testContext('/tmp');
    const step = probe({ params: { n: 3 } });
    await rollbackStep(registry, step, await runStep(registry, step, ctx), ctx);
    expect(rollbackLog).toEqual(['own rollback {"n":3} {"saved":3}']);
  });

  test("does not call the handler's rollback for a step that never succeeded", async () => {
    rollbackLog.length = 0;
    await rollbackStep(registry, probe(), undefined, _testContext('/tmp'));
    expect(rollbackLog).toEqual([]);
  });

  test('does nothing for a handler without rollback', async () => {
    const ctx = _testContext('/tmp');
    const step = _step({ name: 'say', type: 'echo', params: { message: 'hi' } });
    await expect(rollbackStep(registry, step, {}, ctx)).resolves.toBeUndefined();
    expect(ctx.lines).toEqual([]);
  });

  test('a failing rollback action is a StepFailure naming the rollback', async () => {
    const step = probe({
      rollback: { type: 'script', params: { command: 'exit 4', shell: true } },
    });
    const f = await _stepFailure(rollbackStep(registry, step, undefined, _testContext('/tmp')));
    expect(f.type).toBe('exit-code');
    expect(f.message).toBe('rollback of step "probe-step": the shell script exited with code 4');
  });

  test('bad rollback params name the rollback field', async () => {
    const step = probe({ rollback: { type: 'echo', params: { msg: 'x' } } });
    const f = await _stepFailure(rollbackStep(registry, step, undefined, _testContext('/tmp')));
    expect(f.type).toBe('invalid-params');
    expect(f.message).toContain('rollback.params.message: is required');
  });
});

describe('checkStepParams', () => {
  const registry = createStepRegistry();

  test('finds nothing wrong with a valid step', () => {
    const step = _step({
      name: 's',
      type: 'script',
      params: { command: 'true' },
      rollback: { type: 'echo', params: { message: 'x' } },
    });
    expect(checkStepParams(registry, step)).toEqual([]);
  });

  test('reports every problem with paths under the step, and hints', () => {
    const step = _step({
      name: 's',
      type: 'script',
      handler: 'leftover',
      params: { comand: 'x', args: ['ok', 2] },
      rollback: { type: 'custom', handler: 'undeploy' },
    });
    expect(checkStepParams(registry, step, { path: 'operations[1].steps[0]' })).toEqual([
      {
        code: 'unused-handler',
        path: 'operations[1].steps[0].handler',
        message: '"handler" is only read when type is "custom"; remove it, or set type: "custom"',
      },
      {
        code: 'invalid-params',
        path: 'operations[1].steps[0].params.command',
        message: 'is required',
      },
      {
        code: 'invalid-params',
        path: 'operations[1].steps[0].params.args[1]',
        message: 'invalid type',
        expected: 'string',
        received: '2',
      },
      {
        code: 'invalid-params',
        path: 'operations[1].steps[0].params.comand',
        message: 'unknown parameter "comand"',
        expected: 'one of "command", "args", "shell", "cwd", "env", "input"',
        received: '"comand"',
        hint: 'did you mean "command"?',
      },
      {
        code: 'unknown-handler',
        path: 'operations[1].steps[0].rollback.handler',
        message: 'no custom step handler named "undeploy" is registered (none are registered)',
        hint: 'load the module that defines it with --handlers ./my-handlers.js or MUSTER_HANDLERS',
      },
    ]);
  });
});

describe('echo', () => {
  test('logs each line of the message as info and outputs nothing', async () => {
    const ctx = _testContext('/tmp');
    const result = await runStep(
      createStepRegistry(),
      _step({ name: 'e', type: 'echo', params: { message: 'one\ntwo' } }),
      ctx,
    );
    expect(result).toEqual({});
    expect(ctx.lines).toEqual([
      { stream: 'info', line: 'one' },
      { stream: 'info', line: 'two' },
    ]);
  });
});

describe('sleep', () => {
  test.each([
    [2, 2000],
    [0.5, 500],
    ['500ms', 500],
    ['30s', 30_000],
    ['5m', 300_000],
    ['1.5h', 5_400_000],
    ['soon', undefined],
    [-1, undefined],
    ['5 minutes', undefined],
  ] as const)('parseDuration(%j) is %s ms', (input, ms) => {
    expect(parseDuration(input)).toBe(ms);
  });

  test('waits for the duration', async () => {
    const started = Date.now();
    await runStep(
      createStepRegistry(),
      _step({ name: 'z', type: 'sleep', params: { duration: '150ms' } }),
      _testContext('/tmp'),
    );
    expect(Date.now() - started).toBeGreaterThanOrEqual(145);
  });

  test('stops at once when aborted', async () => {
    const ctx = _testContext('/tmp');
    const started = Date.now();
    const running = runStep(
      createStepRegistry(),
      _step({ name: 'z', type: 'sleep', params: { duration: '5m' } }),
      ctx,
    );
    setTimeout(() => ctx.controller.abort(), 30);
    expect((await _stepFailure(running)).type).toBe('cancelled');
    expect(Date.now() - started).toBeLessThan(500);
  });

  test('rejects a duration it cannot read', async () => {
    const f = await _stepFailure(
      runStep(
        createStepRegistry(),
        _step({ name: 'z', type: 'sleep', params: { duration: true } }),
        _testContext('/tmp'),
      ),
    );
    expect(f.message).toContain(
      'params.duration: expected seconds (a number) or a duration such as "500ms", "30s", "5m"',
    );
  });
});

describe('StepFailure', () => {
  test('survives a trip through JSON', () => {
    const f = new StepFailure('exit-code', 'exited with 2', { details: { exitCode: 2 } });
    const back = StepFailure.fromJSON(
      JSON.parse(JSON.stringify(f)) as ReturnType<StepFailure['toJSON']>,
    );
    expect(back).toBeInstanceOf(StepFailure);
    expect(back.toJSON()).toEqual({
      type: 'exit-code',
      message: 'exited with 2',
      nonRetryable: false,
      details: { exitCode: 2 },
    });
  });
});
