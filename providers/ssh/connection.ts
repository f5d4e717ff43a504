/**
 * SSH connections, pooled: one per `user@host:port` and key, shared by every task on that host,
 * with commands run on their own channels (at most `maxChannels` at once, below OpenSSH's
 * `MaxSessions` of 10) and one SFTP channel for files.
 *
 * A connection holds the event loop only while it is in use: idle, its socket is unref'd, so a
 * finished `muster run` exits without waiting, and after `idleMs` it is closed.
 *
 * @module
 */
import { readFile } from 'node:fs/promises';
import { connect as tcpConnect, type Socket } from 'node:net';
import { homedir } from 'node:os';
import { resolve } from 'node:path';
import type {
  Client,
  ClientChannel,
  ParsedKey,
  utils,
  ServerHostKeyAlgorithm,
  SFTPWrapper,
} from 'ssh2';
import { createLimiter, type Limiter } from '../limits.ts';
import { describeTarget, permanent, SSH_FAILURES, transient } from './errors.ts';
import { keyType, type HostKey, type KnownHosts } from './known-hosts.ts';

type SshClient = Client;
/** What this module uses of ssh2. */
interface Ssh2 {
  readonly Client: typeof Client;
  readonly utils: typeof utils;
}

/**
 * ssh2, loaded on the first connection: importing it takes about 100 ms, which every `muster`
 * command would pay whether or not a workflow has ssh servers. It is CommonJS: its exports are
 * the module's default export.
 */
let ssh2Module: Promise<Ssh2> | undefined;
const loadSsh2 = (): Promise<Ssh2> =>
  (ssh2Module ??= import('ssh2').then((loaded) => loaded.default));

/** Where to connect, and as whom. */
export interface SshTarget {
  readonly host: string;
  readonly port: number;
  readonly user: string;
  /** A private key file (`~/` is the local home); without one, the default keys are tried. */
  readonly keyFile?: string;
}

/** How a remote command ended: its exit code, or the signal that killed it. */
export interface ExecExit {
  readonly code: number | null;
  readonly signal: string | null;
}

/** The streams of a remote command. */
export interface ExecIo {
  /** Written to the command's stdin, which is otherwise closed at once. */
  readonly input?: string;
  /** Aborts the wait for a free channel (a started command is stopped by its caller). */
  readonly signal?: AbortSignal;
  onStdout?(text: string): void;
  onStderr?(text: string): void;
  /**
   * Milliseconds to keep reading after the command exits while a background process it left
   * still holds the output open. @default 500
   */
  readonly drainMs?: number;
}

/** A live connection to one host. */
export interface SshConnection {
  readonly target: SshTarget;
  /** Runs a command line through the remote user's shell. */
  exec(command: string, io?: ExecIo): Promise<ExecExit>;
  /** Runs `fn` with the connection's SFTP session. */
  withSftp<T>(fn: (sftp: SFTPWrapper) => Promise<T>): Promise<T>;
  /** The remote user's home directory. */
  home(): Promise<string>;
}

/** Options of {@link createSshPool}. */
export interface SshPoolOptions {
  readonly knownHosts: KnownHosts;
  /** Trust a host no known_hosts file lists, and record its key. @default true */
  readonly acceptNewHosts?: boolean;
  /** Keys tried, in order, for a target with no `keyFile`. @default `~/.ssh/id_ed25519`, `id_ecdsa`, `id_rsa` */
  readonly defaultKeyFiles?: readonly string[];
  /** Milliseconds for the TCP connection and the SSH handshake. @default 10_000 */
  readonly connectTimeoutMs?: number;
  /** Milliseconds an unused connection stays open. @default 30_000 */
  readonly idleMs?: number;
  /** Commands at once on one connection. @default 8 */
  readonly maxChannels?: number;
}

/** Connections by target. */
export interface SshPool {
  /**
   * The connection to a target, opened on first use.
   *
   * @throws {StepFailure} `ssh-unreachable`, `ssh-timeout`, `ssh-auth`, `ssh-host-key`, `ssh-key`.
   */
  connect(target: SshTarget, signal?: AbortSignal): Promise<SshConnection>;
  /** Closes every connection. */
  close(): Promise<void>;
}

/** The keys OpenSSH tries by default, in its order. */
export const DEFAULT_KEY_FILES = ['~/.ssh/id_ed25519', '~/.ssh/id_ecdsa', '~/.ssh/id_rsa'];

