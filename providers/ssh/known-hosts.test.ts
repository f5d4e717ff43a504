import { createHmac, randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { createKnownHosts, hostPattern, keyType, type HostKey } from './known-hosts.ts';

/** A key as a host would present it: a wire-format blob with a type prefix. */
function fakeKey(type = 'ssh-ed25519'): HostKey {
  const name = Buffer.from(type);
  const body = randomBytes(32);
  const blob = Buffer.alloc(8 + name.length + body.length);
  blob.writeUInt32BE(name.length, 0);
  name.copy(blob, 4);
  blob.writeUInt32BE(body.length, 4 + name.length);
  body.copy(blob, 8 + name.length);
  return { type, blob };
}

const line = (hosts: string, key: HostKey) => `${hosts} ${key.type} ${key.blob.toString('base64')}`;

function hashed(name: string): string {
  const salt = randomBytes(20);
  const hash = createHmac('sha1', salt).update(name).digest('base64');
  return `|1|${salt.toString('base64')}|${hash}`;
}

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'muster-known-hosts-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('known hosts', () => {
  test('reads the type from the key blob', () => {
    expect(keyType(fakeKey('ecdsa-sha2-nistp256').blob)).toBe('ecdsa-sha2-nistp256');
    expect(hostPattern('h', 22)).toBe('h');
    expect(hostPattern('h', 2222)).toBe('[h]:2222');
  });

  test('a host in no file is new; once remembered it is known, in a private file', async () => {
    const writeTo = join(dir, 'muster', 'known_hosts');
    const hosts = createKnownHosts({ files: [join(dir, 'missing')], writeTo });
    const key = fakeKey();
    expect(await hosts.verify('127.0.0.1', 2222, key)).toEqual({ status: 'new' });
    await hosts.remember('127.0.0.1', 2222, key);
    expect(await hosts.verify('127.0.0.1', 2222, key)).toEqual({
      status: 'known',
      file: writeTo,
      line: 1,
    });
    expect((await stat(writeTo)).mode & 0o777).toBe(0o600);
    expect(await readFile(writeTo, 'utf8')).toBe(`${line('[127.0.0.1]:2222', key)}\n`);
    // Another port of the same address is another host.
    expect(await hosts.verify('127.0.0.1', 2223, key)).toEqual({ status: 'new' });
  });

  test('a host presenting another key than the one on record is refused as changed', async () => {
    const file = join(dir, 'known_hosts');
    const old = fakeKey();
    await writeFile(file, `# comment\n\n${line('web-1,10.0.0.1', old)}\n`);
    const hosts = createKnownHosts({ files: [file], writeTo: join(dir, 'w') });
    expect(await hosts.verify('10.0.0.1', 22, fakeKey())).toEqual({
      status: 'changed',
      file,
      line: 3,
      known: ['ssh-ed25519'],
    });
    expect(await hosts.verify('web-1', 22, old)).toMatchObject({ status: 'known', line: 3 });
  });

  test('matches hashed names, wildcards and negations as OpenSSH does', async () => {
    const file = join(dir, 'known_hosts');
    const a = fakeKey();
    const b = fakeKey('ecdsa-sha2-nistp256');
    const c = fakeKey();
    await writeFile(
      file,
      [
        line(hashed('[db.example.com]:2200'), a),
        line('*.web.example.com,!bad.web.example.com', b),
        line('10.0.0.?', c),
      ].join('\n'),
    );
    const hosts = createKnownHosts({ files: [file], writeTo: join(dir, 'w') });
    expect(await hosts.verify('db.example.com', 2200, a)).toMatchObject({ status: 'known' });
    expect(await hosts.verify('db.example.com', 22, a)).toEqual({ status: 'new' });
    expect(await hosts.verify('X.Web.Example.com', 22, b)).toMatchObject({ status: 'known' });
    expect(await hosts.verify('bad.web.example.com', 22, b)).toEqual({ status: 'new' });
    expect(await hosts.verify('10.0.0.7', 22, c)).toMatchObject({ status: 'known' });
    expect(await hosts.verify('10.0.0.77', 22, c)).toEqual({ status: 'new' });
    expect(await hosts.knownTypes('a.web.example.com', 22)).toEqual(['ecdsa-sha2-nistp256']);
  });

  test('a revoked key is refused even when also listed as known', async () => {
    const file = join(dir, 'known_hosts');
    const key = fakeKey();
    await writeFile(file, `${line('h', key)}\n@revoked ${line('*', key)}\n`);
    const hosts = createKnownHosts({ files: [file], writeTo: join(dir, 'w') });
    expect(await hosts.verify('h', 22, key)).toMatchObject({ status: 'revoked', line: 2 });
  });
});
