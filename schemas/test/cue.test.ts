/**
 * The CUE runner on both engines: the bundled WebAssembly build and a `cue` binary (here a stand-in
 * script that runs the same WebAssembly, so the binary code path is exercised without Go).
 *
 * @module
 */
import { mkdtemp, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import {
  _resetCue,
  CueOutOfMemoryError,
  exportCue,
  NO_GC_BELOW,
  resolveCueEngine,
  runWasm,
  runWasmSparingGc,
  type CueOutput,
} from '../src/cue.ts';

const FAKE_CUE = fileURLToPath(new URL('fixtures/fake-cue.mjs', import.meta.url));
const CACHE = join('.muster', 'cache', 'cue');

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'muster-cue-test-'));
  // A module with a package to import, as `muster init` scaffolds one.
  await mkdir(join(dir, 'mod', 'cue.mod', 'pkg', 'example.com', 'lib'), { recursive: true });
  await writeFile(join(dir, 'mod', 'cue.mod', 'module.cue'), 'module: "example.com/mod"\n');
  await writeFile(
    join(dir, 'mod', 'cue.mod', 'pkg', 'example.com', 'lib', 'lib.cue'),
    'package lib\n\n#Thing: {size: *1 | int, name: string}\n',
  );
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

afterEach(() => {
  delete process.env['MUSTER_CUE'];
  _resetCue();
});

/** A document no earlier run can have cached. */
const fresh = () => `n: "${Date.now()}-${Math.random().toString(36).slice(2)}"`;

describe('exportCue with the WebAssembly engine', () => {
  const select = () => (process.env['MUSTER_CUE'] = 'wasm');
  const kind = 'wasm';

  test('exports a value with its defaults', async () => {
    select();
    _resetCue();
    expect(resolveCueEngine().kind).toBe(kind);
    const result = await exportCue({
      files: [{ name: 'a.cue', source: `x: *1 | int\ny: "z"\n${fresh()}\n` }],
    });
    expect(result.ok && result.value).toMatchObject({ x: 1, y: 'z' });
  });

  test('reports problems relative to the expression, in the caller’s file names', async () => {
    select();
    _resetCue();
    const result = await exportCue({
      files: [
        { name: 'schema.cue', source: 'package t\n\n#T: {port: int & <=65535}\n', internal: true },
        {
          name: 'deploy/user.cue',
          source: `package t\n${fresh()}\ndoc: #T & {\n\tport: 70000\n}\n`,
        },
      ],
      expression: 'doc',
    });
    expect(result).toEqual({
      ok: false,
      problems: [
        {
          code: 'schema',
          path: 'port',
          message: 'out of range',
          expected: '<=65535',
          received: '70000',
          file: 'deploy/user.cue',
          line: 4,
          column: 8,
        },
      ],
    });
  });

  test('resolves imports from the cue.mod above cwd', async () => {
    select();
    _resetCue();
    const result = await exportCue({
      files: [
        {
          name: 'w.cue',
          source: `import "example.com/lib"\n\n${fresh()}\nv: lib.#Thing & {name: "a"}\n`,
        },
      ],
      expression: 'v',
      cwd: join(dir, 'mod'),
    });
    expect(result).toEqual({ ok: true, value: { size: 1, name: 'a' } });
  });
});

