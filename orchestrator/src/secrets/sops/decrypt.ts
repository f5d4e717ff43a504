/**
 * Decrypts a SOPS file (YAML or JSON) and verifies its MAC, as `sops -d` does:
 *
 * 1. the data key is recovered from the file's master keys through a {@link KeyService} (age);
 * 2. every value the file's rules say is encrypted (all of them, except keys ending in
 *    `unencrypted_suffix`, or as `encrypted_suffix` / `encrypted_regex` / `unencrypted_regex`
 *    decide) is opened with AES-256-GCM, its key path (`a:b:c:`) as additional data;
 * 3. a SHA-512 over every value's cleartext, in document order (clear `_unencrypted` values
 *    included unless `mac_only_encrypted`), must equal `sops.mac`, itself encrypted with the data
 *    key and the `lastmodified` time as additional data.
 *
 * A file whose ciphertext, clear values, keys or order were edited is refused with a
 * {@link SecretsError}; no error message holds a secret value.
 *
 * @module
 */
import { createHash, timingSafeEqual, type Hash } from 'node:crypto';
import type { Document, Node as YamlNode } from 'yaml';
import { yamlLibrary } from '../../../../schemas/src/yaml-library.ts';
import type { KeyService, SopsMasterKey } from '../kms/types.ts';
import { SecretsError, type SecretNode, type SecretTree } from '../types.ts';
import { clearMacBytes, decryptValue, parseEncrypted } from './values.ts';

/** `yaml`, loaded by the first SOPS file read (see yaml-library.ts). */
const yaml = yamlLibrary;

/** How a SOPS file is read. */
export interface SopsFileOptions {
  /** The file's name, for messages. */
  readonly file: string;
  readonly format: 'yaml' | 'json';
}

/** Options of {@link decryptSops}. */
export interface DecryptSopsOptions extends SopsFileOptions {
  /** The key services to recover the data key with; the first that can, does. */
  readonly keyServices: readonly KeyService[];
}

/**
 * `sha256("sops")`: the bytes a MAC over encrypted values only starts with, so it never equals a
 * MAC over all values.
 */
const MAC_ONLY_ENCRYPTED_INIT = Buffer.from(
  '8a3fd2ad54ce66527b1034f3d147be0b0b975b3bf44f72c6fdadec8176f27d69',
  'hex',
);

const MASTER_KEY_TYPES: ReadonlyArray<readonly [string, string]> = [
  ['age', 'recipient'],
  ['pgp', 'fp'],
  ['kms', 'arn'],
  ['gcp_kms', 'resource_id'],
  ['azure_kv', 'vault_url'],
  ['hc_vault', 'vault_address'],
];

interface Rules {
  readonly unencryptedSuffix?: string;
  readonly encryptedSuffix?: string;
  readonly unencryptedRegex?: RegExp;
  readonly encryptedRegex?: RegExp;
  readonly macOnlyEncrypted: boolean;
}

interface Metadata {
  readonly rules: Rules;
  readonly mac: string;
  /** `lastmodified` as Go's RFC 3339 formatting writes it back: the MAC's additional data. */
  readonly lastModified: string;
  readonly keys: readonly SopsMasterKey[];
}

/**
 * Decrypts a SOPS document and verifies its MAC.
 *
 * @param source The file's text.
 * @param options Its name and format, and the key services.
 * @returns The cleartext tree, without the `sops` metadata.
 * @throws {SecretsError} `ORC1904` not a SOPS file or an unsupported one, `ORC1905` no key opens
 * it, `ORC1906` a value was tampered with, `ORC1907` MAC mismatch.
 */
