import { mkdir, readdir, readFile, stat, symlink, writeFile, lstat } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { _makeWorkdir, _removeWorkdir, _step, _testContext } from './fixtures/context.ts';
import { createStepRegistry, rollbackStep, runStep } from './registry.ts';
import { StepFailure } from './types.ts';

let workdir: string;
beforeEach(async () => {
  workdir = await _makeWorkdir();
});
afterEach(async () => {
  await _removeWorkdir(workdir);
});

const registry = createStepRegistry();
const write = (params: Record<string, unknown>) =>
  _step({ name: 'conf', type: 'file_write', params });
const modeOf = async (path: string) => (await stat(path)).mode & 0o7777;

describe('file_write', () => {
  describe('a new file', () => {
    test('creates parent directories, writes the content with the mode, and outputs the path', async () => {
      const ctx = _testContext(workdir);
      const result = await runStep(
        registry,
        write({ path: 'etc/app/app.conf', content: 'port = 80\n', mode: '0640' }),
        ctx,
      );
      const file = join(workdir, 'etc/app/app.conf');
      expect(await readFile(file, 'utf8')).toBe('port = 80\n');
      expect(await modeOf(file)).toBe(0o640);
      expect(result.outputs).toEqual({ path: file });
      expect(result.rollbackData).toEqual({
        path: file,
        existed: false,
        createdDir: join(workdir, 'etc'),
      });
      expect(ctx.linesOf('info')).toEqual([`wrote 10 bytes to ${file} (mode 0640)`]);
    });

    test('accepts modes as "0o600", "755" and numbers', async () => {
      const ctx = _testContext(workdir);
      for (const [mode, expected] of [
        ['0o600', 0o600],
        ['755', 0o755],
        [0o644, 0o644],
        ['4755', 0o4755],
      ] as const) {
        await runStep(registry, write({ path: 'f', content: 'x', mode }), ctx);
        expect(await modeOf(join(workdir, 'f'))).toBe(expected);
      }
    });

    test('rollback deletes the file and the directories it created', async () => {
      await mkdir(join(workdir, 'keep'));
      const ctx = _testContext(workdir);
      const step = write({ path: 'keep/a/b/file', content: 'x' });
      const result = await runStep(registry, step, ctx);
      await rollbackStep(registry, step, result, ctx);
      expect(await readdir(join(workdir, 'keep'))).toEqual([]);
    });

    test('rollback keeps a created directory that something else has since used', async () => {
      const ctx = _testContext(workdir);
      const step = write({ path: 'a/b/file', content: 'x' });
      const result = await runStep(registry, step, ctx);
      await writeFile(join(workdir, 'a/other'), 'y');
      await rollbackStep(registry, step, result, ctx);
      expect(await readdir(join(workdir, 'a'))).toEqual(['other']);
    });
  });

  describe('an existing file', () => {
    test('keeps its mode unless mode is given', async () => {
      const file = join(workdir, 'secret');
      await writeFile(file, 'old', { mode: 0o600 });
      const ctx = _testContext(workdir);
      await runStep(registry, write({ path: 'secret', content: 'new' }), ctx);
      expect(await readFile(file, 'utf8')).toBe('new');
      expect(await modeOf(file)).toBe(0o600);
    });

    test('rollback restores the previous content and mode, byte for byte', async () => {
      const file = join(workdir, 'bin.dat');
      const previous = Buffer.from([0, 255, 10, 13, 0xc3, 0x28, 1, 2, 3]);
      await writeFile(file, previous, { mode: 0o751 });
      const ctx = _testContext(workdir);
      const step = write({ path: 'bin.dat', content: 'replaced', mode: '0600' });
      const result = await runStep(registry, step, ctx);
      expect(await modeOf(file)).toBe(0o600);
      // The engine stores rollback data as JSON: it must survive the trip.
      const stored = JSON.parse(JSON.stringify(result)) as typeof result;
      await rollbackStep(registry, step, stored, ctx);
      expect(await readFile(file)).toEqual(previous);
      expect(await modeOf(file)).toBe(0o751);
    });

    test('replaces the file by rename, leaving no temporary file behind', async () => {
      const file = join(workdir, 'app.conf');
      await writeFile(file, 'old');
      const inodeBefore = (await stat(file)).ino;
      await runStep(registry, write({ path: 'app.conf', content: 'new' }), _testContext(workdir));
      expect((await stat(file)).ino).not.toBe(inodeBefore);
      expect(await readdir(workdir)).toEqual(['app.conf']);
    });

    test('writes through a symlink, keeping the link', async () => {
      await writeFile(join(workdir, 'real.conf'), 'old');
      await symlink('real.conf', join(workdir, 'link.conf'));
      const ctx = _testContext(workdir);
      const step = write({ path: 'link.conf', content: 'new' });
      const result = await runStep(registry, step, ctx);
      expect((await lstat(join(workdir, 'link.conf'))).isSymbolicLink()).toBe(true);
      expect(await readFile(join(workdir, 'real.conf'), 'utf8')).toBe('new');
      await rollbackStep(registry, step, result, ctx);
      expect(await readFile(join(workdir, 'real.conf'), 'utf8')).toBe('old');
    });
  });

  describe('failures', () => {
    test('a directory at the path is a non-retryable invalid-path', async () => {
      await mkdir(join(workdir, 'dir'));
      const e = await runStep(
        registry,
        write({ path: 'dir', content: 'x' }),
        _testContext(workdir),
      ).catch((error: unknown) => error);
      expect(e).toBeInstanceOf(StepFailure);
      expect(e).toMatchObject({ type: 'invalid-path', nonRetryable: true });
      expect((e as Error).message).toContain('is not a regular file');
    });

    test('a file where a parent directory should be is invalid-path', async () => {
      await writeFile(join(workdir, 'file'), 'x');
      const e = await runStep(
        registry,
        write({ path: 'file/child', content: 'x' }),
        _testContext(workdir),
      ).catch((error: unknown) => error);
      expect(e).toMatchObject({ type: 'invalid-path', nonRetryable: true });
    });

    test.each([
      [
        { path: 'f', content: 'x', mode: 644 },
        'params.mode: 644 is not a mode number (0 to 0o777 = 511); write the mode as an octal string such as "0644"',
      ],
      [{ path: 'f', content: 'x', mode: '0999' }, 'params.mode: "0999" is not an octal mode'],
      [{ path: '', content: 'x' }, 'params.path: needs a path'],
      [{ path: 'f' }, 'params.content: is required'],
    ])('rejects %j', async (params, message) => {
      const e = await runStep(registry, write(params), _testContext(workdir)).catch(
        (error: unknown) => error,
      );
      expect(e).toMatchObject({ type: 'invalid-params', nonRetryable: true });
      expect((e as Error).message).toContain(message);
    });

    test('rollback refuses rollback data it did not produce', async () => {
      const step = write({ path: 'f', content: 'x' });
      const e = await rollbackStep(
        registry,
        step,
        { rollbackData: { nonsense: true } },
        _testContext(workdir),
      ).catch((error: unknown) => error);
      expect(e).toMatchObject({ type: 'invalid-rollback-data', nonRetryable: true });
    });
  });
});
