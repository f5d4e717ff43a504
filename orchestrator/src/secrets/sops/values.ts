/**
 * SOPS's value encoding: the `ENC[AES256_GCM,data:…,iv:…,tag:…,type:…]` strings, their
 * decryption (AES-256-GCM, the value's key path as additional data), and the bytes each value
 * contributes to the file's MAC, exactly as the Go implementation computes them (`sops.ToBytes`).
 *
 * @module
 */
import { createDecipheriv } from 'node:crypto';
import type { SecretLeaf } from '../types.ts';

const ENCRYPTED = /^ENC\[AES256_GCM,data:(.+),iv:(.+),tag:(.+),type:(.+)\]/;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** A parsed `ENC[…]` value. */
export interface EncryptedValue {
  readonly data: Buffer;
  readonly iv: Buffer;
  readonly tag: Buffer;
  readonly type: string;
}

/** A decrypted (or clear) value and the bytes SOPS hashes for it. */
export interface SopsValue {
  readonly value: SecretLeaf;
  readonly macBytes: Uint8Array;
}

/**
 * Parses an `ENC[AES256_GCM,…]` string.
 *
 * @returns The parts, or `undefined` when `text` is not in SOPS's format.
 */
export function parseEncrypted(text: string): EncryptedValue | undefined {
  const m = ENCRYPTED.exec(text);
  if (!m) return undefined;
  const [, data, iv, tag, type] = m as unknown as [string, string, string, string, string];
  if (![data, iv, tag].every((p) => BASE64.test(p))) return undefined;
  return {
    data: Buffer.from(data, 'base64'),
    iv: Buffer.from(iv, 'base64'),
    tag: Buffer.from(tag, 'base64'),
    type,
  };
}

/**
 * Decrypts one value with the data key; `additionalData` is its key path joined with `:` plus a
 * trailing `:` (`app2:db:password:`), which binds the ciphertext to where it sits.
 *
 * @returns The typed value, or `undefined` when authentication fails (wrong key, edited
 * ciphertext, or a value moved to another key).
 * @throws {TypeError} For a type SOPS does not write.
 */
export function decryptValue(
  encrypted: EncryptedValue,
  key: Uint8Array,
  additionalData: string,
): SopsValue | undefined {
  let plain: Buffer;
  try {
    const decipher = createDecipheriv('aes-256-gcm', key, encrypted.iv);
    decipher.setAAD(Buffer.from(additionalData, 'utf8'));
    decipher.setAuthTag(encrypted.tag);
    plain = Buffer.concat([decipher.update(encrypted.data), decipher.final()]);
  } catch {
    return undefined;
  }
  return typedValue(plain, encrypted.type);
}

function typedValue(plain: Buffer, type: string): SopsValue {
  const text = plain.toString('utf8');
  switch (type) {
    case 'str':
      return { value: text, macBytes: plain };
    case 'bytes':
      return { value: text, macBytes: plain };
    case 'int':
    case 'int64': {
      if (!/^[+-]?\d+$/.test(text)) throw new TypeError(`"${type}" value is not a whole number`);
      const big = BigInt(text);
      const safe = big <= BigInt(Number.MAX_SAFE_INTEGER) && big >= BigInt(Number.MIN_SAFE_INTEGER);
      return { value: safe ? Number(big) : big.toString(), macBytes: utf8(big.toString()) };
    }
    case 'float': {
      const n = Number(text);
      if (text.trim() === '' || Number.isNaN(n))
        throw new TypeError('"float" value is not a number');
      return { value: n, macBytes: utf8(goFloat(n)) };
    }
    case 'bool': {
      const b = parseGoBool(text);
      if (b === undefined) throw new TypeError('"bool" value is not a boolean');
      return { value: b, macBytes: utf8(b ? 'True' : 'False') };
    }
    default:
      throw new TypeError(`unknown SOPS value type "${type}"`);
  }
}

/** The bytes SOPS hashes for a value that is not encrypted (Go's `sops.ToBytes`). */
export function clearMacBytes(value: string | number | boolean): Uint8Array {
  if (typeof value === 'string') return utf8(value);
  if (typeof value === 'boolean') return utf8(value ? 'True' : 'False');
  return utf8(goFloat(value));
}

/** Go's `strconv.ParseBool`. */
function parseGoBool(text: string): boolean | undefined {
  if (['1', 't', 'T', 'TRUE', 'true', 'True'].includes(text)) return true;
  if (['0', 'f', 'F', 'FALSE', 'false', 'False'].includes(text)) return false;
  return undefined;
}

/**
 * A number as Go's `strconv.FormatFloat(n, 'f', -1, 64)` writes it: the shortest digits that
 * read back the same, never in exponent form.
 */
export function goFloat(n: number): string {
  if (Number.isNaN(n)) return 'NaN';
  if (n === Infinity) return '+Inf';
  if (n === -Infinity) return '-Inf';
  if (Object.is(n, -0)) return '-0';
  const s = String(n);
  const m = /^(-?)(\d)(?:\.(\d+))?e([+-]\d+)$/.exec(s);
  if (!m) return s;
  const [, sign, lead, frac = '', expText] = m as unknown as [
    string,
    string,
    string,
    string,
    string,
  ];
  const digits = lead + frac;
  const exp = Number(expText);
  if (exp >= 0) {
    const int = digits.padEnd(exp + 1, '0');
    const rest = digits.slice(exp + 1);
    return `${sign}${int.slice(0, exp + 1)}${rest ? `.${rest}` : ''}`;
  }
  return `${sign}0.${'0'.repeat(-exp - 1)}${digits}`;
}

function utf8(s: string): Uint8Array {
  return Buffer.from(s, 'utf8');
}