export async function decryptSops(
  source: string,
  options: DecryptSopsOptions,
): Promise<SecretTree> {
  const { file } = options;
  const docs = parseDocuments(source, options);
  const metadata = readMetadata(docs[0]!, file);
  const key = await dataKey(metadata, options);

  const hash = createHash('sha512');
  if (metadata.rules.macOnlyEncrypted) hash.update(MAC_ONLY_ENCRYPTED_INIT);
  const trees = docs.map((doc) => {
    const contents = doc.contents;
    if (contents === null) return {};
    if (!yaml().isMap(contents)) throw notSops(file, 'its top level is not a mapping');
    return walkMap(contents, [], { doc, key, hash, metadata, file }, true) as SecretTree;
  });

  const macPlain = parseEncrypted(metadata.mac);
  const stored = macPlain && decryptValue(macPlain, key, metadata.lastModified);
  if (!stored || typeof stored.value !== 'string') {
    throw new SecretsError(
      'ORC1907',
      `${file} failed its integrity check: sops.mac cannot be decrypted (it or sops.lastmodified was changed); restore the file from version control or re-encrypt it with sops`,
      file,
    );
  }
  const computed = Buffer.from(hash.digest('hex').toUpperCase(), 'utf8');
  const expected = Buffer.from(stored.value.toUpperCase(), 'utf8');
  if (computed.length !== expected.length || !timingSafeEqual(computed, expected)) {
    throw new SecretsError(
      'ORC1907',
      `${file} failed its integrity check (MAC mismatch): a value, key or their order changed since SOPS wrote it (clear \`_unencrypted\` values count too); restore the file from version control or edit it with \`sops ${file}\``,
      file,
    );
  }
  return Object.assign({}, ...trees) as SecretTree;
}

/**
 * The shape of a SOPS file's secrets, read without decrypting: every key, leaves set to `true`.
 *
 * @throws {SecretsError} `ORC1904` when it is not a SOPS file.
 */
export function sopsShape(source: string, options: SopsFileOptions): SecretTree {
  const docs = parseDocuments(source, options);
  readMetadata(docs[0]!, options.file);
  const shapeOf = (node: unknown, top: boolean): SecretNode => {
    if (yaml().isAlias(node)) return true;
    if (yaml().isMap(node)) {
      const out: Record<string, SecretNode> = {};
      for (const pair of node.items) {
        const k = keyOf(pair.key);
        if (top && k === 'sops') continue;
        out[k] = shapeOf(pair.value, false);
      }
      return out;
    }
    if (yaml().isSeq(node)) return node.items.map((i) => shapeOf(i, false));
    return true;
  };
  return Object.assign(
    {},
    ...docs.map((d) => (d.contents === null ? {} : shapeOf(d.contents, true))),
  ) as SecretTree;
}

function parseDocuments(source: string, options: SopsFileOptions): Document[] {
  const lineCounter = new (yaml().LineCounter)();
  const parsed = yaml().parseAllDocuments(source, {
    lineCounter,
    schema: options.format === 'json' ? 'json' : 'core',
    uniqueKeys: true,
  });
  const docs = Array.isArray(parsed) ? parsed : [];
  const error = docs.flatMap((d) => d.errors)[0];
  if (error) {
    const line = error.linePos?.[0]?.line;
    throw new SecretsError(
      'ORC1904',
      `${options.file}${line ? `:${line}` : ''} is not valid ${options.format.toUpperCase()}: ${error.message.split('\n')[0]}`,
      options.file,
    );
  }
  if (docs.length === 0) throw notSops(options.file, 'it is empty');
  return docs;
}

function notSops(file: string, why: string): SecretsError {
  return new SecretsError(
    'ORC1904',
    `${file} is not a SOPS-encrypted file (${why}); encrypt it with \`sops -e\`, or use secrets provider "file" for plain files`,
    file,
  );
}

function keyOf(node: unknown): string {
  if (yaml().isScalar(node)) return String(node.value);
  return String(node);
}

function readMetadata(doc: Document, file: string): Metadata {
  const sops = doc.contents && yaml().isMap(doc.contents) ? doc.get('sops') : undefined;
  const meta = yaml().isMap(sops) ? (sops.toJSON() as Record<string, unknown>) : undefined;
  if (!meta) throw notSops(file, 'it has no `sops` metadata');
  const str = (k: string) => (typeof meta[k] === 'string' && meta[k] !== '' ? meta[k] : undefined);
  const unsupported = ['unencrypted_comment_regex', 'encrypted_comment_regex'].filter(str);
  if (unsupported.length > 0) {
    throw new SecretsError(
      'ORC1904',
      `${file} uses sops.${unsupported[0]}, which Muster does not support; re-encrypt it with encrypted_regex or unencrypted_suffix`,
      file,
    );
  }
  const rules = ['unencrypted_suffix', 'encrypted_suffix', 'unencrypted_regex', 'encrypted_regex'];
  const set = rules.filter(str);
  if (set.length > 1) {
    throw new SecretsError(
      'ORC1904',
      `${file} sets ${set.join(' and ')}; SOPS allows only one of them`,
      file,
    );
  }
  const mac = str('mac');
  const lastModified = str('lastmodified');
  if (mac === undefined || lastModified === undefined) {
    throw notSops(
      file,
      `its \`sops\` metadata has no ${mac === undefined ? 'mac' : 'lastmodified'}`,
    );
  }
  return {
    rules: {
      ...(set.length === 0 ? { unencryptedSuffix: '_unencrypted' } : {}),
      ...optional('unencryptedSuffix', str('unencrypted_suffix')),
      ...optional('encryptedSuffix', str('encrypted_suffix')),
      ...optional('unencryptedRegex', regexOf(str('unencrypted_regex'), file)),
      ...optional('encryptedRegex', regexOf(str('encrypted_regex'), file)),
      macOnlyEncrypted: meta['mac_only_encrypted'] === true,
    },
    mac,
    lastModified: rfc3339(lastModified, file),
    keys: masterKeys(meta, file),
  };
}