/** Creates a connection pool. */
export function createSshPool(options: SshPoolOptions): SshPool {
  const compiled = {
    knownHosts: options.knownHosts,
    acceptNewHosts: options.acceptNewHosts ?? true,
    defaultKeyFiles: options.defaultKeyFiles ?? DEFAULT_KEY_FILES,
    connectTimeoutMs: options.connectTimeoutMs ?? 10_000,
    idleMs: options.idleMs ?? 30_000,
    maxChannels: options.maxChannels ?? 8,
  };
  const live = new Map<string, Connection>();
  const opening = new Map<string, Promise<Connection>>();
  let closed = false;

  return {
    async connect(target, signal) {
      if (closed) {
        throw transient(SSH_FAILURES.disconnected, 'the ssh connection pool is closed');
      }
      const id = `${describeTarget(target)}#${target.keyFile ?? ''}`;
      const existing = live.get(id);
      if (existing && !existing.closed) return existing;
      let pending = opening.get(id);
      if (!pending) {
        pending = open(target, compiled, () => live.delete(id)).finally(() => opening.delete(id));
        opening.set(id, pending);
      }
      const connection = await abortable(pending, signal);
      live.set(id, connection);
      return connection;
    },
    async close() {
      closed = true;
      await Promise.allSettled([...opening.values()]);
      for (const connection of live.values()) connection.close();
      live.clear();
    },
  };
}

type CompiledPoolOptions = Required<SshPoolOptions>;

async function open(
  target: SshTarget,
  options: CompiledPoolOptions,
  forget: () => void,
): Promise<Connection> {
  const where = describeTarget(target);
  const privateKey = await loadKey(target, options.defaultKeyFiles);
  const knownTypes = await options.knownHosts.knownTypes(target.host, target.port);
  const sock = await openSocket(target, options.connectTimeoutMs);
  const { Client } = await loadSsh2();
  const client = new Client();
  let hostProblem: Error | undefined;

  const hostVerifier = (blob: Buffer, verify: (valid: boolean) => void): void => {
    const key: HostKey = { type: keyType(blob), blob };
    void options.knownHosts.verify(target.host, target.port, key).then(
      async (verdict) => {
        if (verdict.status === 'known') return verify(true);
        if (verdict.status === 'new') {
          if (!options.acceptNewHosts) {
            hostProblem = permanent(
              SSH_FAILURES.hostKey,
              `${where} is not in any known_hosts file, and new hosts are not accepted; add its key (ssh-keyscan -p ${target.port} ${target.host}) to known_hosts`,
              { host: target.host, port: target.port, keyType: key.type },
            );
            return verify(false);
          }
          await options.knownHosts.remember(target.host, target.port, key);
          return verify(true);
        }
        hostProblem = permanent(
          SSH_FAILURES.hostKey,
          verdict.status === 'revoked'
            ? `${where} presented a revoked ${key.type} host key (${verdict.file}:${verdict.line}); refusing to connect`
            : `${where} presented a ${key.type} host key that differs from the one on record (${verdict.file}:${verdict.line}): it may have been reinstalled, or someone is intercepting the connection; if the change is expected, remove that line and run again`,
          {
            host: target.host,
            port: target.port,
            keyType: key.type,
            file: verdict.file,
            line: verdict.line,
          },
        );
        verify(false);
      },
      (e: unknown) => {
        hostProblem = e instanceof Error ? e : new Error(String(e));
        verify(false);
      },
    );
  };

  return new Promise<Connection>((resolvePromise, reject) => {
    let ready = false;
    client.once('ready', () => {
      ready = true;
      resolvePromise(new Connection(client, sock, target, options, forget));
    });
    client.on('error', (e: Error & { level?: string }) => {
      if (ready) return; // the connection's own handlers deal with it
      sock.destroy();
      reject(hostProblem ?? handshakeFailure(e, target, where));
    });
    client.connect({
      sock,
      username: target.user,
      privateKey,
      readyTimeout: options.connectTimeoutMs,
      hostVerifier,
      // Offer first the key types known_hosts has for this host, as OpenSSH does, so a host
      // known by its ECDSA key is not asked for an Ed25519 one it also has.
      ...(knownTypes.length > 0
        ? {
            algorithms: {
              serverHostKey: { prepend: hostKeyAlgorithms(knownTypes), append: [], remove: [] },
            },
          }
        : {}),
    });
  });
}

function handshakeFailure(e: Error & { level?: string }, target: SshTarget, where: string) {
  if (e.level === 'client-authentication') {
    return permanent(
      SSH_FAILURES.auth,
      `${where} refused the key ${target.keyFile ?? '(default keys)'} for user "${target.user}": check the server's ssh.user and ssh.key_file, and that the public key is in ~${target.user}/.ssh/authorized_keys on the host`,
      { host: target.host, port: target.port, user: target.user },
      e,
    );
  }
  if (e.level === 'client-timeout') {
    return transient(
      SSH_FAILURES.timeout,
      `${where} accepted the connection but did not complete the SSH handshake in time`,
      { host: target.host, port: target.port },
      e,
    );
  }
  return transient(
    SSH_FAILURES.unreachable,
    `the SSH handshake with ${where} failed: ${e.message}`,
    { host: target.host, port: target.port },
    e,
  );
}

