import { readdir, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import {
  _isRunning,
  _makeWorkdir,
  _removeWorkdir,
  _step,
  _stepFailure,
  _testContext,
  _waitForPid,
} from './fixtures/context.ts';
import { createStepRegistry, runStep } from './registry.ts';
import { createScriptStep, parseOutputFile } from './script.ts';

let workdir: string;
beforeEach(async () => {
  workdir = await _makeWorkdir();
});
afterEach(async () => {
  await _removeWorkdir(workdir);
});

const registry = createStepRegistry();
const script = (params: Record<string, unknown>, extra: { timeout?: number } = {}) =>
  _step({ name: 'run', type: 'script', params, ...extra });

describe('script', () => {
  describe('argv and shell', () => {
    test('passes args verbatim, never through a shell', async () => {
      const ctx = _testContext(workdir);
      const args = ['a b', '$HOME', '; rm -rf /', '"quoted"', "it's", ''];
      await runStep(registry, script({ command: 'printf', args: ['%s|\\n', ...args] }), ctx);
      expect(ctx.linesOf('stdout')).toEqual(args.map((a) => `${a}|`));
    });

    test('runs a shell script with shell: true, args as $1, $2', async () => {
      const ctx = _testContext(workdir);
      await runStep(
        registry,
        script({
          command: 'echo "$1-$2" | tr a-z A-Z; echo "$#"',
          args: ['x y', 'z'],
          shell: true,
        }),
        ctx,
      );
      expect(ctx.linesOf('stdout')).toEqual(['X Y-Z', '2']);
    });

    test('feeds input to stdin, and an empty stdin otherwise', async () => {
      const ctx = _testContext(workdir);
      await runStep(registry, script({ command: 'cat', input: 'one\ntwo\n' }), ctx);
      await runStep(registry, script({ command: 'wc', args: ['-c'] }), ctx);
      expect(ctx.linesOf('stdout').map((l) => l.trim())).toEqual(['one', 'two', '0']);
    });

    test('runs in cwd relative to the workdir', async () => {
      await mkdir(join(workdir, 'sub'));
      const ctx = _testContext(workdir);
      await runStep(registry, script({ command: 'pwd', cwd: 'sub' }), ctx);
      expect(ctx.linesOf('stdout')).toEqual([join(workdir, 'sub')]);
    });

    test('runs a relative command path from cwd', async () => {
      await writeFile(join(workdir, 'hello.sh'), '#!/bin/sh\necho "hello $1"\n', { mode: 0o755 });
      const ctx = _testContext(workdir);
      await runStep(registry, script({ command: './hello.sh', args: ['there'] }), ctx);
      expect(ctx.linesOf('stdout')).toEqual(['hello there']);
    });
  });

  describe('environment', () => {
    test('adds MUSTER_* from the context, then ctx.env, then params.env', async () => {
      process.env['MUSTER_TEST_INHERITED'] = 'from-process';
      try {
        const ctx = _testContext(workdir, {
          runId: 'run-42',
          taskId: 'op:item@web-1',
          attempt: 3,
          server: { name: 'web-1', labels: {} },
          env: { FROM_CTX: 'ctx', OVERRIDDEN: 'ctx' },
        });
        await runStep(
          registry,
          script({
            command:
              'printf "%s\\n" "$MUSTER_RUN_ID" "$MUSTER_TASK_ID" "$MUSTER_ATTEMPT" "$MUSTER_SERVER" "$MUSTER_TEST_INHERITED" "$FROM_CTX" "$OVERRIDDEN" "$PORT" "$MUSTER_WORKDIR"',
            shell: true,
            env: { OVERRIDDEN: 'params', PORT: 8080 },
          }),
          ctx,
        );
        expect(ctx.linesOf('stdout')).toEqual([
          'run-42',
          'op:item@web-1',
          '3',
          'web-1',
          'from-process',
          'ctx',
          'params',
          '8080',
          workdir,
        ]);
      } finally {
        delete process.env['MUSTER_TEST_INHERITED'];
      }
    });

    test('MUSTER_OUTPUT cannot be overridden by params', async () => {
      const ctx = _testContext(workdir);
      const result = await runStep(
        registry,
        script({
          command: 'echo answer=42 >> "$MUSTER_OUTPUT"',
          shell: true,
          env: { MUSTER_OUTPUT: join(workdir, 'elsewhere') },
        }),
        ctx,
      );
      expect(result.outputs).toEqual({ answer: '42' });
    });

    test('rejects an invalid variable name', async () => {
      const f = await _stepFailure(
        runStep(
          registry,
          script({ command: 'true', env: { 'BAD-NAME': 'x' } }),
          _testContext(workdir),
        ),
      );
      expect(f.type).toBe('invalid-params');
      expect(f.message).toContain('params.env');
      expect(f.message).toContain('BAD-NAME');
    });
  });

  describe('outputs via MUSTER_OUTPUT', () => {
    test('reads name=value and name<<DELIMITER lines; later values win', async () => {
      const ctx = _testContext(workdir);
      const result = await runStep(
        registry,
        script({
          command: [
            'echo version=1.0 >> "$MUSTER_OUTPUT"',
            'echo "url=http://x/?a=b" >> "$MUSTER_OUTPUT"',
            'printf "notes<<EOF\\nline 1\\nline 2\\nEOF\\n" >> "$MUSTER_OUTPUT"',
            'echo version=1.1 >> "$MUSTER_OUTPUT"',
          ].join('\n'),
          shell: true,
        }),
        ctx,
      );
      expect(result.outputs).toEqual({
        version: '1.1',
        url: 'http://x/?a=b',
        notes: 'line 1\nline 2',
      });
    });

    test('returns no outputs when the script writes none, and removes the file', async () => {
      const before = (await readdir(tmpdir())).filter((f) => f.startsWith('muster-step-'));
      const result = await runStep(registry, script({ command: 'true' }), _testContext(workdir));
      expect(result).toEqual({});
      const after = (await readdir(tmpdir())).filter((f) => f.startsWith('muster-step-'));
      expect(after.filter((f) => !before.includes(f))).toEqual([]);
    });

    test('a malformed line fails the step, naming the line', async () => {
      const f = await _stepFailure(
        runStep(
          registry,
          script({ command: 'printf "ok=1\\nno equals sign\\n" >> "$MUSTER_OUTPUT"', shell: true }),
          _testContext(workdir),
        ),
      );
      expect(f.type).toBe('invalid-output');
      expect(f.nonRetryable).toBe(true);
      expect(f.message).toContain('line 2');
    });

    test('parseOutputFile rejects an unterminated heredoc and a bad name', () => {
      expect(() => parseOutputFile('a<<EOF\nx\n')).toThrow(/no closing "EOF"/);
      expect(() => parseOutputFile('1bad=x\n')).toThrow(/not a valid output name/);
      expect(parseOutputFile('a=\r\n\nb=c=d\n')).toEqual({ a: '', b: 'c=d' });
    });
  });

  describe('failures', () => {
    test('a non-zero exit is a retryable exit-code failure with the last stderr lines', async () => {
      const ctx = _testContext(workdir);
      const f = await _stepFailure(
        runStep(
          registry,
          script({ command: 'for i in 1 2 3; do echo "err $i" >&2; done; exit 3', shell: true }),
          ctx,
        ),
      );
      expect(f.type).toBe('exit-code');
      expect(f.nonRetryable).toBe(false);
      expect(f.details).toMatchObject({
        exitCode: 3,
        signal: null,
        stderr: ['err 1', 'err 2', 'err 3'],
      });
      expect(f.message).toBe('step "run": the shell script exited with code 3: err 3');
    });

    test('keeps only the last stderr lines in details', async () => {
      const handler = createScriptStep({ stderrTailLines: 2 });
      const reg = createStepRegistry({ builtins: false });
      reg.register(handler);
      const f = await _stepFailure(
        runStep(
          reg,
          script({ command: 'seq 1 10 >&2; exit 1', shell: true }),
          _testContext(workdir),
        ),
      );
      expect(f.details?.['stderr']).toEqual(['9', '10']);
    });

    test('a process killed by a signal reports it', async () => {
      const f = await _stepFailure(
        runStep(registry, script({ command: 'kill -USR1 $$', shell: true }), _testContext(workdir)),
      );
      expect(f.type).toBe('exit-code');
      expect(f.details).toMatchObject({ exitCode: null, signal: 'SIGUSR1' });
    });

    test('a missing command is a non-retryable command-not-found', async () => {
      const f = await _stepFailure(
        runStep(registry, script({ command: 'no-such-command-xyz' }), _testContext(workdir)),
      );
      expect(f.type).toBe('command-not-found');
      expect(f.nonRetryable).toBe(true);
      expect(f.message).toContain('"no-such-command-xyz" on PATH');
    });

    test('a missing command inside a shell script is command-not-found too', async () => {
      const f = await _stepFailure(
        runStep(
          registry,
          script({ command: 'no-such-command-xyz', shell: true }),
          _testContext(workdir),
        ),
      );
      expect(f.type).toBe('command-not-found');
      expect(f.details).toMatchObject({ exitCode: 127 });
    });

    test('a file that is not executable is command-not-executable', async () => {
      await writeFile(join(workdir, 'plain.sh'), 'echo hi\n', { mode: 0o644 });
      const f = await _stepFailure(
        runStep(registry, script({ command: './plain.sh' }), _testContext(workdir)),
      );
      // root may execute any file that has an x bit; none is set here, so this holds for root too.
      expect(f.type).toBe('command-not-executable');
      expect(f.nonRetryable).toBe(true);
    });

    test('a missing cwd is cwd-not-found, not command-not-found', async () => {
      const f = await _stepFailure(
        runStep(registry, script({ command: 'true', cwd: 'nowhere' }), _testContext(workdir)),
      );
      expect(f.type).toBe('cwd-not-found');
      expect(f.message).toContain(join(workdir, 'nowhere'));
    });
  });

  describe('output streaming', () => {
    test('logs stdout and stderr line by line, each in order', async () => {
      const ctx = _testContext(workdir);
      await runStep(
        registry,
        script({
          command:
            'i=1; while [ $i -le 300 ]; do echo "out $i"; echo "err $i" >&2; i=$((i+1)); done; printf "crlf\\r\\n"; printf "no newline"',
          shell: true,
        }),
        ctx,
      );
      const numbers = (n: number) => Array.from({ length: n }, (_, i) => i + 1);
      expect(ctx.linesOf('stdout')).toEqual([
        ...numbers(300).map((i) => `out ${i}`),
        'crlf',
        'no newline',
      ]);
      expect(ctx.linesOf('stderr')).toEqual(numbers(300).map((i) => `err ${i}`));
    });

    test('keeps multi-byte characters whole across chunks', async () => {
      const ctx = _testContext(workdir);
      const line = 'é€😀'.repeat(5000);
      await runStep(registry, script({ command: 'printf', args: ['%s\\n', line] }), ctx);
      expect(ctx.linesOf('stdout')).toEqual([line]);
    });
  });

  describe('abort', () => {
    test('kills the whole process group, background children included', async () => {
      const ctx = _testContext(workdir);
      const running = runStep(
        registry,
        script({
          command: 'sleep 300 & echo $! > child.pid; echo $$ > parent.pid; wait',
          shell: true,
        }),
        ctx,
      );
      const parent = await _waitForPid(join(workdir, 'parent.pid'));
      const child = await _waitForPid(join(workdir, 'child.pid'));
      expect(await _isRunning(parent)).toBe(true);
      expect(await _isRunning(child)).toBe(true);
      const started = Date.now();
      ctx.controller.abort();
      const f = await _stepFailure(running);
      expect(f.type).toBe('cancelled');
      expect(f.message).toBe('step "run": the step was cancelled');
      // Under the 2 s SIGKILL grace: SIGTERM to the group was enough.
      expect(Date.now() - started).toBeLessThan(1900);
      expect(await _isRunning(parent)).toBe(false);
      expect(await _isRunning(child)).toBe(false);
    });

    test('sends SIGKILL after the grace period to processes that ignore SIGTERM', async () => {
      const reg = createStepRegistry({ builtins: false });
      reg.register(createScriptStep({ killGraceMs: 300 }));
      const ctx = _testContext(workdir);
      const running = runStep(
        reg,
        script({
          command: "trap '' TERM; sleep 300 & echo $! > child.pid; echo $$ > parent.pid; wait",
          shell: true,
        }),
        ctx,
      );
      const parent = await _waitForPid(join(workdir, 'parent.pid'));
      const child = await _waitForPid(join(workdir, 'child.pid'));
      ctx.controller.abort();
      const f = await _stepFailure(running);
      expect(f.type).toBe('cancelled');
      expect(await _isRunning(parent)).toBe(false);
      expect(await _isRunning(child)).toBe(false);
      expect(ctx.linesOf('info').some((l) => l.includes('SIGKILL'))).toBe(true);
    });

    test('step timeout fails with timeout and kills the process', async () => {
      const ctx = _testContext(workdir);
      const started = Date.now();
      const running = runStep(
        registry,
        script({ command: 'echo $$ > pid; exec sleep 300', shell: true }, { timeout: 1 }),
        ctx,
      );
      const pid = await _waitForPid(join(workdir, 'pid'));
      const f = await _stepFailure(running);
      expect(f.type).toBe('timeout');
      expect(f.message).toBe('step "run": did not finish within its timeout of 1s');
      expect(Date.now() - started).toBeGreaterThanOrEqual(1000);
      expect(Date.now() - started).toBeLessThan(2500);
      expect(await _isRunning(pid)).toBe(false);
    });

    test('does not start anything when already aborted', async () => {
      const ctx = _testContext(workdir);
      ctx.controller.abort();
      const f = await _stepFailure(
        runStep(registry, script({ command: 'touch', args: ['made'] }), ctx),
      );
      expect(f.type).toBe('cancelled');
      expect(await readdir(workdir)).toEqual([]);
    });
  });

  test('does not wait for a background process that keeps stdout open', async () => {
    const ctx = _testContext(workdir);
    const started = Date.now();
    await runStep(
      registry,
      script({ command: 'sleep 30 & echo $! > bg.pid; echo started', shell: true }),
      ctx,
    );
    const bg = await _waitForPid(join(workdir, 'bg.pid'));
    try {
      expect(Date.now() - started).toBeLessThan(3000);
      expect(ctx.linesOf('stdout')).toEqual(['started']);
      // Left running, as a daemon a script starts would be.
      expect(await _isRunning(bg)).toBe(true);
    } finally {
      process.kill(bg, 'SIGKILL');
    }
  });
});
