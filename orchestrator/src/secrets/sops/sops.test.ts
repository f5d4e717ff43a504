import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import * as v from 'valibot';
import { SecretsSchema } from '../../../../schemas/src/workflow.ts';
import { loadSecrets, secretsShape, SecretsError } from '../index.ts';

/**
 * Real files written by the SOPS tool with its public test key (see SOURCE.txt there), copied
 * from the team's shared fixtures so a checkout anywhere has them.
 */
const FIXTURES = join(import.meta.dirname, 'fixtures');
const KEY_FILE = join(FIXTURES, 'keys.txt');
const KEY = readFileSync(KEY_FILE, 'utf8')
  .split('\n')
  .find((l) => l.startsWith('AGE-SECRET-KEY-'))!;
const ENV = { HOME: '/nonexistent' };

const tmp = mkdtempSync(join(tmpdir(), 'muster-sops-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const sops = (files: string[], extra: Record<string, unknown> = {}) =>
  v.parse(SecretsSchema, { provider: 'sops', files, ...extra });

/** A copy of a fixture with one textual edit. */
function tampered(name: string, from: string | RegExp, to: string): string {
  const source = readFileSync(join(FIXTURES, name), 'utf8');
  const edited = source.replace(from, to);
  expect(edited).not.toBe(source);
  const path = join(tmp, `${Math.random().toString(36).slice(2)}-${name}`);
  writeFileSync(path, edited);
  return path;
}

async function refusal(files: string[], env: Record<string, string> = { SOPS_AGE_KEY: KEY }) {
  const error = await loadSecrets(sops(files), { env: { ...ENV, ...env } }).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(SecretsError);
  return error as SecretsError;
}

describe('sops provider', () => {
  describe('the real SOPS fixtures', () => {
    // The copy must stay the tool's own output: where the shared originals are, compare.
    const SHARED = join(
      import.meta.dirname,
      '..',
      '..',
      '..',
      '..',
      '..',
      'shared',
      'fixtures',
      'sops-age',
    );
    test.skipIf(!existsSync(SHARED))('are byte for byte the shared fixtures', () => {
      for (const name of ['example.yaml', 'example.json', 'keys.txt', 'SOURCE.txt']) {
        expect(readFileSync(join(FIXTURES, name)).equals(readFileSync(join(SHARED, name)))).toBe(
          true,
        );
      }
    });

    test('decrypts the YAML file with the key from age_key_file, and keeps _unencrypted values', async () => {
      const { tree } = await loadSecrets(
        sops([join(FIXTURES, 'example.yaml')], { age_key_file: KEY_FILE }),
        {
          env: ENV,
        },
      );
      expect(tree).toMatchObject({
        myapp1: 't00m4nys3cr3tzupdated',
        app2: { db: { user: 'eve', password: 'c4r1b0u' } },
        number: 1234568000,
        an_array: [
          'secretuser1',
          'secretuser2',
          'somelongvalueAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA',
          'some other value',
        ],
        somebooleans: [true, false],
        this: { is: { a: { nested: { value: 'with something secret in it' } } } },
        somelist_unencrypted: [
          'all elements of this list',
          'remain in clear text',
          'because of the _encrypted suffix in the key',
        ],
        nested_unencrypted: { this: { is: { all: 'going to remain in clear text' } } },
      });
      expect((tree['app2'] as { key: string }).key).toMatch(/^-----BEGIN RSA PRIVATE KEY-----\n/);
      expect(tree).not.toHaveProperty('sops');
    });

    test('decrypts the JSON file with the key from SOPS_AGE_KEY_FILE', async () => {
      const { tree } = await loadSecrets(sops([join(FIXTURES, 'example.json')]), {
        env: { ...ENV, SOPS_AGE_KEY_FILE: KEY_FILE },
      });
      expect(tree).toEqual({
        firstName: 'John',
        lastName: 'Smith',
        age: 25.4,
        address: {
          city: 'New York',
          postalCode: '10021-3100',
          state: 'NY',
          streetAddress: '21 2nd Street',
        },
        phoneNumbers: [
          { number: '212 555-1234', type: 'home' },
          { number: '646 555-4567', type: 'office' },
        ],
        anEmptyValue: '',
      });
    });

    test('reads the key itself from SOPS_AGE_KEY, and merges several files', async () => {
      const { tree, redactor } = await loadSecrets(
        sops([join(FIXTURES, 'example.yaml'), join(FIXTURES, 'example.json')]),
        { env: { ...ENV, SOPS_AGE_KEY: KEY } },
      );
      expect(tree['myapp1']).toBe('t00m4nys3cr3tzupdated');
      expect(tree['firstName']).toBe('John');
      expect(redactor.text('password c4r1b0u for eve')).toBe('password *** for ***');
    });

    test('lists secret names without any key', () => {
      const shape = secretsShape(sops([join(FIXTURES, 'example.yaml')]), { env: ENV });
      expect(shape).toMatchObject({ myapp1: true, app2: { db: { user: true, password: true } } });
      expect(shape).not.toHaveProperty('sops');
    });
  });

  describe('tampered files are refused', () => {
    test('an edited ciphertext', async () => {
      const path = tampered(
        'example.yaml',
        'data:KhLDS2R2H/BH32vUit2BGhNONIq8',
        'data:KhLDS2R2H/BH32vUit2BGhNONIq9',
      );
      const e = await refusal([path]);
      expect(e.code).toBe('ORC1906');
      expect(e.message).toContain('the value at myapp1 fails authentication');
    });

    test('an edited _unencrypted value (covered by the MAC only)', async () => {
      const path = tampered('example.yaml', 'remain in clear text', 'remain in clear text!');
      const e = await refusal([path]);
      expect(e.code).toBe('ORC1907');
      expect(e.message).toContain('MAC mismatch');
    });

    test('two encrypted list items swapped (same key path, so only the MAC sees it)', async () => {
      const source = readFileSync(join(FIXTURES, 'example.yaml'), 'utf8');
      const lines = source.split('\n');
      const i = lines.findIndex((l) => l.startsWith('an_array:'));
      [lines[i + 1], lines[i + 2]] = [lines[i + 2]!, lines[i + 1]!];
      const path = join(tmp, 'swapped.yaml');
      writeFileSync(path, lines.join('\n'));
      expect((await refusal([path])).code).toBe('ORC1907');
    });

    test('a ciphertext moved to another key', async () => {
      const source = readFileSync(join(FIXTURES, 'example.yaml'), 'utf8');
      const myapp1 = /^myapp1: (.*)$/m.exec(source)![1]!;
      const path = tampered('example.yaml', /^number: .*$/m, `number: ${myapp1}`);
      expect((await refusal([path])).message).toContain('the value at number fails authentication');
    });

    test('a value that should be encrypted written in clear', async () => {
      const path = tampered('example.json', '"anEmptyValue": ""', '"anEmptyValue": "plain"');
      const e = await refusal([path]);
      expect(e.code).toBe('ORC1906');
      expect(e.message).toContain('the value at anEmptyValue should be encrypted but is not');
    });

    test('an edited JSON ciphertext, and an edited mac', async () => {
      const data = tampered('example.json', 'data:BI/mJA==', 'data:CI/mJA==');
      expect((await refusal([data])).message).toContain('firstName');
      const mac = tampered(
        'example.json',
        '"lastmodified": "2022-03-15T22:12:12Z"',
        '"lastmodified": "2022-03-15T22:12:13Z"',
      );
      expect((await refusal([mac])).code).toBe('ORC1907');
    });

    test('no message holds a secret value', async () => {
      const path = tampered('example.yaml', 'remain in clear text', 'remain in clear text!');
      const e = await refusal([path]);
      for (const secret of ['t00m4nys3cr3tzupdated', 'c4r1b0u', 'secretuser1']) {
        expect(e.message).not.toContain(secret);
      }
    });
  });

  describe('keys', () => {
    test('without a key, says where keys are looked for', async () => {
      const e = await refusal([join(FIXTURES, 'example.yaml')], {});
      expect(e.code).toBe('ORC1905');
      expect(e.message).toContain(
        'no age key was found; set secrets.age_key_file, SOPS_AGE_KEY_FILE or SOPS_AGE_KEY',
      );
      expect(e.message).toContain('age1yt3tfqlfrwdwx0z0ynwplcr6qxcxfaqycuprpmy89nr83ltx74tqdpszlw');
    });

    test('with a key that is not a recipient, names the recipients', async () => {
      const other = 'AGE-SECRET-KEY-1GFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPYYSJZGFPQ4EGAEX';
      const e = await refusal([join(FIXTURES, 'example.yaml')], { SOPS_AGE_KEY: other });
      expect(e.code).toBe('ORC1905');
      expect(e.message).toContain(
        'none of the age keys from SOPS_AGE_KEY is one of its recipients',
      );
    });

    test('a missing key file is named', async () => {
      const error = await loadSecrets(
        sops([join(FIXTURES, 'example.yaml')], { age_key_file: join(tmp, 'nope.txt') }),
        { env: ENV },
      ).catch((e: unknown) => e);
      expect((error as SecretsError).code).toBe('ORC1903');
      expect((error as SecretsError).message).toContain('nope.txt');
    });

    test('a KMS other than age is refused', async () => {
      const error = await loadSecrets(
        sops([join(FIXTURES, 'example.yaml')], { kms: { provider: 'aws' } }),
        { env: ENV },
      ).catch((e: unknown) => e);
      expect((error as SecretsError).code).toBe('ORC1902');
    });

    test('a plain file is not a SOPS file', async () => {
      const path = join(tmp, 'plain.yaml');
      writeFileSync(path, 'token: abc\n');
      const e = await refusal([path]);
      expect(e.code).toBe('ORC1904');
      expect(e.message).toContain('use secrets provider "file"');
    });
  });
});
