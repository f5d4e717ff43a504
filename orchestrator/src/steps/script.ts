/**
 * The `script` step: runs a command, streams its output line by line, and reads outputs it writes
 * to `$MUSTER_OUTPUT`.
 *
 * The command is an argv array unless `shell: true`, so arguments are never re-parsed by a shell.
 * The process leads its own process group (`detached: true`): on abort the whole group gets
 * SIGTERM, then SIGKILL after a grace period, so background children die with it.
 *
 * @module
 */
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import * as v from 'valibot';
import { lineSplitter } from './line-splitter.ts';
import { signalProcessGroup, waitForProcessGroupExit } from './process-group.ts';
import {
  abortFailure,
  StepFailure,
  type StepContext,
  type StepHandler,
  type StepResult,
} from './types.ts';

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
/** Environment values may be written as numbers or booleans (`PORT: 8080`); processes get strings. */
const EnvValue = v.pipe(v.union([v.string(), v.number(), v.boolean()]), v.transform(String));

/** Params of the `script` step. */
export const ScriptParamsSchema = v.strictObject({
  /** The program (looked up on PATH unless it holds a `/`), or with `shell: true` a shell script. */
  command: v.pipe(v.string(), v.minLength(1, 'needs a command')),
  /** Arguments; with `shell: true` they are `$1`, `$2`, … of the script. */
  args: v.optional(v.array(v.string()), () => []),
  /** Run `command` with `/bin/sh -c`. */
  shell: v.optional(v.boolean(), false),
  /** Working directory, relative to the step's workdir. */
  cwd: v.optional(v.pipe(v.string(), v.minLength(1))),
  /** Added to the environment, over the process's own and the engine's `MUSTER_*` variables. */
  env: v.optional(
    v.record(
      v.pipe(v.string(), v.regex(ENV_NAME, 'is not a valid environment variable name')),
      EnvValue,
    ),
    () => ({}),
  ),
  /** Written to the process's stdin, which is otherwise empty. */
  input: v.optional(v.string()),
});
export type ScriptParams = v.InferOutput<typeof ScriptParamsSchema>;

/** Options of {@link createScriptStep}. */
export interface ScriptStepOptions {
  /**
   * Milliseconds between SIGTERM and SIGKILL when the step is aborted.
   *
   * @default 2000
   */
  readonly killGraceMs?: number;
  /**
   * Milliseconds to keep reading output after the process exits while a background child it left
   * running still holds stdout or stderr open.
   *
   * @default 500
   */
  readonly drainMs?: number;
  /**
   * Stderr lines kept for the failure's `details.stderr`.
   *
   * @default 20
   */
  readonly stderrTailLines?: number;
}

/** Creates a `script` step handler. */
export function createScriptStep(options: ScriptStepOptions = {}): StepHandler<ScriptParams> {
  const settings = scriptSettings(options);
  return {
    type: 'script',
    params: ScriptParamsSchema,
    execute: (params, ctx) => runScript(params, ctx, settings),
  };
}

/** The built-in `script` step. */
export const scriptStep = createScriptStep();

/**
 * What a script finds in its environment, here and over ssh: the `MUSTER_*` facts of its task, the
 * run's environment, then the step's own `env`, and last `MUSTER_OUTPUT`, which nothing overrides.
 *
 * @param params The step's params.
 * @param ctx The step's context.
 * @param outputFile Where the script writes its outputs.
 * @returns The variables; the local step puts its own process's environment under them.
 */
export function scriptEnvironment(
  params: ScriptParams,
  ctx: StepContext,
  outputFile: string,
): Record<string, string> {
  return {
    MUSTER_RUN_ID: ctx.runId,
    MUSTER_TASK_ID: ctx.taskId,
    MUSTER_ATTEMPT: String(ctx.attempt),
    ...(ctx.server ? { MUSTER_SERVER: ctx.server.name } : {}),
    MUSTER_WORKDIR: ctx.workdir,
    ...ctx.env,
    ...params.env,
    MUSTER_OUTPUT: outputFile,
  };
}

/** A script step's options with their defaults filled in: here, and over ssh. */
export type ScriptSettings = Required<ScriptStepOptions>;

/** Fills in the defaults of a script step's options. */
export function scriptSettings(options: ScriptStepOptions): ScriptSettings {
  return {
    killGraceMs: options.killGraceMs ?? 2000,
    drainMs: options.drainMs ?? 500,
    stderrTailLines: options.stderrTailLines ?? 20,
  };
}

