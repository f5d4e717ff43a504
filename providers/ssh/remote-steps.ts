/**
 * Steps on an ssh server, run on the host itself: `script` over an SSH channel, `file_write` over
 * SFTP; `echo` and `sleep` run here, as they touch no host. Other step types fail clearly.
 *
 * `script` never sends an unquoted string: the command line is built from the argv with every word
 * single-quoted (see `quote.ts`), so arguments with spaces, quotes or `$` arrive as written. With
 * `shell: true` the command runs under the remote `/bin/sh -c`, as it does locally. A small prelude
 * reports the process id, changes to the working directory and exports the environment, then
 * `exec`s the command. sshd starts each command in its own session, so on abort the whole process
 * group gets SIGTERM, then SIGKILL after a grace period, as local scripts do.
 *
 * The params, outputs (`$MUSTER_OUTPUT`) and failure types are those of the local handlers, so a
 * workflow moves between local and ssh servers unchanged.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { posix } from 'node:path';
import * as v from 'valibot';
import { echoStep } from '../../orchestrator/src/steps/echo.ts';
import {
  FileWriteParamsSchema,
  FileWriteRollbackDataSchema,
  replacedFile,
  type FileWriteParams,
  type FileWriteRollbackData,
} from '../../orchestrator/src/steps/file-write.ts';
import { lineSplitter } from '../../orchestrator/src/steps/line-splitter.ts';
import { createStepRegistry } from '../../orchestrator/src/steps/registry.ts';
import {
  parseOutputFile,
  scriptEnvironment,
  ScriptParamsSchema,
  scriptSettings,
  type ScriptParams,
  type ScriptSettings,
  type ScriptStepOptions,
} from '../../orchestrator/src/steps/script.ts';
import { sleepStep } from '../../orchestrator/src/steps/sleep.ts';
import {
  abortFailure,
  StepFailure,
  type StepContext,
  type StepHandler,
  type StepRegistry,
  type StepResult,
} from '../../orchestrator/src/steps/types.ts';
import type { SshConnection } from './connection.ts';
import { permanent, SSH_FAILURES } from './errors.ts';
import { shellCommand, shellQuote } from './quote.ts';
import {
  createExclusive,
  isDir,
  isFile,
  mkdirp,
  readRemote,
  removeEmptyDirs,
  resolveLink,
  statOrMissing,
  unlinkRemote,
  writeAtomic,
} from './sftp.ts';

/** The step types that run on ssh servers. */
export const SSH_STEP_TYPES = ['script', 'file_write', 'echo', 'sleep'] as const;

/** Options of the remote `script` step: those of the local one, with the same defaults. */
export type RemoteScriptOptions = ScriptStepOptions;

/** Options of {@link createSshStepRegistry}. */
export interface SshStepRegistryOptions extends RemoteScriptOptions {
  /** The server's name, for messages. */
  readonly server: string;
  /** The connection, opened on first use. */
  readonly connection: () => Promise<SshConnection>;
  /**
   * The registry steps would otherwise use: its other types (`http`, custom handlers) are
   * registered as handlers that fail with `ssh-unsupported-step`, naming what to do instead.
   */
  readonly base?: StepRegistry;
}

/**
 * Creates the registry of steps for one ssh server.
 *
 * @example
 * ```ts
 * const registry = createSshStepRegistry({ server: 'web-1', connection: () => pool.connect(target) });
 * await runStep(registry, step, { ...ctx, workdir: '/home/deploy/.muster/servers/web-1' });
 * ```
 */
export function createSshStepRegistry(options: SshStepRegistryOptions): StepRegistry {
  const registry = createStepRegistry({ builtins: false });
  registry.register(echoStep);
  registry.register(sleepStep);
  registry.register(createRemoteScriptStep(options.connection, options));
  registry.register(createRemoteFileWriteStep(options.connection));
  const supported = new Set<string>(SSH_STEP_TYPES);
  for (const type of options.base?.types() ?? []) {
    if (!supported.has(type)) registry.register(unsupportedStep(type, options.server));
  }
  return registry;
}

function unsupportedStep(type: string, server: string): StepHandler<unknown> {
  return {
    type,
    params: v.unknown(),
    async execute() {
      throw permanent(
        SSH_FAILURES.unsupported,
        `a "${type}" step cannot run on ssh server ${server}: over SSH Muster runs ${SSH_STEP_TYPES.join(', ')} steps; do the same with a script step (e.g. curl for http), or run it on a local server`,
        { type, server },
      );
    },
  };
}