/** The negotiation names of known_hosts key types (`ssh-rsa` keys sign with SHA-2 first). */
function hostKeyAlgorithms(types: readonly string[]): ServerHostKeyAlgorithm[] {
  const supported = new Set([
    'ssh-ed25519',
    'ecdsa-sha2-nistp256',
    'ecdsa-sha2-nistp384',
    'ecdsa-sha2-nistp521',
  ]);
  const names: string[] = [];
  for (const type of types) {
    if (type === 'ssh-rsa') names.push('rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa');
    else if (supported.has(type)) names.push(type);
  }
  return names as ServerHostKeyAlgorithm[];
}

/** Expands a leading `~/` to the local home directory. */
export function expandHome(path: string): string {
  if (path === '~') return homedir();
  if (path.startsWith('~/')) return resolve(homedir(), path.slice(2));
  return resolve(path);
}

/** Reads and checks the private key; returns its file's bytes, which ssh2 parses again. */
async function loadKey(target: SshTarget, defaults: readonly string[]): Promise<Buffer> {
  const candidates = target.keyFile !== undefined ? [target.keyFile] : defaults;
  for (const candidate of candidates) {
    const file = expandHome(candidate);
    let data: Buffer;
    try {
      data = await readFile(file);
    } catch (e: unknown) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT' && target.keyFile === undefined) continue;
      throw permanent(
        SSH_FAILURES.key,
        code === 'ENOENT'
          ? `the key_file ${file} for ${describeTarget(target)} does not exist; fix ssh.key_file (a path on this machine; ~/ is your home)`
          : `cannot read the key_file ${file}: ${(e as Error).message}`,
        { keyFile: file },
        e,
      );
    }
    const parsed = (await loadSsh2()).utils.parseKey(data);
    const key = Array.isArray(parsed) ? (parsed[0] as ParsedKey | undefined) : parsed;
    if (key === undefined || key instanceof Error) {
      const why = key instanceof Error ? key.message : 'no key found';
      throw permanent(
        SSH_FAILURES.key,
        /passphrase|encrypted/i.test(why)
          ? `the key ${file} is protected by a passphrase, which Muster cannot ask for; use a key without one for automation (a deploy key)`
          : `the key ${file} is not a private key Muster can read (${why})`,
        { keyFile: file },
      );
    }
    if (!key.isPrivateKey()) {
      throw permanent(
        SSH_FAILURES.key,
        `${file} holds a public key; ssh.key_file names the private key (without .pub)`,
        { keyFile: file },
      );
    }
    return data;
  }
  throw permanent(
    SSH_FAILURES.key,
    `no ssh.key_file is set for ${describeTarget(target)} and none of ${defaults.join(', ')} exists; set ssh.key_file on the server`,
    { tried: [...defaults] },
  );
}

function openSocket(target: SshTarget, timeoutMs: number): Promise<Socket> {
  const where = describeTarget(target);
  return new Promise((resolvePromise, reject) => {
    const sock = tcpConnect({ host: target.host, port: target.port });
    const timer = setTimeout(() => {
      sock.destroy();
      reject(
        transient(
          SSH_FAILURES.timeout,
          `no answer from ${where} within ${timeoutMs} ms; check the address and port, and the firewall`,
          { host: target.host, port: target.port },
        ),
      );
    }, timeoutMs);
    sock.once('connect', () => {
      clearTimeout(timer);
      sock.removeAllListeners('error');
      resolvePromise(sock);
    });
    sock.once('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      const why =
        e.code === 'ECONNREFUSED'
          ? 'connection refused; is sshd running there, and is the port right?'
          : e.code === 'ENOTFOUND' || e.code === 'EAI_AGAIN'
            ? `the name ${target.host} does not resolve`
            : e.message;
      reject(
        transient(
          SSH_FAILURES.unreachable,
          `cannot reach ${where}: ${why}`,
          { host: target.host, port: target.port, code: e.code },
          e,
        ),
      );
    });
  });
}

class Connection implements SshConnection {
  closed = false;
  private busy = 0;
  private idleTimer: NodeJS.Timeout | undefined;
  private sftpSession: Promise<SFTPWrapper> | undefined;
  private homeDir: Promise<string> | undefined;
  private readonly channels: Limiter;
  private readonly where: string;

