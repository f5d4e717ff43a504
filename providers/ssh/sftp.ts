/**
 * Promise wrappers over the SFTP calls the ssh provider uses, with SFTP status codes turned into
 * {@link StepFailure}s that name the remote path.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { posix } from 'node:path';
import type { Attributes, SFTPWrapper } from 'ssh2';
import { StepFailure } from '../../orchestrator/src/steps/types.ts';
import { permanent, SSH_FAILURES, transient } from './errors.ts';

/** SFTP status codes (draft-ietf-secsh-filexfer-02 §7). */
const NO_SUCH_FILE = 2;
const PERMISSION_DENIED = 3;

type SftpError = Error & { code?: number };

/** Whether an SFTP error means the path does not exist. */
export function isMissing(e: unknown): boolean {
  return (e as SftpError | undefined)?.code === NO_SUCH_FILE;
}

/** An SFTP error as a failure: `permission-denied` and missing paths are not retried. */
export function sftpFailure(e: unknown, action: string, path: string): StepFailure {
  if (e instanceof StepFailure) return e;
  const error = e as SftpError;
  const details = { path, sftpCode: error.code };
  if (error.code === PERMISSION_DENIED) {
    return permanent(
      'permission-denied',
      `cannot ${action} ${path}: permission denied`,
      details,
      e,
    );
  }
  if (error.code === NO_SUCH_FILE) {
    return permanent(
      'invalid-path',
      `cannot ${action} ${path}: no such file or directory`,
      details,
      e,
    );
  }
  return transient(SSH_FAILURES.sftp, `cannot ${action} ${path}: ${error.message}`, details, e);
}

const call = <T>(fn: (cb: (e: Error | undefined | null, value: T) => void) => void) =>
  new Promise<T>((resolve, reject) => fn((e, value) => (e ? reject(e) : resolve(value))));

/** `stat`, or `undefined` when the path does not exist. */
export async function statOrMissing(
  sftp: SFTPWrapper,
  path: string,
  link: 'follow' | 'nofollow' = 'follow',
): Promise<Attributes | undefined> {
  try {
    return await call<Attributes>((cb) =>
      link === 'follow' ? sftp.stat(path, cb) : sftp.lstat(path, cb),
    );
  } catch (e: unknown) {
    if (isMissing(e)) return undefined;
    throw sftpFailure(e, 'inspect', path);
  }
}

/** Whether a mode is a directory's / a regular file's / a symlink's. */
export const isDir = (a: Attributes) => (a.mode & 0o170000) === 0o040000;
export const isFile = (a: Attributes) => (a.mode & 0o170000) === 0o100000;
export const isLink = (a: Attributes) => (a.mode & 0o170000) === 0o120000;

/** Follows a symlink at `path` (a dangling one too) to the path it names. */
export async function resolveLink(sftp: SFTPWrapper, path: string): Promise<string> {
  const info = await statOrMissing(sftp, path, 'nofollow');
  if (!info || !isLink(info)) return path;
  try {
    return await call<string>((cb) => sftp.realpath(path, cb));
  } catch {
    const target = await call<string>((cb) => sftp.readlink(path, cb)).catch((e: unknown) => {
      throw sftpFailure(e, 'read the link', path);
    });
    return posix.resolve(posix.dirname(path), target);
  }
}

/** Creates `dir` and its missing parents; returns the topmost directory it created, if any. */
export async function mkdirp(sftp: SFTPWrapper, dir: string): Promise<string | undefined> {
  const missing: string[] = [];
  for (let at = dir; ; at = posix.dirname(at)) {
    const info = await statOrMissing(sftp, at);
    if (info) {
      if (!isDir(info)) {
        throw permanent('invalid-path', `cannot create ${dir}: ${at} is not a directory`, {
          path: dir,
        });
      }
      break;
    }
    missing.unshift(at);
    if (at === posix.dirname(at)) break;
  }
  for (const at of missing) {
    await call<void>((cb) => sftp.mkdir(at, cb)).catch(async (e: unknown) => {
      // Another task may have created it meanwhile.
      const info = await statOrMissing(sftp, at);
      if (!info || !isDir(info)) throw sftpFailure(e, 'create the directory', at);
    });
  }
  return missing[0];
}

