/**
 * The `ssh` provider: existing hosts reached over SSH. A server is a host (`address`,
 * `ssh: {user, port, key_file}`) plus a work directory on it, `~/.muster/servers/NAME`:
 *
 * - `create` connects (checking the host key, see `known-hosts.ts`), proves a shell works, and
 *   creates the work directory; it reports `created: false` when the directory was there, so a
 *   rollback removes only what this run made. Idempotent.
 * - `delete` removes the work directory, and nothing else.
 * - `status` is `running` when the host answers over SSH, `stopped` when it does not.
 * - `list` reports the servers this machine created and has not deleted (kept in
 *   `STATE_DIR/ssh/servers.json`), with their status.
 *
 * Steps on ssh servers run on the host directly over SSH (see `remote-steps.ts` and
 * {@link routeSshServers}) rather than through an agent started there: it needs nothing on the
 * host but sshd and a POSIX shell, and the orchestrator keeps control of every step. An agent
 * would survive a dropped connection; here a task cut off mid-step fails with `ssh-disconnected`
 * and is retried by its policy.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join, posix } from 'node:path';
import { NAME_PATTERN } from '../../schemas/src/workflow.ts';
import { DEFAULT_PROVIDER_LIMITS, type ProviderLimits } from '../limits.ts';
import type { CreateResult, ProviderServer, ServerStatus } from '../types.ts';
import { createSshPool, expandHome, type SshPoolOptions, type SshTarget } from './connection.ts';
import { describeTarget, permanent, SSH_FAILURES, transient } from './errors.ts';
import { createKnownHosts } from './known-hosts.ts';
import { shellQuote } from './quote.ts';
import type { SshProvider } from './types.ts';
import { StepFailure } from '../../orchestrator/src/steps/types.ts';

export { routeSshServers, type SshExecutorOptions } from './executor.ts';
export { createSshStepRegistry, SSH_STEP_TYPES } from './remote-steps.ts';
export type { SshConnection, SshTarget } from './connection.ts';
export type { SshProvider } from './types.ts';
export { SSH_FAILURES } from './errors.ts';

/** Options of {@link createSshProvider}. */
export interface SshProviderOptions {
  /** Muster's local state; the provider keeps `ssh/known_hosts` and `ssh/servers.json` there. */
  readonly stateDir: string;
  /**
   * Where work directories go on each host; relative paths are under the remote user's home.
   *
   * @default '.muster/servers'
   */
  readonly remoteRoot?: string;
  /**
   * known_hosts files read besides Muster's own (`STATE_DIR/ssh/known_hosts`, where new hosts
   * are recorded). Missing files are skipped.
   *
   * @default ['~/.ssh/known_hosts']
   */
  readonly knownHostsFiles?: readonly string[];
  /** Trust a host on first use (OpenSSH's `accept-new`); otherwise it must be known. @default true */
  readonly acceptNewHosts?: boolean;
  /** Calls at once and per second to this provider (see `limits.ts`). @default 5 at once, 10/s */
  readonly limits?: ProviderLimits;
  /** Connection settings: timeouts, default keys, channels per connection. */
  readonly connection?: Omit<SshPoolOptions, 'knownHosts' | 'acceptNewHosts'>;
}

/** What `servers.json` keeps of a created server. */
interface Recorded {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  readonly key_file?: string;
}

/**
 * Creates the ssh provider.
 *
 * @example
 * ```ts
 * const ssh = createSshProvider({ stateDir: '.muster' });
 * await ssh.create({ name: 'web-1', address: '10.0.0.5', labels: {}, ssh: { user: 'deploy', port: 22 } }, signal);
 * ```
 */
