/**
 * Host key checking, as OpenSSH's `StrictHostKeyChecking=accept-new`: a host whose key is listed
 * in a known_hosts file must present that key; a host listed in none is trusted on first use and
 * its key recorded in Muster's own file; a host whose key changed is refused.
 *
 * The files are read in OpenSSH's format: plain (`host`, `[host]:port`, comma lists, `*` and `?`
 * patterns, `!` negations) and hashed (`|1|salt|hash`) host names, and `@revoked` keys.
 * `@cert-authority` lines are skipped: certificates are not supported.
 *
 * @module
 */
import { createHmac } from 'node:crypto';
import { appendFile, mkdir, readFile } from 'node:fs/promises';
import { dirname } from 'node:path';

/** A key a host presented: its type (`ssh-ed25519`, …) and its SSH wire-format blob. */
export interface HostKey {
  readonly type: string;
  readonly blob: Buffer;
}

/** The verdict on a host's key. */
export type HostKeyVerdict =
  | { readonly status: 'known'; readonly file: string; readonly line: number }
  | { readonly status: 'new' }
  | {
      readonly status: 'changed' | 'revoked';
      readonly file: string;
      readonly line: number;
      /** The key types known for the host. */
      readonly known: readonly string[];
    };

/** One parsed known_hosts line. */
interface Entry {
  readonly file: string;
  readonly line: number;
  readonly marker: 'revoked' | undefined;
  readonly hosts: string;
  readonly type: string;
  readonly blob: Buffer;
}

/** Reads a key's type from its wire-format blob (a length-prefixed string first). */
export function keyType(blob: Buffer): string {
  if (blob.length < 4) return 'unknown';
  const length = blob.readUInt32BE(0);
  return blob.subarray(4, 4 + length).toString('latin1');
}

/** How known_hosts names a host: `host` on port 22, `[host]:port` otherwise. */
export function hostPattern(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

/** Known hosts: one or more files read, one file written. */
export interface KnownHosts {
  /** Checks a host's key against every file. */
  verify(host: string, port: number, key: HostKey): Promise<HostKeyVerdict>;
  /** Records a key in the writable file. */
  remember(host: string, port: number, key: HostKey): Promise<void>;
  /** The key types known for a host, to offer them first in the key exchange. */
  knownTypes(host: string, port: number): Promise<string[]>;
}

/** Options of {@link createKnownHosts}. */
export interface KnownHostsOptions {
  /** Files read, in order (missing ones are skipped), e.g. `~/.ssh/known_hosts`. */
  readonly files: readonly string[];
  /** Where new keys are written; it is read as well. */
  readonly writeTo: string;
}

/** Creates a known-hosts checker over OpenSSH-format files. */
export function createKnownHosts(options: KnownHostsOptions): KnownHosts {
  const files = [...new Set([...options.files, options.writeTo])];
  // Writes are chained so concurrent first connections append whole lines.
  let writing: Promise<void> = Promise.resolve();

  const matching = async (host: string, port: number): Promise<Entry[]> => {
    const entries = (await Promise.all(files.map(readEntries))).flat();
    const name = hostPattern(host, port);
    return entries.filter((e) => hostsMatch(e.hosts, name));
  };

  return {
    async verify(host, port, key) {
      await writing;
      const entries = await matching(host, port);
      const revoked = entries.find((e) => e.marker === 'revoked' && e.blob.equals(key.blob));
      const known = [...new Set(entries.filter((e) => !e.marker).map((e) => e.type))];
      if (revoked) return { status: 'revoked', file: revoked.file, line: revoked.line, known };
      const match = entries.find((e) => !e.marker && e.blob.equals(key.blob));
      if (match) return { status: 'known', file: match.file, line: match.line };
      const other = entries.find((e) => !e.marker);
      // Any other key on record for the host, of whatever type, means the host is not new.
      if (other) return { status: 'changed', file: other.file, line: other.line, known };
      return { status: 'new' };
    },
    remember(host, port, key) {
      const line = `${hostPattern(host, port)} ${key.type} ${key.blob.toString('base64')}\n`;
      writing = writing.then(async () => {
        await mkdir(dirname(options.writeTo), { recursive: true, mode: 0o700 });
        await appendFile(options.writeTo, line, { mode: 0o600 });
      });
      return writing;
    },
    async knownTypes(host, port) {
      const entries = await matching(host, port);
      return [...new Set(entries.filter((e) => !e.marker).map((e) => e.type))];
    },
  };
}

async function readEntries(file: string): Promise<Entry[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (e: unknown) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
  const entries: Entry[] = [];
  for (const [index, raw] of text.split('\n').entries()) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const fields = line.split(/\s+/);
    let marker: Entry['marker'];
    if (fields[0]?.startsWith('@')) {
      const m = fields.shift();
      if (m !== '@revoked') continue;
      marker = 'revoked';
    }
    const [hosts, type, key] = fields;
    if (hosts === undefined || type === undefined || key === undefined) continue;
    entries.push({ file, line: index + 1, marker, hosts, type, blob: Buffer.from(key, 'base64') });
  }
  return entries;
}

/** Whether a known_hosts host field names `name` (`host` or `[host]:port`). */
function hostsMatch(field: string, name: string): boolean {
  if (field.startsWith('|1|')) {
    const [, , salt, hash] = field.split('|');
    if (salt === undefined || hash === undefined) return false;
    const digest = createHmac('sha1', Buffer.from(salt, 'base64')).update(name).digest('base64');
    return digest === hash;
  }
  let matched = false;
  for (const pattern of field.split(',')) {
    const negated = pattern.startsWith('!');
    if (!globMatch(negated ? pattern.slice(1) : pattern, name)) continue;
    if (negated) return false;
    matched = true;
  }
  return matched;
}

/** OpenSSH host patterns: `*` any run of characters, `?` one, case-insensitive. */
function globMatch(pattern: string, name: string): boolean {
  const regex = pattern
    .toLowerCase()
    .replace(/[.+^${}()|[\]\\]/g, '\\$&')
    .replace(/\*/g, '.*')
    .replace(/\?/g, '.');
  return new RegExp(`^${regex}$`).test(name.toLowerCase());
}
