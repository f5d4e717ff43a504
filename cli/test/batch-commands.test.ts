/**
 * The `muster batch` commands' logic in process, against a real `muster server` on a free port:
 * what the commands print for each format, and the errors they raise. The CLI as a process
 * (arguments, exit codes, signals) is covered by `batch.test.ts`.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { parse as parseYaml } from 'yaml';
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import type { BatchContext } from '../src/batch/context.ts';
import { reportApiError } from '../src/batch/context.ts';
import { controlRun } from '../src/batch/control.ts';
import { followRun } from '../src/batch/follow.ts';
import { submitWorkflow } from '../src/batch/submit.ts';
import { ApiError } from '../src/client-errors.ts';
import { createClient } from '../src/client.ts';
import type { OutputFormat } from '../src/output/format.ts';
import { startTestServer, TOKENS } from './helpers/batch-server.ts';
import type { TestServer } from './helpers/batch-server.ts';

vi.setConfig({ testTimeout: 60_000 });

let t: TestServer;

beforeAll(async () => {
  t = await startTestServer();
});

afterAll(async () => {
  await t?.close();
});

/** A command context whose stdout and stderr are kept for the test to read. */
function context(output: OutputFormat, token: string = TOKENS.operator) {
  const out: string[] = [];
  const notes: string[] = [];
  const ctx: BatchContext = {
    client: createClient({ server: t.url, token }),
    output,
    out: (text) => out.push(text),
    note: (text) => notes.push(text),
  };
  return { ctx, stdout: () => out.join(''), stderr: () => notes.join('\n') };
}

const source = (file: string) => readFile(file, 'utf8');

