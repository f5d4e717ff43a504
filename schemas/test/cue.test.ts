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
import { _resetCue, exportCue, resolveCueEngine } from '../src/cue.ts';

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