/** Reads a whole remote file. */
export async function readRemote(sftp: SFTPWrapper, path: string): Promise<Buffer> {
  return call<Buffer>((cb) => sftp.readFile(path, cb)).catch((e: unknown) => {
    throw sftpFailure(e, 'read', path);
  });
}

/** Removes a file; a missing one is fine. */
export async function unlinkRemote(sftp: SFTPWrapper, path: string): Promise<void> {
  await call<void>((cb) => sftp.unlink(path, cb)).catch((e: unknown) => {
    if (!isMissing(e)) throw sftpFailure(e, 'remove', path);
  });
}

/** Removes `from` and its parents up to `top` while they are empty. */
export async function removeEmptyDirs(sftp: SFTPWrapper, from: string, top: string): Promise<void> {
  for (let dir = from; ; dir = posix.dirname(dir)) {
    if (posix.relative(top, dir).startsWith('..')) return;
    try {
      await call<void>((cb) => sftp.rmdir(dir, cb));
    } catch {
      return;
    }
    if (dir === top) return;
  }
}

/** Creates an empty private file that did not exist (`wx`, mode 0600). */
export async function createExclusive(sftp: SFTPWrapper, path: string): Promise<void> {
  const handle = await call<Buffer>((cb) => sftp.open(path, 'wx', { mode: 0o600 }, cb)).catch(
    (e: unknown) => {
      throw sftpFailure(e, 'create', path);
    },
  );
  await call<void>((cb) => sftp.close(handle, cb));
}

/** The largest write sent in one SFTP packet; OpenSSH accepts up to 256 KiB. */
const CHUNK = 32 * 1024;

/**
 * Writes `content` to a temporary file beside `target`, flushes it (where the server supports
 * `fsync@openssh.com`), sets its owner (best effort) and mode, then renames it over `target`
 * with `posix-rename@openssh.com`, so readers see the old file or the new one, never half.
 */
export async function writeAtomic(
  sftp: SFTPWrapper,
  target: string,
  content: Buffer,
  options: { mode: number; owner?: { uid: number; gid: number } },
): Promise<void> {
  const temp = posix.join(
    posix.dirname(target),
    `.${posix.basename(target)}.${randomBytes(6).toString('hex')}.muster-tmp`,
  );
  const handle = await call<Buffer>((cb) => sftp.open(temp, 'wx', { mode: 0o600 }, cb)).catch(
    (e: unknown) => {
      throw sftpFailure(e, 'write', target);
    },
  );
  let closed = false;
  try {
    for (let offset = 0; offset < content.length; offset += CHUNK) {
      const length = Math.min(CHUNK, content.length - offset);
      await call<void>((cb) => sftp.write(handle, content, offset, length, offset, cb));
    }
    await call<unknown>((cb) => sftp.ext_openssh_fsync(handle, cb)).catch(() => {});
    if (options.owner) {
      const { uid, gid } = options.owner;
      // Only root can give a file away; anyone else keeps it as their own. Before chmod,
      // because chown clears setuid and setgid bits.
      await call<void>((cb) => sftp.fchown(handle, uid, gid, cb)).catch(() => {});
    }
    await call<void>((cb) => sftp.fchmod(handle, options.mode, cb));
    await call<void>((cb) => sftp.close(handle, cb));
    closed = true;
    await call<void>((cb) => sftp.ext_openssh_rename(temp, target, cb));
  } catch (e: unknown) {
    if (!closed) await call<void>((cb) => sftp.close(handle, cb)).catch(() => {});
    await unlinkRemote(sftp, temp).catch(() => {});
    throw sftpFailure(e, 'write', target);
  }
}