  constructor(
    private readonly client: SshClient,
    private readonly sock: Socket,
    readonly target: SshTarget,
    private readonly options: CompiledPoolOptions,
    private readonly forget: () => void,
  ) {
    this.where = describeTarget(target);
    // One channel stays free for SFTP.
    this.channels = createLimiter({
      batch_size: Math.max(1, options.maxChannels - 1),
      api_rate_limit: 0,
    });
    const gone = () => {
      this.closed = true;
      clearTimeout(this.idleTimer);
      this.forget();
    };
    client.on('close', gone);
    client.on('error', gone);
    this.idle();
  }

  exec(command: string, io: ExecIo = {}): Promise<ExecExit> {
    return this.channels.run(() => this.use(() => this.execNow(command, io)), io.signal);
  }

  withSftp<T>(fn: (sftp: SFTPWrapper) => Promise<T>): Promise<T> {
    return this.use(async () => fn(await this.sftp()));
  }

  home(): Promise<string> {
    this.homeDir ??= this.withSftp(
      (sftp) =>
        new Promise<string>((resolvePromise, reject) =>
          sftp.realpath('.', (e, path) => (e ? reject(e) : resolvePromise(path))),
        ),
    ).catch((e: unknown) => {
      this.homeDir = undefined;
      throw transient(
        SSH_FAILURES.sftp,
        `cannot find the home directory on ${this.where}: ${String(e)}`,
      );
    });
    return this.homeDir;
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.idleTimer);
    this.client.end();
    this.sock.destroy();
  }

  private sftp(): Promise<SFTPWrapper> {
    this.sftpSession ??= new Promise<SFTPWrapper>((resolvePromise, reject) => {
      this.client.sftp((e, sftp) => {
        if (e) {
          this.sftpSession = undefined;
          reject(
            transient(
              SSH_FAILURES.sftp,
              `cannot open an SFTP session on ${this.where}: ${e.message}; is the sftp subsystem enabled in sshd_config?`,
            ),
          );
          return;
        }
        sftp.on('close', () => (this.sftpSession = undefined));
        resolvePromise(sftp);
      });
    });
    return this.sftpSession;
  }

  /** Holds the event loop (and keeps the connection open) while `fn` runs. */
  private async use<T>(fn: () => Promise<T>): Promise<T> {
    if (this.closed) {
      throw transient(SSH_FAILURES.disconnected, `the connection to ${this.where} was closed`);
    }
    this.busy++;
    clearTimeout(this.idleTimer);
    this.sock.ref();
    try {
      return await fn();
    } finally {
      this.busy--;
      if (this.busy === 0) this.idle();
    }
  }

  private idle(): void {
    if (this.closed) return;
    this.sock.unref();
    this.idleTimer = setTimeout(() => this.close(), this.options.idleMs);
    this.idleTimer.unref();
  }

  private execNow(command: string, io: ExecIo): Promise<ExecExit> {
    return new Promise<ExecExit>((resolvePromise, reject) => {
      this.client.exec(command, (e: Error | undefined, stream: ClientChannel) => {
        if (e) {
          reject(
            transient(
              SSH_FAILURES.disconnected,
              `cannot start a command on ${this.where}: ${e.message}`,
            ),
          );
          return;
        }
        let exit: ExecExit | undefined;
        let drain: NodeJS.Timeout | undefined;
        stream.setEncoding('utf8');
        stream.stderr.setEncoding('utf8');
        stream.on('data', (text: string) => io.onStdout?.(text));
        stream.stderr.on('data', (text: string) => io.onStderr?.(text));
        stream.on('exit', (code: number | null, signal?: string) => {
          exit = { code: typeof code === 'number' ? code : null, signal: signal ?? null };
          // A background process may keep the output open: read it a little longer, then go.
          drain = setTimeout(() => stream.close(), io.drainMs ?? 500);
        });
        stream.on('close', () => {
          clearTimeout(drain);
          if (exit) resolvePromise(exit);
          else {
            reject(
              transient(
                SSH_FAILURES.disconnected,
                `the connection to ${this.where} dropped while a command was running; it may or may not have finished`,
              ),
            );
          }
        });
        stream.on('error', () => {});
        if (io.input === undefined) stream.end();
        else stream.end(io.input);
      });
    });
  }
}

function abortable<T>(promise: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (!signal) return promise;
  if (signal.aborted) return Promise.reject(signal.reason);
  return new Promise<T>((resolvePromise, reject) => {
    const onAbort = () => reject(signal.reason);
    signal.addEventListener('abort', onAbort, { once: true });
    promise.then(
      (value) => {
        signal.removeEventListener('abort', onAbort);
        resolvePromise(value);
      },
      (e: unknown) => {
        signal.removeEventListener('abort', onAbort);
        reject(e);
      },
    );
  });
}