interface ProcessExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
  readonly stderr: string[];
}

async function runScript(
  params: ScriptParams,
  ctx: StepContext,
  options: ScriptSettings,
): Promise<StepResult> {
  if (ctx.signal.aborted) throw abortFailure(ctx.signal);
  const cwd = resolve(ctx.workdir, params.cwd ?? '.');
  await assertDirectory(cwd);
  const outputDir = await mkdtemp(join(tmpdir(), 'muster-step-'));
  const outputFile = join(outputDir, 'output');
  try {
    await writeFile(outputFile, '', { mode: 0o600 });
    const env: Record<string, string> = {
      ...(process.env as Record<string, string>),
      ...scriptEnvironment(params, ctx, outputFile),
    };
    const [file, argv] = params.shell
      ? ['/bin/sh', ['-c', params.command, 'sh', ...params.args]]
      : [params.command, params.args];
    const exit = await spawnAndWait(file, argv, { cwd, env, input: params.input }, ctx, options);
    if (ctx.signal.aborted) throw abortFailure(ctx.signal);
    if (exit.code !== 0) throw exitFailure(params, exit);
    const outputs = parseOutputFile(await readFile(outputFile, 'utf8'));
    return Object.keys(outputs).length > 0 ? { outputs } : {};
  } finally {
    await rm(outputDir, { recursive: true, force: true });
  }
}

async function assertDirectory(cwd: string): Promise<void> {
  const info = await stat(cwd).catch(() => undefined);
  if (!info?.isDirectory()) {
    throw new StepFailure(
      'cwd-not-found',
      `working directory ${cwd} ${info ? 'is not a directory' : 'does not exist'}; fix "cwd" or create it in an earlier step`,
      { nonRetryable: true, details: { cwd } },
    );
  }
}

function spawnAndWait(
  file: string,
  args: readonly string[],
  io: { cwd: string; env: Record<string, string>; input: string | undefined },
  ctx: StepContext,
  options: ScriptSettings,
): Promise<ProcessExit> {
  return new Promise((resolvePromise, reject) => {
    const child = spawn(file, args, {
      cwd: io.cwd,
      env: io.env,
      detached: true,
      // stdin is a pipe we close at once when there is no input: the process reads EOF.
      stdio: 'pipe',
    });
    const stderrTail: string[] = [];
    const stdout = lineSplitter((line) => ctx.log('stdout', line));
    const stderr = lineSplitter((line) => {
      ctx.log('stderr', line);
      stderrTail.push(line);
      if (stderrTail.length > options.stderrTailLines) stderrTail.shift();
    });
    child.stdout.setEncoding('utf8').on('data', stdout.push);
    child.stderr.setEncoding('utf8').on('data', stderr.push);
    const stdoutDone = new Promise<void>((r) => child.stdout.once('close', r));
    const stderrDone = new Promise<void>((r) => child.stderr.once('close', r));
    // A process that exits without reading its input closes the pipe under us: not an error.
    child.stdin.on('error', () => {});
    if (io.input === undefined) child.stdin.end();
    else child.stdin.end(io.input);

    let settled = false;
    let drainTimer: NodeJS.Timeout | undefined;
    let killed: Promise<void> | undefined;
    const pgid = child.pid;

    const onAbort = () => {
      if (pgid === undefined || killed) return;
      ctx.log('info', `stopping process group ${pgid} (SIGTERM)`);
      signalProcessGroup(pgid, 'SIGTERM');
      killed = (async () => {
        if (await waitForProcessGroupExit(pgid, options.killGraceMs)) return;
        ctx.log(
          'info',
          `process group ${pgid} outlived SIGTERM by ${options.killGraceMs} ms; sending SIGKILL`,
        );
        signalProcessGroup(pgid, 'SIGKILL');
        if (!(await waitForProcessGroupExit(pgid, 2000))) {
          ctx.log('info', `process group ${pgid} is still there after SIGKILL`);
        }
      })();
    };
    if (ctx.signal.aborted) onAbort();
    else ctx.signal.addEventListener('abort', onAbort, { once: true });

    const finish = (outcome: { exit: ProcessExit } | { error: unknown }) => {
      if (settled) return;
      settled = true;
      clearTimeout(drainTimer);
      ctx.signal.removeEventListener('abort', onAbort);
      stdout.flush();
      stderr.flush();
      if ('exit' in outcome) resolvePromise(outcome.exit);
      else reject(outcome.error);
    };

    child.on('error', (e: NodeJS.ErrnoException) => {
      // 'error' without a pid means the process never started.
      if (child.pid === undefined) finish({ error: spawnFailure(file, io.cwd, e) });
    });
    child.once('exit', (code, signal) => {
      void (async () => {
        if (killed) await killed;
        // Background children may still hold the pipes: read what they write for a moment, then
        // let go rather than wait for a daemon to exit.
        const drained = await Promise.race([
          Promise.all([stdoutDone, stderrDone]).then(() => true),
          new Promise<boolean>((r) => (drainTimer = setTimeout(() => r(false), options.drainMs))),
        ]);
        if (!drained) {
          child.stdout.destroy();
          child.stderr.destroy();
          ctx.log('info', 'background processes still hold the output open; no longer reading it');
        }
        finish({ exit: { code, signal, stderr: stderrTail } });
      })();
    });
  });
}

