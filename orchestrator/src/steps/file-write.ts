/**
 * The `file_write` step: writes a file atomically, and can put back what was there before.
 *
 * The content goes to a temporary file in the same directory, is flushed to disk, then renamed over
 * the target, so readers see the old file or the new one, never half of one. A symlink is written
 * through (its target is replaced, the link stays). An existing file keeps its mode and owner unless
 * `mode` says otherwise.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import {
  lstat,
  mkdir,
  open,
  readFile,
  readlink,
  realpath,
  rename,
  rmdir,
  stat,
  unlink,
} from 'node:fs/promises';
import { basename, dirname, relative, resolve } from 'node:path';
import * as v from 'valibot';
import { StepFailure, type StepHandler } from './types.ts';

const OCTAL_MODE = /^(?:0o|0)?([0-7]{3,4})$/;

/** A file mode: an octal string (`"0644"`, `"755"`, `"0o600"`) or a number up to `0o777`. */
export const FileModeSchema = v.pipe(
  v.union([v.string(), v.number()], 'must be an octal string such as "0644", or a number'),
  v.rawTransform(({ dataset, addIssue, NEVER }) => {
    const value = dataset.value;
    if (typeof value === 'string') {
      const digits = OCTAL_MODE.exec(value)?.[1];
      if (digits !== undefined) return parseInt(digits, 8);
      addIssue({
        message: `"${value}" is not an octal mode; write octal digits such as "0644" or "0755"`,
      });
      return NEVER;
    }
    if (Number.isInteger(value) && value >= 0 && value <= 0o777) return value;
    // YAML 1.2 reads `mode: 0644` as the decimal 644, which would be a nonsense mode.
    addIssue({
      message: `${value} is not a mode number (0 to 0o777 = 511); write the mode as an octal string such as "0644"`,
    });
    return NEVER;
  }),
);

/** Params of the `file_write` step. */
export const FileWriteParamsSchema = v.strictObject({
  /** Relative to the step's workdir. */
  path: v.pipe(v.string(), v.minLength(1, 'needs a path')),
  content: v.string(),
  mode: v.optional(FileModeSchema),
});
export type FileWriteParams = v.InferOutput<typeof FileWriteParamsSchema>;

/** What `file_write` saves to undo itself. */
export const FileWriteRollbackDataSchema = v.variant('existed', [
  v.object({
    path: v.string(),
    existed: v.literal(false),
    /** The topmost directory the write created, removed on rollback when empty. */
    createdDir: v.optional(v.string()),
  }),
  v.object({
    path: v.string(),
    existed: v.literal(true),
    /** Base64, so binary files survive a trip through JSON. */
    content: v.string(),
    mode: v.number(),
    uid: v.number(),
    gid: v.number(),
  }),
]);
export type FileWriteRollbackData = v.InferOutput<typeof FileWriteRollbackDataSchema>;

/** Writes `content` to `path`; rollback restores the previous content and mode, or deletes the file. */
export const fileWriteStep: StepHandler<FileWriteParams> = {
  type: 'file_write',
  params: FileWriteParamsSchema,
  async execute(params, ctx) {
    const target = await resolveTarget(resolve(ctx.workdir, params.path));
    const before = await stat(target).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return undefined;
      throw fsFailure(e, 'inspect', target);
    });
    if (before && !before.isFile()) {
      throw new StepFailure('invalid-path', `${target} exists and is not a regular file`, {
        nonRetryable: true,
        details: { path: target },
      });
    }
    let rollbackData: FileWriteRollbackData;
    if (before) {
      const content = await readFile(target).catch((e: NodeJS.ErrnoException) => {
        throw fsFailure(e, 'read', target);
      });
      rollbackData = replacedFile(target, before, content);
    } else {
      const createdDir = await mkdir(dirname(target), { recursive: true }).catch(
        (e: NodeJS.ErrnoException) => {
          throw fsFailure(e, 'create the directory of', target);
        },
      );
      rollbackData = { path: target, existed: false, ...(createdDir ? { createdDir } : {}) };
    }
    const mode = params.mode ?? (before ? before.mode & 0o7777 : undefined);
    const written = await atomicWrite(target, params.content, {
      ...(mode === undefined ? {} : { mode }),
      ...(before ? { owner: { uid: before.uid, gid: before.gid } } : {}),
    });
    ctx.log(
      'info',
      `wrote ${Buffer.byteLength(params.content)} bytes to ${target} (mode ${formatMode(written)})`,
    );
    return { outputs: { path: target }, rollbackData };
  },
  async rollback(_params, data, ctx) {
    const parsed = v.safeParse(FileWriteRollbackDataSchema, data);
    if (!parsed.success) {
      throw new StepFailure(
        'invalid-rollback-data',
        'file_write cannot roll back: the saved rollback data is not what it wrote',
        { nonRetryable: true, details: { rollbackData: data } },
      );
    }
    const saved = parsed.output;
    if (saved.existed) {
      await atomicWrite(saved.path, Buffer.from(saved.content, 'base64'), {
        mode: saved.mode,
        owner: { uid: saved.uid, gid: saved.gid },
      });
      ctx.log('info', `restored ${saved.path} (mode ${formatMode(saved.mode)})`);
      return;
    }
    await unlink(saved.path).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'ENOENT') throw fsFailure(e, 'remove', saved.path);
    });
    ctx.log('info', `removed ${saved.path}`);
    if (saved.createdDir) await removeEmptyDirs(dirname(saved.path), saved.createdDir);
  },
};