describe('submitWorkflow', () => {
  test('--validate prints ok for a valid file and creates no run', async () => {
    const before = (await t.client.listAll()).length;
    const { ctx, stdout } = context('table');
    expect(await submitWorkflow(ctx, t.files.ok, { validate: true })).toBe(0);
    expect(stdout()).toBe(`ok ${t.files.ok}\n`);
    expect((await t.client.listAll()).length).toBe(before);
  });

  test('--validate -o json prints the verdict and throws the problems, located in the file', async () => {
    const { ctx, stdout } = context('json');
    const error = (await submitWorkflow(ctx, t.files.invalid, { validate: true }).catch(
      (e: unknown) => e,
    )) as ApiError;
    expect(error).toBeInstanceOf(ApiError);
    expect(error.exitCode).toBe(2);
    expect(error.message).toMatch(new RegExp(`^\\[MUS2001\\] ${t.files.invalid} has 1 problem$`));
    const verdict = JSON.parse(stdout()) as { valid: boolean; problems: unknown[] };
    expect(verdict.valid).toBe(false);
    expect(verdict.problems).toEqual(error.problems);
    expect(error.problems).toEqual([
      expect.objectContaining({
        file: t.files.invalid,
        line: 4,
        column: 5,
        path: 'operations[0].type',
        received: '"upgrade"',
      }),
    ]);
    const stream = new PassThrough();
    reportApiError(error, stream);
    expect(String(stream.read()).split('\n')).toEqual([
      expect.stringMatching(
        new RegExp(`^${t.files.invalid}:4:5: operations\\[0\\]\\.type: .*found "upgrade"\\)$`),
      ),
      `muster: [MUS2001] ${t.files.invalid} has 1 problem`,
      '',
    ]);
  });

  test('--dry-run -o nuon prints the plan as NUON', async () => {
    const { ctx, stdout } = context('nuon');
    await submitWorkflow(ctx, t.files.quick, { dryRun: true });
    expect(stdout()).toMatch(/^\{\n {2}workflow: "quick",\n {2}type: "batch",\n {2}operations: \[/);
  });

  test('labels go with the run; a repeated idempotency key returns the same run', async () => {
    const first = context('json');
    const again = context('yaml');
    const options = { label: ['team=web', 'env=dev'], idempotencyKey: 'commands-key-1' };
    await submitWorkflow(first.ctx, t.files.ok, options);
    await submitWorkflow(again.ctx, t.files.ok, options);
    const created = JSON.parse(first.stdout()) as { id: string; created: boolean };
    expect(created.created).toBe(true);
    expect(parseYaml(again.stdout())).toEqual({
      ...created,
      status: expect.any(String),
      created: false,
    });
    expect(again.stderr()).toBe(
      `run ${created.id} (hello) was already submitted with idempotency key "commands-key-1"; it is ` +
        `${(parseYaml(again.stdout()) as { status: string }).status}`,
    );
    expect((await t.client.status(created.id)).name).toBe('hello');
    const [listed] = await t.client.listAll({ labels: ['team=web'] });
    expect(listed).toMatchObject({ id: created.id, labels: { team: 'web', env: 'dev' } });
  });

  test('--set and --env fill the typed inputs; a wrong value is a problem of the file', async () => {
    const file = join(t.dir, 'inputs.yaml');
    await writeFile(
      file,
      [
        'name: with-inputs',
        'inputs:',
        '  version: {type: string, default: "1.0"}',
        '  replicas: {type: int, default: 1}',
        'environments:',
        '  prod: {inputs: {replicas: 3}}',
        'operations:',
        '  - id: say',
        '    type: update',
        '    target: cluster',
        '    items: [local]',
        '    steps:',
        '      - {name: s, type: echo, params: {message: "v={{ inputs.version }} r={{ inputs.replicas }}"}}',
        '',
      ].join('\n'),
    );
    const ok = context('json');
    await submitWorkflow(ok.ctx, file, { set: ['version=2.5'], env: 'prod' });
    const { id } = JSON.parse(ok.stdout()) as { id: string };
    expect(await t.settle(id)).toBe('succeeded');
    const output = (await t.client.allLogs(id)).filter((e) => e.type === 'task:output');
    expect(output.map((e) => e.data['line'])).toEqual(['v=2.5 r=3']);

    const bad = context('table');
    await expect(submitWorkflow(bad.ctx, file, { set: ['replicas=many'] })).rejects.toMatchObject({
      status: 422,
      problems: [expect.objectContaining({ file, path: 'inputs.replicas', received: '"many"' })],
    });
  });

  test('a file that cannot be read is a usage error', async () => {
    const { ctx } = context('table');
    await expect(submitWorkflow(ctx, 'no/such/file.cue', {})).rejects.toThrow(
      '[CLI2001] cannot read workflow file "no/such/file.cue": no such file',
    );
    await expect(submitWorkflow(ctx, t.files.ok.replace('.json', '.txt'), {})).rejects.toThrow(
      /cannot tell the format of .*\.txt/,
    );
  });
});

describe('followRun', () => {
  test('shows progress until the run ends and returns its final status', async () => {
    const { id } = await t.client.submit({ source: await source(t.files.quick), format: 'json' });
    const stream = new PassThrough();
    let progress = '';
    stream.on('data', (chunk: Buffer) => (progress += chunk.toString()));
    const summary = await followRun(t.client, id, {
      stream: stream as unknown as NodeJS.WriteStream,
      handleSigint: false,
    });
    expect(summary).toMatchObject({ id, status: 'succeeded', tasks: { succeeded: 3 } });
    expect(progress.split('\n').filter((l) => l.startsWith('operation:'))).toEqual([
      'operation:started            first',
      'operation:succeeded          first',
      'operation:started            second',
      'operation:succeeded          second',
      'operation:started            third',
      'operation:succeeded          third',
    ]);
  });

  test('returns at once for a run that already ended', async () => {
    const { id } = await t.client.submit({ source: await source(t.files.fail), format: 'json' });
    await t.settle(id);
    const summary = await followRun(t.client, id, { progress: false, handleSigint: false });
    expect(summary.status).toBe('failed');
  });
});

describe('controlRun', () => {
  test('resume, cancel, terminate, retry and rollback print the new state', async () => {
    const slow = await source(t.files.slow);
    const [paused, cancelled, terminated] = await Promise.all(
      [1, 2, 3].map(() => t.client.submit({ source: slow, format: 'json' })),
    );
    const failed = await t.client.submit({ source: await source(t.files.fail), format: 'json' });
    const done = await t.client.submit({ source: await source(t.files.ok), format: 'json' });
    await t.client.control(paused!.id, 'pause');
    await Promise.all([t.settle(failed.id), t.settle(done.id)]);

    const outputs = await Promise.all(
      (
        [
          [paused!.id, 'resume', {}, 'json'],
          [cancelled!.id, 'cancel', {}, 'table'],
          [terminated!.id, 'terminate', {}, 'yaml'],
          [failed.id, 'retry', { operation: 'boom' }, 'json'],
          [done.id, 'rollback', {}, 'json'],
        ] as const
      ).map(async ([id, action, body, format]) => {
        const { ctx, stdout } = context(format);
        await controlRun(ctx, id, action, body);
        return stdout();
      }),
    );
    expect(JSON.parse(outputs[0]!)).toEqual({ id: paused!.id, status: 'running' });
    expect(outputs[1]).toBe(`run ${cancelled!.id}: cancel accepted, status cancelling\n`);
    expect(parseYaml(outputs[2]!)).toEqual({
      id: terminated!.id,
      status: expect.stringMatching(/^cancel/),
    });
    expect(JSON.parse(outputs[3]!)).toEqual({ id: failed.id, status: expect.any(String) });
    expect(JSON.parse(outputs[4]!)).toEqual({
      id: done.id,
      status: expect.stringMatching(/^roll/),
    });
    expect(await t.settle(terminated!.id)).toBe('cancelled');
    expect(await t.settle(done.id)).toBe('rolled_back');
    await t.client.control(paused!.id, 'terminate');
  });

  test('an unknown run and a viewer token are refused with the server message', async () => {
    const viewer = context('table', TOKENS.viewer);
    await expect(controlRun(viewer.ctx, 'no-such-run', 'pause')).rejects.toThrow(
      /^\[API4030\] this needs the operator role; the token's role is viewer/,
    );
    await expect(viewer.ctx.client.status('no-such-run')).rejects.toThrow(
      '[ORC1001] no run with id "no-such-run"; list runs with `muster batch list`',
    );
  });
});

describe('list', () => {
  test('listAll follows every page; one page says where the next starts', async () => {
    const all = await t.client.listAll();
    expect(all.length).toBeGreaterThan(2);
    const paged = await t.client.listAll({ limit: 1 });
    expect(paged.map((r) => r.id)).toEqual(all.map((r) => r.id));
    const first = await t.client.list({ limit: 1 });
    expect(first.items).toHaveLength(1);
    expect(first.next_cursor).toEqual(expect.any(String));
  });
});