/** Creates the `script` step that runs on the host over SSH. */
export function createRemoteScriptStep(
  connection: () => Promise<SshConnection>,
  options: RemoteScriptOptions = {},
): StepHandler<ScriptParams> {
  const settings = scriptSettings(options);
  return {
    type: 'script',
    params: ScriptParamsSchema,
    async execute(params, ctx) {
      if (ctx.signal.aborted) throw abortFailure(ctx.signal);
      return runRemoteScript(await connection(), params, ctx, settings);
    },
  };
}

const PID_MARKER = /^muster-pid:(\d+)$/;

/** The command line sent for a script: prelude, then `exec` of the quoted argv. */
export function remoteScriptLine(
  argv: readonly string[],
  cwd: string,
  env: Readonly<Record<string, string>>,
): string {
  const exports = Object.entries(env).map(([k, value]) => shellQuote(`${k}=${value}`));
  return [
    `printf 'muster-pid:%s\\n' "$$" >&2`,
    `cd ${shellQuote(cwd)} || exit 125`,
    ...(exports.length > 0 ? [`export ${exports.join(' ')}`] : []),
    `exec ${shellCommand(argv)}`,
  ].join('; ');
}

async function runRemoteScript(
  conn: SshConnection,
  params: ScriptParams,
  ctx: StepContext,
  options: ScriptSettings,
): Promise<StepResult> {
  const cwd = posix.resolve(ctx.workdir, params.cwd ?? '.');
  const outputFile = `/tmp/muster-output-${randomBytes(12).toString('hex')}`;
  await conn.withSftp(async (sftp) => {
    const info = await statOrMissing(sftp, cwd);
    if (!info || !isDir(info)) {
      throw permanent(
        'cwd-not-found',
        `working directory ${cwd} on ${ctx.server?.name ?? conn.target.host} ${info ? 'is not a directory' : 'does not exist'}; fix "cwd" or create it in an earlier step`,
        { cwd },
      );
    }
    await createExclusive(sftp, outputFile);
  });
  try {
    const env = scriptEnvironment(params, ctx, outputFile);
    const argv = params.shell
      ? ['/bin/sh', '-c', params.command, 'sh', ...params.args]
      : [params.command, ...params.args];
    const exit = await execWithKill(conn, remoteScriptLine(argv, cwd, env), params, ctx, options);
    if (ctx.signal.aborted) throw abortFailure(ctx.signal);
    if (exit.code !== 0) throw exitFailure(params, exit);
    const text = await conn.withSftp((sftp) => readRemote(sftp, outputFile));
    const outputs = parseOutputFile(text.toString('utf8'));
    return Object.keys(outputs).length > 0 ? { outputs } : {};
  } finally {
    await conn.withSftp((sftp) => unlinkRemote(sftp, outputFile)).catch(() => {});
  }
}

interface ScriptExit {
  readonly code: number | null;
  readonly signal: string | null;
  readonly stderr: string[];
}

async function execWithKill(
  conn: SshConnection,
  line: string,
  params: ScriptParams,
  ctx: StepContext,
  options: ScriptSettings,
): Promise<ScriptExit> {
  const stderrTail: string[] = [];
  let pid: number | undefined;
  let killing: Promise<void> | undefined;
  let exited = false;
  const stdout = lineSplitter((l) => ctx.log('stdout', l));
  const stderr = lineSplitter((l) => {
    // The prelude's first stderr line is the process id, for killing the group on abort.
    if (pid === undefined) {
      const marker = PID_MARKER.exec(l);
      if (marker) {
        pid = Number(marker[1]);
        if (ctx.signal.aborted) onAbort();
        return;
      }
    }
    ctx.log('stderr', l);
    stderrTail.push(l);
    if (stderrTail.length > options.stderrTailLines) stderrTail.shift();
  });
  const kill = (sig: 'TERM' | 'KILL') =>
    conn
      .exec(`kill -${sig} -- -${pid} 2>/dev/null || kill -${sig} ${pid} 2>/dev/null; true`)
      .catch(() => undefined);
  function onAbort() {
    if (pid === undefined || killing || exited) return;
    ctx.log('info', `stopping remote process group ${pid} (SIGTERM)`);
    killing = (async () => {
      await kill('TERM');
      await new Promise((r) => setTimeout(r, options.killGraceMs).unref());
      if (exited) return;
      ctx.log(
        'info',
        `remote process group ${pid} outlived SIGTERM by ${options.killGraceMs} ms; sending SIGKILL`,
      );
      await kill('KILL');
    })();
  }
  ctx.signal.addEventListener('abort', onAbort, { once: true });
  try {
    const exit = await conn.exec(line, {
      ...(params.input !== undefined ? { input: params.input } : {}),
      drainMs: options.drainMs,
      onStdout: stdout.push,
      onStderr: stderr.push,
    });
    exited = true;
    stdout.flush();
    stderr.flush();
    return { ...exit, stderr: stderrTail };
  } finally {
    ctx.signal.removeEventListener('abort', onAbort);
  }
}