function spawnFailure(file: string, cwd: string, e: NodeJS.ErrnoException): StepFailure {
  const where = file.includes('/') ? `${file} (from ${cwd})` : `"${file}" on PATH`;
  if (e.code === 'ENOENT') {
    return new StepFailure(
      'command-not-found',
      `command not found: ${where}; check the name, or install it in an earlier step`,
      { nonRetryable: true, details: { command: file, cwd }, cause: e },
    );
  }
  if (e.code === 'EACCES') {
    return new StepFailure(
      'command-not-executable',
      `cannot execute ${where}: permission denied; make it executable (chmod +x) or run it through an interpreter`,
      { nonRetryable: true, details: { command: file, cwd }, cause: e },
    );
  }
  return new StepFailure('spawn-error', `cannot start ${where}: ${e.message}`, {
    details: { command: file, cwd, code: e.code },
    cause: e,
  });
}

function exitFailure(params: ScriptParams, exit: ProcessExit): StepFailure {
  const name = params.shell ? 'the shell script' : `"${params.command}"`;
  const last = exit.stderr[exit.stderr.length - 1];
  const details = { exitCode: exit.code, signal: exit.signal, stderr: exit.stderr };
  // In a shell, 127 and 126 are how "not found" and "not executable" surface.
  if (params.shell && (exit.code === 127 || exit.code === 126)) {
    const found = exit.code === 126;
    return new StepFailure(
      found ? 'command-not-executable' : 'command-not-found',
      `${name} exited with code ${exit.code} (command ${found ? 'not executable' : 'not found'})${last ? `: ${last}` : ''}`,
      { nonRetryable: true, details },
    );
  }
  const how = exit.signal ? `was killed by ${exit.signal}` : `exited with code ${exit.code}`;
  return new StepFailure('exit-code', `${name} ${how}${last ? `: ${last}` : ''}`, { details });
}

const OUTPUT_NAME = /^[A-Za-z_][A-Za-z0-9_.-]*$/;

/**
 * Parses what a script wrote to `$MUSTER_OUTPUT`, in the format CI systems use: `name=value` lines,
 * and `name<<DELIMITER` … `DELIMITER` for values spanning lines. Later values win.
 *
 * @throws {StepFailure} `invalid-output` naming the first malformed line.
 */
export function parseOutputFile(text: string): Record<string, string> {
  const outputs: Record<string, string> = {};
  const lines = text.split('\n').map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l));
  if (lines[lines.length - 1] === '') lines.pop();
  const bad = (lineNo: number, why: string) =>
    new StepFailure('invalid-output', `$MUSTER_OUTPUT line ${lineNo}: ${why}`, {
      nonRetryable: true,
      details: { line: lineNo },
    });
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? '';
    if (line.trim() === '') continue;
    const heredoc = /^([^=<]+)<<(.+)$/.exec(line);
    const eq = line.indexOf('=');
    const name = heredoc ? heredoc[1] : eq > 0 ? line.slice(0, eq) : undefined;
    if (name === undefined)
      throw bad(i + 1, `expected name=value or name<<DELIMITER, found "${line}"`);
    if (!OUTPUT_NAME.test(name)) throw bad(i + 1, `"${name}" is not a valid output name`);
    if (heredoc) {
      const delimiter = heredoc[2] ?? '';
      const end = lines.indexOf(delimiter, i + 1);
      if (end < 0) throw bad(i + 1, `no closing "${delimiter}" line for "${name}"`);
      outputs[name] = lines.slice(i + 1, end).join('\n');
      i = end;
    } else {
      outputs[name] = line.slice(eq + 1);
    }
  }
  return outputs;
}
