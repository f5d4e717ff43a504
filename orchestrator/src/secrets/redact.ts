/**
 * The redactor: replaces every secret value, and its common encodings, with `***` in text and in
 * JSON-like values, so that output lines, failures, step outputs and rollback data the engine
 * stores, streams and logs never hold a secret.
 *
 * Each value is matched as written, base64-encoded (standard and URL alphabets), URL-encoded and
 * JSON-escaped; a value spanning lines is also matched line by line, since scripts print lines.
 * Values shorter than {@link MIN_SECRET_LENGTH} characters are not matched: they would blank out
 * every `1` or `no` in the output without hiding anything.
 *
 * @module
 */
import type { SecretLeaf, SecretNode, SecretTree } from './types.ts';

/** What a secret is replaced with. */
export const REDACTED = '***';

/** Shorter values are not redacted. */
export const MIN_SECRET_LENGTH = 3;

/** Lines of a multi-line secret shorter than this are not matched on their own. */
const MIN_LINE_LENGTH = 8;

/** Replaces secrets in text and in JSON-like values. */
export interface Redactor {
  /** How many patterns it matches (0: it changes nothing). */
  readonly size: number;
  /** The text with every secret replaced by `***`. */
  text(text: string): string;
  /** A deep copy of a JSON-like value with every string (and key) redacted. */
  value<T>(value: T): T;
}

/** The redactor that changes nothing. */
export const NO_REDACTION: Redactor = { size: 0, text: (t) => t, value: (v) => v };

/**
 * Creates a redactor for a set of secret values.
 *
 * @param values The secrets (numbers and booleans are matched as their text).
 * @returns The redactor.
 * @example
 * ```ts
 * const redact = createRedactor(['s3cr3t-token']);
 * redact.text('Authorization: s3cr3t-token'); // 'Authorization: ***'
 * ```
 */
export function createRedactor(values: Iterable<SecretLeaf>): Redactor {
  const patterns = new Set<string>();
  for (const leaf of values) {
    const secret = String(leaf);
    if (secret.length < MIN_SECRET_LENGTH) continue;
    for (const form of encodings(secret)) patterns.add(form);
    if (secret.includes('\n')) {
      for (const line of secret.split(/\r?\n/)) {
        if (line.trim().length >= MIN_LINE_LENGTH) patterns.add(line.trim());
      }
    }
  }
  if (patterns.size === 0) return NO_REDACTION;
  // Longest first, so a value is replaced whole before any of its parts.
  const sorted = [...patterns].sort((a, b) => b.length - a.length);
  const regex = new RegExp(sorted.map(escapeRegExp).join('|'), 'g');
  const text = (s: string) => (s.length === 0 ? s : s.replace(regex, REDACTED));
  const value = <T>(v: T): T => deep(v, text) as T;
  return { size: sorted.length, text, value };
}

/** Every leaf of a secret tree. */
export function secretLeaves(tree: SecretTree | SecretNode): SecretLeaf[] {
  const out: SecretLeaf[] = [];
  const visit = (node: SecretNode) => {
    if (node === null) return;
    if (Array.isArray(node)) node.forEach(visit);
    else if (typeof node === 'object') Object.values(node as SecretTree).forEach(visit);
    else out.push(node as SecretLeaf);
  };
  visit(tree as SecretNode);
  return out;
}

function encodings(secret: string): string[] {
  const bytes = Buffer.from(secret, 'utf8');
  const base64 = bytes.toString('base64');
  const forms = [
    secret,
    base64,
    base64.replace(/=+$/, ''),
    bytes.toString('base64url'),
    encodeURIComponent(secret),
    JSON.stringify(secret).slice(1, -1),
  ];
  return forms.filter((f) => f.length >= MIN_SECRET_LENGTH);
}

function deep(value: unknown, text: (s: string) => string): unknown {
  if (typeof value === 'string') return text(value);
  if (Array.isArray(value)) return value.map((v) => deep(v, text));
  if (value !== null && typeof value === 'object') {
    return Object.fromEntries(
      Object.entries(value as Record<string, unknown>).map(([k, v]) => [text(k), deep(v, text)]),
    );
  }
  return value;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