export function createSshProvider(options: SshProviderOptions): SshProvider {
  const stateDir = join(options.stateDir, 'ssh');
  const registryFile = join(stateDir, 'servers.json');
  const remoteRoot = options.remoteRoot ?? '.muster/servers';
  const pool = createSshPool({
    ...options.connection,
    acceptNewHosts: options.acceptNewHosts ?? true,
    knownHosts: createKnownHosts({
      files: (options.knownHostsFiles ?? ['~/.ssh/known_hosts']).map(expandHome),
      writeTo: join(stateDir, 'known_hosts'),
    }),
  });

  // servers.json is rewritten whole; writes are chained so concurrent creates keep every entry.
  let recording: Promise<unknown> = Promise.resolve();
  const record = (name: string, entry: Recorded | undefined): Promise<void> => {
    const next = recording.then(async () => {
      const all = await readRecorded(registryFile);
      if (entry) all[name] = entry;
      else delete all[name];
      await mkdir(stateDir, { recursive: true });
      const temp = `${registryFile}.${randomBytes(4).toString('hex')}.tmp`;
      await writeFile(temp, `${JSON.stringify(all, null, 2)}\n`);
      await rename(temp, registryFile);
    });
    recording = next.catch(() => {});
    return next;
  };

  const target = (server: ProviderServer): SshTarget => {
    if (!server.address) {
      throw permanent(
        SSH_FAILURES.config,
        `server ${server.name} uses provider "ssh" but has no address; set its address (a host name or IP)`,
        { server: server.name },
      );
    }
    return {
      host: server.address,
      port: server.ssh?.port ?? 22,
      user: server.ssh?.user ?? 'root',
      ...(server.ssh?.key_file !== undefined ? { keyFile: server.ssh.key_file } : {}),
    };
  };

  const connect = async (server: ProviderServer, signal?: AbortSignal) => {
    try {
      return await pool.connect(target(server), signal);
    } catch (e: unknown) {
      throw withServer(e, server.name);
    }
  };

  const remoteWorkdir = async (server: ProviderServer, signal?: AbortSignal) => {
    // The name ends up in `rm -rf`: never let a path through, whatever the caller validated.
    if (!NAME_PATTERN.test(server.name)) {
      throw permanent(SSH_FAILURES.config, `"${server.name}" is not a valid server name`);
    }
    if (posix.isAbsolute(remoteRoot)) return posix.join(remoteRoot, server.name);
    const conn = await connect(server, signal);
    return posix.join(await conn.home(), remoteRoot, server.name);
  };

  /** Runs a shell line on the server's host; fails with its stderr when it exits non-zero. */
  const run = async (server: ProviderServer, line: string, signal: AbortSignal) => {
    const conn = await connect(server, signal);
    let stdout = '';
    let stderr = '';
    const exit = await conn.exec(line, {
      signal,
      onStdout: (t) => (stdout += t),
      onStderr: (t) => (stderr += t),
    });
    if (exit.code !== 0) {
      throw transient(
        'exit-code',
        `server ${server.name} (${describeTarget(conn.target)}): \`${line}\` exited with code ${exit.code ?? `signal ${exit.signal}`}: ${stderr.trim() || '(no output)'}`,
        { exitCode: exit.code, stderr: stderr.trim() },
      );
    }
    return stdout;
  };

  const status = async (server: ProviderServer, signal?: AbortSignal): Promise<ServerStatus> => {
    try {
      await connect(server, signal);
      return { name: server.name, state: 'running', ...addressOf(server) };
    } catch (e: unknown) {
      if (e instanceof StepFailure && DOWN.has(e.type)) {
        return { name: server.name, state: 'stopped', ...addressOf(server) };
      }
      throw e;
    }
  };

  return {
    name: 'ssh',
    limits: options.limits ?? DEFAULT_PROVIDER_LIMITS,
    target,
    connect,
    remoteWorkdir,
    async create(server, signal): Promise<CreateResult> {
      const dir = shellQuote(await remoteWorkdir(server, signal));
      // One round trip proves a shell works and creates the directory, saying if it was there.
      const out = await run(
        server,
        `if [ -d ${dir} ]; then echo existed; else mkdir -p -- ${dir} && echo created; fi`,
        signal,
      );
      const t = target(server);
      await record(server.name, {
        host: t.host,
        port: t.port,
        user: t.user,
        ...(t.keyFile !== undefined ? { key_file: t.keyFile } : {}),
      });
      return { created: out.trim() === 'created', address: t.host };
    },
    async delete(server, signal) {
      const dir = await remoteWorkdir(server, signal);
      await run(server, `rm -rf -- ${shellQuote(dir)}`, signal);
      await record(server.name, undefined);
    },
    status,
    async list() {
      const all = await readRecorded(registryFile);
      return Promise.all(
        Object.entries(all).map(([name, r]) =>
          status({
            name,
            address: r.host,
            labels: {},
            ssh: { user: r.user, port: r.port, ...(r.key_file ? { key_file: r.key_file } : {}) },
          }),
        ),
      );
    },
    close: () => pool.close(),
  };
}

/** Failure types that mean the host is down rather than misconfigured. */
const DOWN: ReadonlySet<string> = new Set([
  SSH_FAILURES.unreachable,
  SSH_FAILURES.timeout,
  SSH_FAILURES.disconnected,
]);

function addressOf(server: ProviderServer) {
  return server.address !== undefined ? { address: server.address } : {};
}

/** Prefixes a failure's message with the server it is about. */
function withServer(e: unknown, name: string): unknown {
  if (!(e instanceof StepFailure) || e.message.startsWith(`server ${name}`)) return e;
  return new StepFailure(e.type, `server ${name}: ${e.message}`, {
    nonRetryable: e.nonRetryable,
    ...(e.details ? { details: e.details } : {}),
    cause: e,
  });
}

async function readRecorded(file: string): Promise<Record<string, Recorded>> {
  try {
    return JSON.parse(await readFile(file, 'utf8')) as Record<string, Recorded>;
  } catch (e: unknown) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw e;
  }
}
