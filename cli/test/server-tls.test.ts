/**
 * `muster server --tls-cert --tls-key` as a real process with a certificate made by openssl, and
 * the real CLI talking to it over HTTPS and wss:// (`batch submit --watch`), trusting the
 * certificate through `NODE_EXTRA_CA_CERTS` as users do.
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { musterNodeArgs } from '../../scripts/muster-entry.ts';
import { REPO_ROOT, type CliResult } from './helpers/run-cli.ts';

const TOKEN = 'tls-operator-token';
const dir = mkdtempSync(join(tmpdir(), 'muster-tls-'));
const cert = join(dir, 'cert.pem');
const key = join(dir, 'key.pem');
const workflow = join(dir, 'hello.json');
let server: ChildProcess | undefined;
let url = '';
let serverOutput = '';

function muster(args: readonly string[], env: NodeJS.ProcessEnv = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      [...musterNodeArgs(), ...args],
      {
        cwd: REPO_ROOT,
        env: { ...process.env, MUSTER_DEBUG: '', FORCE_COLOR: '0', ...env },
        timeout: 60_000,
      },
      (error, stdout, stderr) => {
        if (error && typeof error.code !== 'number') return reject(error);
        resolve({ code: typeof error?.code === 'number' ? error.code : 0, stdout, stderr });
      },
    );
  });
}

beforeAll(async () => {
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:prime256v1',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '1',
      '-subj',
      '/CN=localhost',
      '-addext',
      'subjectAltName=DNS:localhost,IP:127.0.0.1',
    ],
    { stdio: 'ignore' },
  );
  writeFileSync(
    workflow,
    JSON.stringify({
      name: 'over-tls',
      operations: [
        {
          id: 'greet',
          type: 'update',
          target: 'cluster',
          items: ['local'],
          steps: [{ name: 'say', type: 'echo', params: { message: 'hello over TLS' } }],
        },
      ],
    }),
  );
  server = spawn(
    process.execPath,
    [
      ...musterNodeArgs(),
      'server',
      '--port',
      '0',
      '--state-dir',
      join(dir, 'state'),
      '--tls-cert',
      cert,
      '--tls-key',
      key,
    ],
    { cwd: REPO_ROOT, env: { ...process.env, MUSTER_TOKENS: `operator:${TOKEN}` } },
  );
  server.stdout?.resume();
  url = await new Promise<string>((resolve, reject) => {
    server!.stderr!.on('data', (chunk: Buffer) => {
      serverOutput += chunk.toString();
      const m = /listening on (\S+)/.exec(serverOutput);
      if (m) resolve(m[1]!);
    });
    server!.once('exit', (code) => reject(new Error(`server exited ${code}: ${serverOutput}`)));
  });
}, 60_000);

afterAll(async () => {
  if (server && server.exitCode === null) {
    const exited = new Promise((r) => server!.once('exit', r));
    server.kill('SIGTERM');
    await exited;
  }
  rmSync(dir, { recursive: true, force: true });
});

describe('muster server with TLS', () => {
  test('listens on https://, and the CLI submits and watches a run over HTTPS and wss://', async () => {
    expect(url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    const env = { MUSTER_SERVER: url, MUSTER_TOKEN: TOKEN, NODE_EXTRA_CA_CERTS: cert };
    const submitted = await muster(['batch', 'submit', workflow, '--watch', '-o', 'json'], env);
    expect(submitted.stderr).not.toMatch(/error/i);
    expect(submitted.code).toBe(0);
    expect(JSON.parse(submitted.stdout)).toMatchObject({ status: 'succeeded' });
  });

  test('a client that does not trust the certificate is refused, and says why', async () => {
    const listed = await muster(['batch', 'list'], { MUSTER_SERVER: url, MUSTER_TOKEN: TOKEN });
    expect(listed.code).toBe(1);
    expect(listed.stderr).toMatch(/self-signed certificate — .*NODE_EXTRA_CA_CERTS/);
  });

  test('--tls-cert without --tls-key, or a key that is not the certificate’s, is refused', async () => {
    const half = await muster(['server', '--port', '0', '--tls-cert', cert]);
    expect(half.code).toBe(2);
    expect(half.stderr).toContain('--tls-key is missing');
    const otherKey = join(dir, 'other-key.pem');
    execFileSync('openssl', [
      'ecparam',
      '-name',
      'prime256v1',
      '-genkey',
      '-noout',
      '-out',
      otherKey,
    ]);
    const mismatched = await muster(
      [
        'server',
        '--port',
        '0',
        '--state-dir',
        join(dir, 'state-b'),
        '--tls-cert',
        cert,
        '--tls-key',
        otherKey,
      ],
      { MUSTER_TOKENS: `operator:${TOKEN}` },
    );
    expect(mismatched.code).not.toBe(0);
    expect(mismatched.stderr).toContain(`cannot be used together`);
    const missing = await muster(
      ['server', '--port', '0', '--tls-cert', join(dir, 'nope.pem'), '--tls-key', key],
      { MUSTER_TOKENS: `operator:${TOKEN}` },
    );
    expect(missing.stderr).toContain(
      `cannot read the TLS certificate ${join(dir, 'nope.pem')} (ENOENT)`,
    );
  });
});