describe('exportCue', () => {
  test('with a binary: runs `cue export` in cwd and maps its problems', async () => {
    const log = join(dir, 'calls.log');
    process.env['FAKE_CUE_LOG'] = log;
    process.env['MUSTER_CUE'] = FAKE_CUE;
    _resetCue();
    expect(resolveCueEngine()).toEqual({ kind: 'binary', path: FAKE_CUE });
    let result;
    try {
      result = await exportCue({
        files: [
          {
            name: 'w.cue',
            source: `import "example.com/lib"\n\n${fresh()}\nv: lib.#Thing & {\n\tname: 1\n}\n`,
          },
        ],
        expression: 'v',
        cwd: join(dir, 'mod'),
      });
    } finally {
      delete process.env['FAKE_CUE_LOG'];
    }
    expect(result).toEqual({
      ok: false,
      problems: [
        expect.objectContaining({ path: 'name', message: 'wrong type', file: 'w.cue', line: 5 }),
      ],
    });
    const calls = (await readFile(log, 'utf8'))
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { cwd: string; command: string; args: string[] });
    expect(calls).toHaveLength(1);
    expect(calls[0]).toMatchObject({ cwd: join(dir, 'mod'), command: 'export' });
    expect(calls[0]?.args.slice(-4)).toEqual(['--out', 'json', '-e', 'v']);
    expect(calls[0]?.args[0]).toMatch(/muster-cue-.*0-w\.cue$/);
  });

  test('runs concurrent calls one at a time, each getting its own result', async () => {
    process.env['MUSTER_CUE'] = 'wasm';
    const results = await Promise.all(
      [1, 2, 3].map((n) =>
        exportCue({
          files: [{ name: `${n}.cue`, source: `v: ${n}\n${n === 2 ? 'v: 5\n' : ''}${fresh()}\n` }],
        }),
      ),
    );
    expect(results.map((r) => (r.ok ? (r.value as { v: number }).v : r.problems[0]?.path))).toEqual(
      [1, 'v', 3],
    );
  });

  test('caches results on disk by content, and answers from the cache', async () => {
    process.env['MUSTER_CUE'] = 'wasm';
    const marker = fresh();
    const files = [{ name: 'c.cue', source: `${marker}\n` }];
    const first = await exportCue({ files });
    const cached = await Promise.all(
      (await readdir(CACHE)).map((f) => readFile(join(CACHE, f), 'utf8').catch(() => '')),
    );
    expect(cached.some((c) => c.includes(marker.split(': ')[1]!))).toBe(true);
    // A new process would find it on disk; here the memory cache answers without running CUE.
    const started = performance.now();
    expect(await exportCue({ files })).toEqual(first);
    expect(performance.now() - started).toBeLessThan(50);
  });
});

describe('WebAssembly runs and Go garbage collection', () => {
  /** `cue export` of a small file, with Go's collector traced on stderr. */
  const tracedRun = async (env: Record<string, string>) => {
    const file = join(dir, `gc-${Math.random().toString(36).slice(2)}.cue`);
    await writeFile(file, `x: [for i, _ in [1, 2, 3, 4, 5, 6, 7, 8] {i * 2}]\n${fresh()}\n`);
    return runWasm(['export', file, '--out', 'json'], dir, false, {
      GODEBUG: 'gctrace=1',
      ...env,
    });
  };

  test("the environment given reaches the Go runtime: GOGC=off stops the collector's runs", async () => {
    const collected = await tracedRun({ GOGC: '1' });
    expect(collected.code).toBe(0);
    expect(collected.stderr).toMatch(/^gc \d+ @/m);
    const uncollected = await tracedRun({ GOGC: 'off' });
    expect(uncollected.code).toBe(0);
    expect(JSON.parse(uncollected.stdout)).toMatchObject({ x: [0, 2, 4, 6, 8, 10, 12, 14] });
    expect(uncollected.stderr).not.toMatch(/^gc \d+ @/m);
  });

  const ok: CueOutput = { code: 0, stdout: '{}', stderr: '' };
  const outOfMemory: CueOutput = {
    code: 2,
    stdout: '',
    stderr:
      'runtime: out of memory: cannot allocate 4194304-byte block\nfatal error: out of memory\n\ngoroutine 1 [running]:\n',
  };
  /** A stand-in for a run that answers from `outputs` in turn, keeping each environment. */
  const runs = (...outputs: CueOutput[]) => {
    const envs: Array<Readonly<Record<string, string>>> = [];
    const run = (env: Readonly<Record<string, string>>) => {
      envs.push(env);
      return Promise.resolve(outputs[envs.length - 1]!);
    };
    return { run, envs };
  };

  test('a small source runs with the collector off, and again with it on when memory runs out', async () => {
    const fast = runs(ok);
    await expect(runWasmSparingGc(fast.run, NO_GC_BELOW - 1)).resolves.toBe(ok);
    expect(fast.envs).toEqual([{ GOGC: 'off' }]);

    const retried = runs(outOfMemory, ok);
    await expect(runWasmSparingGc(retried.run, 100)).resolves.toBe(ok);
    expect(retried.envs).toEqual([{ GOGC: 'off' }, {}]);
  });

  test('a large source runs with the collector on; out of memory then is a clear error', async () => {
    const large = runs(ok);
    await expect(runWasmSparingGc(large.run, NO_GC_BELOW)).resolves.toBe(ok);
    expect(large.envs).toEqual([{}]);

    const exhausted = runs(outOfMemory);
    const failed = runWasmSparingGc(exhausted.run, NO_GC_BELOW);
    await expect(failed).rejects.toThrow(CueOutOfMemoryError);
    await expect(failed).rejects.toThrow(
      /put a `cue` binary on PATH .* or write the workflow as JSON or YAML/,
    );
  });
});