function optional<K extends string, V>(key: K, value: V | undefined): { [P in K]?: V } {
  return (value === undefined ? {} : { [key]: value }) as { [P in K]?: V };
}

function regexOf(pattern: string | undefined, file: string): RegExp | undefined {
  return pattern === undefined ? undefined : goRegex(pattern, file);
}

/** A Go (RE2) pattern as a JS RegExp: a leading `(?i)` becomes the `i` flag. */
function goRegex(pattern: string, file: string): RegExp {
  const m = /^\(\?([imsU]+)\)/.exec(pattern);
  const flags = m ? [...new Set(m[1]!.replace('U', '').split(''))].join('') : '';
  try {
    return new RegExp(m ? pattern.slice(m[0].length) : pattern, flags);
  } catch (e: unknown) {
    throw new SecretsError('ORC1904', `${file} has a regex Muster cannot read: ${pattern}`, file, {
      cause: e,
    });
  }
}

/** `lastmodified` as Go's `time.Format(time.RFC3339)` writes back what `time.Parse` read. */
function rfc3339(text: string, file: string): string {
  const m = /^(\d{4}-\d{2}-\d{2})[Tt](\d{2}:\d{2}:\d{2})(?:\.\d+)?([Zz]|[+-]\d{2}:\d{2})$/.exec(
    text,
  );
  if (!m) throw notSops(file, `sops.lastmodified "${text}" is not an RFC 3339 time`);
  const zone = /^[Zz]$|^[+-]00:00$/.test(m[3]!) ? 'Z' : m[3]!;
  return `${m[1]}T${m[2]}${zone}`;
}

function masterKeys(meta: Record<string, unknown>, file: string): SopsMasterKey[] {
  const fromGroup = (group: Record<string, unknown>): SopsMasterKey[] =>
    MASTER_KEY_TYPES.flatMap(([type, idField]) => {
      const list = group[type];
      if (!Array.isArray(list)) return [];
      return list
        .filter((k): k is Record<string, unknown> => typeof k === 'object' && k !== null)
        .filter((k) => typeof k['enc'] === 'string')
        .map((k) => ({ type, id: String(k[idField] ?? '?'), enc: k['enc'] as string }));
    });
  const top = fromGroup(meta);
  if (top.length > 0) return top;
  const groups = Array.isArray(meta['key_groups']) ? (meta['key_groups'] as unknown[]) : [];
  if (groups.length > 1) {
    throw new SecretsError(
      'ORC1904',
      `${file} splits its data key over ${groups.length} key groups (Shamir), which Muster does not support; re-encrypt it with one key group`,
      file,
    );
  }
  const group = groups[0];
  const keys =
    typeof group === 'object' && group !== null ? fromGroup(group as Record<string, unknown>) : [];
  if (keys.length === 0) throw notSops(file, 'its `sops` metadata lists no master keys');
  return keys;
}

