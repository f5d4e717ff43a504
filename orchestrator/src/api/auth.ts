/**
 * Bearer-token authentication with roles, for the REST API and the WebSocket.
 *
 * Roles: `viewer` reads; `operator` reads, submits and controls runs (it includes `viewer`);
 * `agent` is separate and reaches only an agent's own queue. Tokens come from a tokens file (one
 * `role:token[:name]` a line, `#` comments) or `MUSTER_TOKENS` (comma-separated `role:token`).
 *
 * Tokens are compared in constant time: the candidate's SHA-256 is compared with every configured
 * token's SHA-256 through `crypto.timingSafeEqual`, always all of them, so neither the position of
 * the first differing byte nor which token matched shows in the timing. Hashing first gives equal
 * lengths, which `timingSafeEqual` needs, without revealing a token's length. No token is ever
 * logged or echoed in an error message; lines are named by number.
 *
 * @module
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { ApiConfigError } from './errors.ts';

/** The roles a token may carry. */
export const ROLES = ['viewer', 'operator', 'agent'] as const;

/** A token's role. */
export type Role = (typeof ROLES)[number];

/** Who made a request: the role of its token and the token's name (never the token). */
export interface Principal {
  readonly role: Role;
  readonly name: string;
}

/** A configured token. */
export interface TokenEntry {
  readonly role: Role;
  readonly token: string;
  /** Shown in logs instead of the token. @default `ROLE-N` (the Nth token of that role) */
  readonly name?: string;
}

/** Options of {@link createAuth}. */
export interface AuthOptions {
  readonly tokens: readonly TokenEntry[];
  /**
   * Accept every request as an operator, with no token. Only for a server nobody else can reach
   * (`muster server --insecure-no-auth`).
   *
   * @default false
   */
  readonly insecure?: boolean;
}

/** Checks tokens and roles. */
export interface Auth {
  /** Whether tokens are checked at all (false with `insecure`). */
  readonly enabled: boolean;
  /**
   * Identifies the holder of a token.
   *
   * @returns the principal, or `undefined` for a missing or unknown token
   */
  verify(token: string | undefined): Principal | undefined;
  /** Whether a principal may do what needs `need`: operator includes viewer; agent is separate. */
  allows(principal: Principal, need: Role): boolean;
}

/** The principal of every request on a server started with `--insecure-no-auth`. */
export const INSECURE_PRINCIPAL: Principal = { role: 'operator', name: 'anonymous (no auth)' };

/**
 * Creates the token checker.
 *
 * @param options The tokens, or `insecure` to let every request in as an operator.
 *
 * @returns The checker.
 *
 * @throws {ApiConfigError} `API1001` when no tokens are given without `insecure`, or a token
 * appears twice.
 *
 * @example
 * ```ts
 * const auth = createAuth({ tokens: await loadTokens({ env: process.env.MUSTER_TOKENS }) });
 * auth.verify(bearer); // { role: 'viewer', name: 'viewer-1' } or undefined
 * ```
 */
export function createAuth(options: AuthOptions): Auth {
  if (options.insecure) {
    return { enabled: false, verify: () => INSECURE_PRINCIPAL, allows: roleAllows };
  }
  if (options.tokens.length === 0) {
    throw new ApiConfigError(
      'no API tokens are configured; give a tokens file (--tokens-file) or MUSTER_TOKENS, ' +
        'or start with --insecure-no-auth to let every request in as an operator',
    );
  }
  const perRole = new Map<Role, number>();
  const entries = options.tokens.map((entry) => {
    const n = (perRole.get(entry.role) ?? 0) + 1;
    perRole.set(entry.role, n);
    return {
      digest: digest(entry.token),
      principal: { role: entry.role, name: entry.name ?? `${entry.role}-${n}` } as Principal,
    };
  });
  for (let i = 0; i < entries.length; i++) {
    for (let j = 0; j < i; j++) {
      if (timingSafeEqual(entries[i]!.digest, entries[j]!.digest)) {
        throw new ApiConfigError(
          `tokens ${j + 1} (${entries[j]!.principal.name}) and ${i + 1} (${entries[i]!.principal.name}) are the same; give each role and client its own token`,
        );
      }
    }
  }
  return {
    enabled: true,
    verify(token) {
      if (token === undefined || token === '') return undefined;
      const candidate = digest(token);
      let found: Principal | undefined;
      // No early exit: every configured token is compared, whichever matches.
      for (const entry of entries) {
        if (timingSafeEqual(candidate, entry.digest)) found = entry.principal;
      }
      return found;
    },
    allows: roleAllows,
  };
}