function exitFailure(params: ScriptParams, exit: ScriptExit): StepFailure {
  const name = params.shell ? 'the shell script' : `"${params.command}"`;
  const last = exit.stderr[exit.stderr.length - 1];
  const details = { exitCode: exit.code, signal: exit.signal, stderr: exit.stderr };
  // The command is exec'd by the remote sh, which reports "not found" and "not executable" so.
  if (exit.code === 127 || exit.code === 126) {
    const found = exit.code === 126;
    return new StepFailure(
      found ? 'command-not-executable' : 'command-not-found',
      `${name} exited with code ${exit.code} (command ${found ? 'not executable' : 'not found'} on the host)${last ? `: ${last}` : ''}`,
      { nonRetryable: true, details },
    );
  }
  const how = exit.signal ? `was killed by SIG${exit.signal}` : `exited with code ${exit.code}`;
  return new StepFailure('exit-code', `${name} ${how}${last ? `: ${last}` : ''}`, { details });
}

/** A new file's mode when `mode` is not given: what a umask of 022 gives. */
const DEFAULT_FILE_MODE = 0o644;

/** Creates the `file_write` step that writes on the host over SFTP; rollback restores. */
export function createRemoteFileWriteStep(
  connection: () => Promise<SshConnection>,
): StepHandler<FileWriteParams> {
  return {
    type: 'file_write',
    params: FileWriteParamsSchema,
    async execute(params, ctx) {
      const conn = await connection();
      return conn.withSftp(async (sftp) => {
        const target = await resolveLink(sftp, posix.resolve(ctx.workdir, params.path));
        const before = await statOrMissing(sftp, target);
        if (before && !isFile(before)) {
          throw permanent('invalid-path', `${target} exists and is not a regular file`, {
            path: target,
          });
        }
        let rollbackData: FileWriteRollbackData;
        if (before) {
          const content = await readRemote(sftp, target);
          rollbackData = replacedFile(target, before, content);
        } else {
          const createdDir = await mkdirp(sftp, posix.dirname(target));
          rollbackData = { path: target, existed: false, ...(createdDir ? { createdDir } : {}) };
        }
        const mode = params.mode ?? (before ? before.mode & 0o7777 : DEFAULT_FILE_MODE);
        await writeAtomic(sftp, target, Buffer.from(params.content), {
          mode,
          ...(before ? { owner: { uid: before.uid, gid: before.gid } } : {}),
        });
        ctx.log(
          'info',
          `wrote ${Buffer.byteLength(params.content)} bytes to ${conn.target.host}:${target} (mode 0${mode.toString(8).padStart(3, '0')})`,
        );
        return { outputs: { path: target }, rollbackData };
      });
    },
    async rollback(_params, data, ctx) {
      const parsed = v.safeParse(FileWriteRollbackDataSchema, data);
      if (!parsed.success) {
        throw permanent(
          'invalid-rollback-data',
          'file_write cannot roll back: the saved rollback data is not what it wrote',
          { rollbackData: data },
        );
      }
      const saved = parsed.output;
      const conn = await connection();
      await conn.withSftp(async (sftp) => {
        if (saved.existed) {
          await writeAtomic(sftp, saved.path, Buffer.from(saved.content, 'base64'), {
            mode: saved.mode,
            owner: { uid: saved.uid, gid: saved.gid },
          });
          ctx.log('info', `restored ${conn.target.host}:${saved.path}`);
          return;
        }
        await unlinkRemote(sftp, saved.path);
        ctx.log('info', `removed ${conn.target.host}:${saved.path}`);
        if (saved.createdDir) {
          await removeEmptyDirs(sftp, posix.dirname(saved.path), saved.createdDir);
        }
      });
    },
  };
}
