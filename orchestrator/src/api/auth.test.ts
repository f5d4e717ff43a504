import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createAuth, loadTokens } from './auth.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'muster-auth-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function tokensFile(text: string): Promise<string> {
  const file = join(dir, `tokens-${Math.random().toString(36).slice(2)}`);
  await writeFile(file, text);
  return file;
}

describe('loadTokens', () => {
  test('reads role:token[:name] lines, skipping blanks and comments, then MUSTER_TOKENS', async () => {
    const file = await tokensFile('# team tokens\n\nviewer:v-secret\noperator:o-secret:ci\r\n');
    const tokens = await loadTokens({ tokensFile: file, env: 'agent:a-secret, viewer:v2' });
    expect(tokens).toEqual([
      { role: 'viewer', token: 'v-secret' },
      { role: 'operator', token: 'o-secret', name: 'ci' },
      { role: 'agent', token: 'a-secret' },
      { role: 'viewer', token: 'v2' },
    ]);
  });

  test('names the line of an unknown role and never echoes the token', async () => {
    const file = await tokensFile('viewer:ok\nadmin:hunter2-secret\n');
    const error = await loadTokens({ tokensFile: file }).catch((e: Error) => e);
    expect(error).toBeInstanceOf(Error);
    expect((error as Error).message).toContain(`${file}:2: unknown role "admin"`);
    expect((error as Error).message).toContain('viewer, operator, agent');
    expect((error as Error).message).not.toContain('hunter2');
  });

  test('rejects a line without a role, an empty token, and names the MUSTER_TOKENS entry', async () => {
    const noColon = await tokensFile('justatoken\n');
    await expect(loadTokens({ tokensFile: noColon })).rejects.toThrow(
      /:1: expected role:token\[:name\]/,
    );
    await expect(loadTokens({ env: 'viewer:a,operator:' })).rejects.toThrow(
      'MUSTER_TOKENS entry 2: the token is empty',
    );
  });

  test('a missing file is a clear error', async () => {
    await expect(loadTokens({ tokensFile: join(dir, 'nope') })).rejects.toThrow(
      /cannot read the tokens file .*nope \(ENOENT\)/,
    );
  });
});

describe('createAuth', () => {
  const auth = createAuth({
    tokens: [
      { role: 'viewer', token: 'v-token' },
      { role: 'operator', token: 'o-token', name: 'ci' },
      { role: 'agent', token: 'a-token' },
    ],
  });

  test('verifies known tokens to their principal, and nothing else', () => {
    expect(auth.verify('v-token')).toEqual({ role: 'viewer', name: 'viewer-1' });
    expect(auth.verify('o-token')).toEqual({ role: 'operator', name: 'ci' });
    expect(auth.verify('a-token')).toEqual({ role: 'agent', name: 'agent-1' });
    expect(auth.verify('v-toke')).toBeUndefined();
    expect(auth.verify('v-token ')).toBeUndefined();
    expect(auth.verify('')).toBeUndefined();
    expect(auth.verify(undefined)).toBeUndefined();
  });

  test('operator includes viewer; agent is separate', () => {
    const viewer = { role: 'viewer', name: 'v' } as const;
    const operator = { role: 'operator', name: 'o' } as const;
    const agent = { role: 'agent', name: 'a' } as const;
    expect([viewer, operator, agent].map((p) => auth.allows(p, 'viewer'))).toEqual([
      true,
      true,
      false,
    ]);
    expect([viewer, operator, agent].map((p) => auth.allows(p, 'operator'))).toEqual([
      false,
      true,
      false,
    ]);
    expect([viewer, operator, agent].map((p) => auth.allows(p, 'agent'))).toEqual([
      false,
      false,
      true,
    ]);
  });

  test('refuses to start without tokens unless insecure, and refuses a token given twice', () => {
    expect(() => createAuth({ tokens: [] })).toThrow(/--insecure-no-auth/);
    expect(() =>
      createAuth({
        tokens: [
          { role: 'viewer', token: 'same' },
          { role: 'operator', token: 'same' },
        ],
      }),
    ).toThrow(/tokens 1 \(viewer-1\) and 2 \(operator-1\) are the same/);
    const open = createAuth({ tokens: [], insecure: true });
    expect(open.enabled).toBe(false);
    expect(open.verify(undefined)?.role).toBe('operator');
  });
});