function roleAllows(principal: Principal, need: Role): boolean {
  if (need === 'viewer') return principal.role === 'viewer' || principal.role === 'operator';
  return principal.role === need;
}

function digest(token: string): Buffer {
  return createHash('sha256').update(token, 'utf8').digest();
}

/** Where {@link loadTokens} reads tokens from. */
export interface LoadTokensOptions {
  /** A file with one `role:token[:name]` a line; blank lines and `#` comments are skipped. */
  readonly tokensFile?: string;
  /** The value of `MUSTER_TOKENS`: comma-separated `role:token` (or `role:token:name`). */
  readonly env?: string;
}

/**
 * Reads tokens from a tokens file and from the `MUSTER_TOKENS` value; both may be given.
 *
 * @param options The file and the environment value.
 *
 * @returns Every token, file first.
 *
 * @throws {ApiConfigError} `API1001` naming the file and line (or the entry's position in
 * `MUSTER_TOKENS`) of a malformed entry or an unknown role, without echoing the token.
 */
export async function loadTokens(options: LoadTokensOptions): Promise<TokenEntry[]> {
  const tokens: TokenEntry[] = [];
  if (options.tokensFile !== undefined) {
    let text: string;
    try {
      text = await readFile(options.tokensFile, 'utf8');
    } catch (e: unknown) {
      const code = (e as { code?: string }).code;
      throw new ApiConfigError(
        `cannot read the tokens file ${options.tokensFile}${code ? ` (${code})` : ''}; ` +
          'check the path given to --tokens-file',
      );
    }
    text.split(/\r?\n/).forEach((raw, i) => {
      const line = raw.trim();
      if (line === '' || line.startsWith('#')) return;
      tokens.push(parseEntry(line, `${options.tokensFile}:${i + 1}`));
    });
  }
  if (options.env !== undefined && options.env.trim() !== '') {
    options.env.split(',').forEach((raw, i) => {
      const entry = raw.trim();
      if (entry === '') return;
      tokens.push(parseEntry(entry, `MUSTER_TOKENS entry ${i + 1}`));
    });
  }
  return tokens;
}

function parseEntry(entry: string, where: string): TokenEntry {
  const first = entry.indexOf(':');
  if (first <= 0) {
    throw new ApiConfigError(
      `${where}: expected role:token[:name] (e.g. operator:s3cr3t:ci), with role viewer, operator or agent`,
    );
  }
  const role = entry.slice(0, first).trim();
  const rest = entry.slice(first + 1);
  const second = rest.indexOf(':');
  const token = (second === -1 ? rest : rest.slice(0, second)).trim();
  const name = second === -1 ? undefined : rest.slice(second + 1).trim();
  if (!isRole(role)) {
    // The role is not secret; the token is never echoed.
    throw new ApiConfigError(
      `${where}: unknown role "${role}"; use ${ROLES.join(', ')} (as role:token[:name])`,
    );
  }
  if (token === '') throw new ApiConfigError(`${where}: the token is empty`);
  if (/\s/.test(token)) throw new ApiConfigError(`${where}: the token contains whitespace`);
  return name ? { role, token, name } : { role, token };
}

function isRole(value: string): value is Role {
  return (ROLES as readonly string[]).includes(value);
}
