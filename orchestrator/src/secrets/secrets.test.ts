import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as v from 'valibot';
import { afterAll, describe, expect, test } from 'vitest';
import { SecretsSchema } from '../../../schemas/src/workflow.ts';
import {
  createRedactor,
  createSecretsLoader,
  loadSecrets,
  secretsShape,
  SecretsError,
} from './index.ts';

const tmp = mkdtempSync(join(tmpdir(), 'muster-secrets-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const config = (c: Record<string, unknown>) => v.parse(SecretsSchema, c);

describe('secrets', () => {
  describe('env provider', () => {
    test('reads only the listed variables', async () => {
      const { tree } = await loadSecrets(config({ provider: 'env', env: ['TOKEN'] }), {
        env: { TOKEN: 'tok-123', OTHER: 'not-listed' },
      });
      expect(tree).toEqual({ TOKEN: 'tok-123' });
    });

    test('a listed variable that is not set is named', async () => {
      const error = await loadSecrets(config({ provider: 'env', env: ['TOKEN', 'KEY'] }), {
        env: { TOKEN: 'x' },
      }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(SecretsError);
      expect((error as Error).message).toContain('secret variable KEY is not set');
    });
  });

  describe('file provider', () => {
    test('reads plain YAML and JSON, later files winning', async () => {
      writeFileSync(join(tmp, 'a.yaml'), 'db:\n  password: from-a\ntoken: a-token\n');
      writeFileSync(join(tmp, 'b.json'), '{"token": "b-token"}');
      const c = config({ provider: 'file', files: ['a.yaml', 'b.json'] });
      const { tree } = await loadSecrets(c, { env: {}, cwd: tmp });
      expect(tree).toEqual({ db: { password: 'from-a' }, token: 'b-token' });
      expect(secretsShape(c, { env: {}, cwd: tmp })).toEqual(tree);
    });

    test('a missing file is named', () => {
      expect(() =>
        secretsShape(config({ provider: 'file', files: ['nope.yaml'] }), { env: {}, cwd: tmp }),
      ).toThrow('cannot read secrets file nope.yaml: no such file');
    });
  });

  describe('redactor', () => {
    const redact = createRedactor([
      'hunter2-pass',
      'a b&c',
      'no',
      42,
      '-----BEGIN KEY-----\nAAAABBBBCCCCDDDD\n-----END KEY-----',
    ]);

    test('replaces values and their encodings', () => {
      expect(redact.text('pw=hunter2-pass')).toBe('pw=***');
      expect(redact.text(`basic ${Buffer.from('hunter2-pass').toString('base64')}`)).toBe(
        'basic ***',
      );
      expect(redact.text('q=a%20b%26c')).toBe('q=***');
      expect(redact.text('line: AAAABBBBCCCCDDDD')).toBe('line: ***');
    });

    test('leaves values too short to be secrets alone', () => {
      expect(redact.text('no, 42 is fine')).toBe('no, 42 is fine');
    });

    test('redacts deep values, keys included', () => {
      expect(redact.value({ out: ['x hunter2-pass'], 'hunter2-pass': 1 })).toEqual({
        out: ['x ***'],
        '***': 1,
      });
    });
  });

  describe('loader', () => {
    test('reuses a load for the cache period, then reads again', async () => {
      let now = 0;
      const env: Record<string, string> = { TOKEN: 'first-value' };
      const loader = createSecretsLoader({ env, now: () => now, cacheMs: 1000 });
      const c = config({ provider: 'env', env: ['TOKEN'] });
      expect((await loader.load(c)).tree['TOKEN']).toBe('first-value');
      env['TOKEN'] = 'second-value';
      expect((await loader.load(c)).tree['TOKEN']).toBe('first-value');
      now = 1001;
      expect((await loader.load(c)).tree['TOKEN']).toBe('second-value');
    });
  });
});