async function dataKey(metadata: Metadata, options: DecryptSopsOptions): Promise<Uint8Array> {
  const { file } = options;
  for (const service of options.keyServices) {
    const keys = metadata.keys.filter((k) => k.type === service.type);
    if (keys.length === 0) continue;
    const key = await service.decryptDataKey(keys);
    if (key && key.length === 32) return key;
  }
  const types = new Set(options.keyServices.map((s) => s.type));
  const ours = metadata.keys.filter((k) => types.has(k.type));
  if (ours.length === 0) {
    throw new SecretsError(
      'ORC1905',
      `cannot decrypt ${file}: it is encrypted only to ${[...new Set(metadata.keys.map((k) => k.type))].join(', ')} keys, and Muster decrypts with ${[...types].join(', ')}; add an age recipient with \`sops updatekeys\``,
      file,
    );
  }
  const sources = options.keyServices.flatMap((s) => s.sources);
  throw new SecretsError(
    'ORC1905',
    sources.length === 0
      ? `cannot decrypt ${file}: no age key was found; set secrets.age_key_file, SOPS_AGE_KEY_FILE or SOPS_AGE_KEY (the file is encrypted to ${ours.map((k) => k.id).join(', ')})`
      : `cannot decrypt ${file}: none of the age keys from ${sources.join(', ')} is one of its recipients (${ours.map((k) => k.id).join(', ')})`,
    file,
  );
}

interface WalkState {
  readonly doc: Document;
  readonly key: Uint8Array;
  readonly hash: Hash;
  readonly metadata: Metadata;
  readonly file: string;
}

function walkMap(node: YamlNode, path: string[], s: WalkState, top = false): SecretNode {
  if (!yaml().isMap(node)) return walkValue(node, path, s);
  const out: Record<string, SecretNode> = {};
  for (const pair of node.items) {
    const k = keyOf(pair.key);
    if (top && k === 'sops') continue;
    out[k] = walkValue(pair.value as YamlNode | null, [...path, k], s);
  }
  return out;
}

function walkValue(node: YamlNode | null, path: string[], s: WalkState): SecretNode {
  if (node === null || node === undefined) return null;
  if (yaml().isAlias(node)) return walkValue(node.resolve(s.doc) as YamlNode, path, s);
  if (yaml().isMap(node)) return walkMap(node, path, s);
  // List items share their list's path: SOPS leaves indices out of the additional data.
  if (yaml().isSeq(node))
    return node.items.map((item) => walkValue(item as YamlNode | null, path, s));
  if (!yaml().isScalar(node)) return null;
  const value = node.value;
  if (value === null || value === undefined) return null;
  const where = path.join('.');
  const encrypted = shouldBeEncrypted(path, s.metadata.rules);
  if (!encrypted) {
    if (typeof value !== 'string' && typeof value !== 'number' && typeof value !== 'boolean') {
      throw notSops(s.file, `the value at ${where} has a type SOPS does not write`);
    }
    if (!s.metadata.rules.macOnlyEncrypted) s.hash.update(clearMacBytes(value));
    return value;
  }
  if (value === '') return ''; // SOPS leaves empty strings as they are, and hashes nothing for them
  const parsed = typeof value === 'string' ? parseEncrypted(value) : undefined;
  if (!parsed) {
    throw new SecretsError(
      'ORC1906',
      `${s.file} was tampered with: the value at ${where} should be encrypted but is not; restore the file from version control or set it with \`sops ${s.file}\``,
      s.file,
    );
  }
  let opened;
  try {
    opened = decryptValue(parsed, s.key, `${path.join(':')}:`);
  } catch (e: unknown) {
    throw new SecretsError(
      'ORC1906',
      `${s.file}: the value at ${where} cannot be read: ${e instanceof TypeError ? e.message : 'malformed'}`,
      s.file,
    );
  }
  if (!opened) {
    throw new SecretsError(
      'ORC1906',
      `${s.file} was tampered with: the value at ${where} fails authentication (its ciphertext was edited, or it was moved from another key); restore the file from version control`,
      s.file,
    );
  }
  s.hash.update(opened.macBytes);
  return opened.value;
}

/** Whether SOPS encrypts the value at `path` (keys only), per the file's rules. */
function shouldBeEncrypted(path: readonly string[], rules: Rules): boolean {
  let encrypted = true;
  if (rules.unencryptedSuffix && path.some((k) => k.endsWith(rules.unencryptedSuffix!)))
    encrypted = false;
  if (rules.encryptedSuffix) encrypted = path.some((k) => k.endsWith(rules.encryptedSuffix!));
  if (rules.unencryptedRegex && path.some((k) => rules.unencryptedRegex!.test(k)))
    encrypted = false;
  if (rules.encryptedRegex) encrypted = path.some((k) => rules.encryptedRegex!.test(k));
  return encrypted;
}