/** Follows a symlink at `path` (even a dangling one) to the file it names. */
async function resolveTarget(path: string): Promise<string> {
  const info = await lstat(path).catch(() => undefined);
  if (!info?.isSymbolicLink()) return path;
  try {
    return await realpath(path);
  } catch {
    return resolve(dirname(path), await readlink(path));
  }
}

/**
 * Writes `content` to a temporary file beside `target`, flushes it and renames it over `target`.
 * Returns the mode the file ended up with.
 */
async function atomicWrite(
  target: string,
  content: string | Buffer,
  options: { mode?: number; owner?: { uid: number; gid: number } },
): Promise<number> {
  const temp = resolve(
    dirname(target),
    `.${basename(target)}.${randomBytes(6).toString('hex')}.muster-tmp`,
  );
  let handle;
  try {
    handle = await open(temp, 'wx', 0o666);
  } catch (e: unknown) {
    throw fsFailure(e as NodeJS.ErrnoException, 'write', target);
  }
  try {
    // Created with the umask's default mode, which is what a new file gets; kept private until
    // the content is in.
    const defaultMode = (await handle.stat()).mode & 0o7777;
    await handle.chmod(0o600);
    await handle.writeFile(content);
    await handle.sync();
    if (options.owner) {
      // Only root can give a file away; anyone else keeps the file as their own. Before chmod,
      // because chown clears setuid and setgid bits.
      await handle.chown(options.owner.uid, options.owner.gid).catch(() => {});
    }
    const mode = options.mode ?? defaultMode;
    await handle.chmod(mode);
    await handle.close();
    handle = undefined;
    await rename(temp, target);
    await syncDir(dirname(target));
    return mode;
  } catch (e: unknown) {
    await handle?.close().catch(() => {});
    await unlink(temp).catch(() => {});
    throw e instanceof StepFailure ? e : fsFailure(e as NodeJS.ErrnoException, 'write', target);
  }
}

/** Flushes a directory entry (the rename) to disk; not every file system allows it. */
async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r').catch(() => undefined);
  await handle?.sync().catch(() => {});
  await handle?.close();
}

/** Removes `from` and its parents up to `top`, stopping at the first that is not empty. */
async function removeEmptyDirs(from: string, top: string): Promise<void> {
  let dir = from;
  for (;;) {
    if (relative(top, dir).startsWith('..')) return;
    try {
      await rmdir(dir);
    } catch {
      return;
    }
    if (dir === top) return;
    dir = dirname(dir);
  }
}

function formatMode(mode: number): string {
  return `0${mode.toString(8).padStart(3, '0')}`;
}

function fsFailure(e: NodeJS.ErrnoException, action: string, path: string): StepFailure {
  const details = { path, code: e.code };
  if (e.code === 'EACCES' || e.code === 'EPERM') {
    return new StepFailure('permission-denied', `cannot ${action} ${path}: permission denied`, {
      nonRetryable: true,
      details,
      cause: e,
    });
  }
  if (e.code === 'ENOTDIR' || e.code === 'EISDIR') {
    const why = e.code === 'EISDIR' ? 'it is a directory' : 'a part of the path is not a directory';
    return new StepFailure('invalid-path', `cannot ${action} ${path}: ${why}`, {
      nonRetryable: true,
      details,
      cause: e,
    });
  }
  return new StepFailure('error', `cannot ${action} ${path}: ${e.message}`, { details, cause: e });
}

/**
 * What undoing a write over an existing file needs: its content, permission bits and owner, as
 * they were before. Used here and over ssh.
 */
export function replacedFile(
  path: string,
  before: { readonly mode: number; readonly uid: number; readonly gid: number },
  content: Buffer,
): FileWriteRollbackData {
  return {
    path,
    existed: true,
    content: content.toString('base64'),
    mode: before.mode & 0o7777,
    uid: before.uid,
    gid: before.gid,
  };
}
