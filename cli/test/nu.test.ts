/**
 * The Nushell module `cli/nu/muster.nu` with the real `nu` from the npm package `nushell`, against
 * a real `muster server`: structured results, streaming, errors and completions.
 */
import { execFile } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import { toNuon } from '../src/output/nuon.ts';
import { ROOT } from '../../orchestrator/test/helpers/cli.ts';
import { startTestServer, writeMusterBin } from './helpers/batch-server.ts';
import type { TestServer } from './helpers/batch-server.ts';

// Every module command starts the CLI (about 2 s of CPU); a busy machine needs room.
vi.setConfig({ testTimeout: 180_000 });

/** The `nu` launcher the npm package installs. */
const NU = join(ROOT, 'node_modules', '.bin', 'nu');

let t: TestServer;
let env: NodeJS.ProcessEnv;

beforeAll(async () => {
  t = await startTestServer();
  env = t.env({
    MUSTER_BIN: await writeMusterBin(t.dir),
    OK_FILE: t.files.ok,
    INVALID_FILE: t.files.invalid,
  });
});

afterAll(async () => {
  await t?.close();
});

interface NuResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs `nu -c SCRIPT` (no user config) from the repository root. */
function nu(
  args: readonly string[],
  input = '',
  extraEnv: NodeJS.ProcessEnv = env,
): Promise<NuResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      NU,
      ['--no-config-file', ...args],
      { cwd: ROOT, env: extraEnv, timeout: 170_000, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        if (error && typeof error.code !== 'number') reject(error);
        else resolve({ code: typeof error?.code === 'number' ? error.code : 0, stdout, stderr });
      },
    );
    child.stdin?.end(input);
  });
}

/** Runs a script after `use cli/nu/muster.nu *` and parses the JSON it ends with. */
async function nuJson(script: string): Promise<unknown> {
  const result = await nu(['-c', `use cli/nu/muster.nu *\n${script} | to json --raw`]);
  if (result.code !== 0) throw new Error(`nu exited ${result.code}:\n${result.stderr}`);
  return JSON.parse(result.stdout);
}

describe('nu', () => {
  test('the npm package ships a working nu', async () => {
    const result = await nu(['--version']);
    expect(result.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
  });

  test('reads what toNuon writes as the same value', async () => {
    const value = {
      a: 1,
      'b c': 'x',
      'run-id': 'r-1',
      quote: 'say "hi" \\ (not $interpolated)\n\ttab',
      unicode: 'é ✓ 🚀',
      control: '\u0007\u001b',
      float: 1.5,
      tiny: 1.5e-7,
      negative: -42,
      nothing: null,
      flags: [true, false],
      nested: { list: [1, 'two', { deep: [] }], empty: {} },
      true: 'keyword key',
    };
    for (const indent of [0, 2]) {
      const result = await nu(
        ['--stdin', '-c', '$in | from nuon | to json --raw'],
        toNuon(value, { indent }),
      );
      expect(result.stderr).toBe('');
      expect(JSON.parse(result.stdout)).toEqual(value);
    }
  });
});

describe('muster.nu', () => {
  test('submit, list, status and logs return records and tables', async () => {
    const out = (await nuJson(`
      let final = (batch submit $env.OK_FILE --watch --label {suite: nu})
      let runs = (batch list --label {suite: nu})
      let failed_ids = ($runs | where status == failed | get id)
      let ok_ids = ($runs | where status == succeeded | get id)
      let status = (batch status $final.id)
      let logs = (batch logs $final.id)
      {
        final: ($final | select id status),
        ok_ids: $ok_ids,
        failed_ids: $failed_ids,
        status: $status.status,
        created_type: ($status.created_at | describe),
        operations: ($status.operations | get id),
        log_types: ($logs | get type),
        log_at_type: ($logs | first | get at | describe),
      }`)) as Record<string, unknown>;
    const final = out['final'] as { id: string; status: string };
    expect(final.status).toBe('succeeded');
    expect(out).toMatchObject({
      ok_ids: [final.id],
      failed_ids: [],
      status: 'succeeded',
      created_type: 'datetime',
      operations: ['greet'],
      log_at_type: 'datetime',
    });
    expect((out['log_types'] as string[]).at(-1)).toBe('run:succeeded');
    expect(out['log_types']).toContain('task:output');
  });

  test('controls, streamed logs, errors and validation verdicts', async () => {
    const slow = await t.client.submit({
      source: await readFile(t.files.slow, 'utf8'),
      format: 'json',
    });
    const quick = await t.client.submit({
      source: await readFile(t.files.quick, 'utf8'),
      format: 'json',
    });
    env['SLOW_ID'] = slow.id;
    env['QUICK_ID'] = quick.id;
    const out = (await nuJson(`
      let paused = (batch pause $env.SLOW_ID)
      let streamed = (batch logs $env.QUICK_ID --follow | where type =~ "^(task:succeeded|run:succeeded)$" | get type)
      let unknown = (try { batch status no-such-run; "no error" } catch {|e| $e.msg })
      let verdict = (batch submit $env.INVALID_FILE --validate)
      {
        paused: $paused,
        streamed: $streamed,
        unknown: $unknown,
        valid: $verdict.valid,
        problem: ($verdict.problems | first | select path line),
      }`)) as Record<string, unknown>;
    expect(out).toEqual({
      paused: { id: slow.id, status: 'paused' },
      streamed: ['task:succeeded', 'task:succeeded', 'task:succeeded', 'run:succeeded'],
      unknown: '[ORC1001] no run with id "no-such-run"; list runs with `muster batch list`',
      valid: false,
      problem: { path: 'operations[0].type', line: 4 },
    });
  });

  test('an error points at what the user typed, with the server message and problems', async () => {
    const result = await nu([
      '-c',
      'use cli/nu/muster.nu *\nbatch submit $env.INVALID_FILE --label {suite: nu-errors}',
    ]);
    expect(result.code).not.toBe(0);
    expect(result.stderr).toContain(`[MUS2001] ${t.files.invalid} has`);
    expect(result.stderr).toContain('muster batch submit');
    expect(result.stderr).toMatch(/help: .*invalid\.yaml:4:5: operations\[0\]\.type: /);
  });

  test('completes run ids from the server', async () => {
    const { id } = await t.client.submit({
      source:
        '{"name":"completion-me","operations":[{"id":"a","type":"update","target":"cluster","items":["local"],"steps":[{"name":"s","type":"echo","params":{"message":"x"}}]}]}',
      format: 'json',
    });
    const file = join(t.dir, 'complete.nu');
    const source = 'use cli/nu/muster.nu *\nbatch status ';
    await writeFile(file, source);
    const result = await nu(['--ide-complete', String(source.length), file]);
    expect(JSON.parse(result.stdout).completions).toContain(id);
  });
});
