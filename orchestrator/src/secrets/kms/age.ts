/**
 * The age key service: finds the age identities a user has set up the way SOPS does, and opens
 * a SOPS file's age-encrypted data key with them (through `age-encryption`, the age author's
 * TypeScript implementation).
 *
 * Identities are read, in this order, from the workflow's `age_key_file` (or
 * `sops_config.age_key_file`), `SOPS_AGE_KEY` (the keys themselves), `SOPS_AGE_KEY_FILE`, and
 * SOPS's default `$XDG_CONFIG_HOME/sops/age/keys.txt` (`~/.config/sops/age/keys.txt`); every one
 * found is tried.
 *
 * @module
 */
import { existsSync, readFileSync } from 'node:fs';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Secrets } from '../../../../schemas/src/workflow.ts';
import { SecretsError, type SecretsContext } from '../types.ts';
import type { KeyService, SopsMasterKey } from './types.ts';

/** Where age identities were found. */
export interface AgeIdentities {
  /** `AGE-SECRET-KEY-1…` strings. */
  readonly identities: readonly string[];
  /** The files and variables they came from. */
  readonly sources: readonly string[];
}

const IDENTITY = /^AGE-SECRET-KEY-(PQ-)?1[0-9A-Z]+$/;

/**
 * Finds the age identities for a workflow's secrets, as SOPS would.
 *
 * @param config The workflow's `secrets` block.
 * @param ctx The environment and working directory.
 * @returns Every identity found, with where it came from.
 * @throws {SecretsError} `ORC1903` when a key file that was named explicitly cannot be read.
 */
export function findAgeIdentities(config: Secrets, ctx: SecretsContext): AgeIdentities {
  const identities: string[] = [];
  const sources: string[] = [];
  const cwd = ctx.cwd ?? process.cwd();
  const add = (text: string, source: string) => {
    const found = parseIdentities(text);
    if (found.length === 0) return;
    identities.push(...found);
    sources.push(source);
  };
  const home = ctx.env['HOME'] || homedir();
  const expand = (p: string) => (p === '~' || p.startsWith('~/') ? join(home, p.slice(1)) : p);
  const named = config.age_key_file ?? config.sops_config?.age_key_file;
  if (named !== undefined) {
    add(readKeyFile(resolve(cwd, expand(named)), 'secrets.age_key_file'), named);
  }
  const inline = ctx.env['SOPS_AGE_KEY'];
  if (inline) add(inline, 'SOPS_AGE_KEY');
  const envFile = ctx.env['SOPS_AGE_KEY_FILE'];
  if (envFile) add(readKeyFile(resolve(cwd, expand(envFile)), 'SOPS_AGE_KEY_FILE'), envFile);
  const configHome = ctx.env['XDG_CONFIG_HOME'] || join(home, '.config');
  const fallback = join(configHome, 'sops', 'age', 'keys.txt');
  // SOPS's default location, unless it is the file already named.
  if (existsSync(fallback) && !sources.some((s) => resolve(cwd, expand(s)) === fallback)) {
    add(readKeyFile(fallback, 'the default key file'), fallback);
  }
  return { identities, sources };
}

/** The identities in a key file's text: one per line, `#` comments and blank lines skipped. */
export function parseIdentities(text: string): string[] {
  return text
    .split(/\r?\n/)
    .map((l) => l.trim())
    .filter((l) => IDENTITY.test(l));
}

function readKeyFile(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e: unknown) {
    const code = (e as { code?: string }).code;
    throw new SecretsError(
      'ORC1903',
      `cannot read the age key file ${path} (${what}): ${code === 'ENOENT' ? 'no such file' : code === 'EACCES' ? 'permission denied' : String(code ?? e)}; fix the path or create the key with age-keygen`,
      path,
      { cause: e },
    );
  }
}

/**
 * Creates the age key service over a set of identities.
 *
 * @param found The identities (see {@link findAgeIdentities}).
 * @returns A key service for `age` master keys.
 */
export function createAgeKeyService(found: AgeIdentities): KeyService {
  return {
    type: 'age',
    sources: found.sources,
    async decryptDataKey(keys: readonly SopsMasterKey[]) {
      if (found.identities.length === 0) return undefined;
      // Loaded here, when a file is opened: importing age-encryption (and the post-quantum
      // crypto it brings) takes about 160 ms, which every run without SOPS secrets would pay.
      const { Decrypter, armor } = await import('age-encryption');
      const decrypter = new Decrypter();
      for (const identity of found.identities) decrypter.addIdentity(identity);
      for (const key of keys) {
        let file: Uint8Array;
        try {
          file = armor.decode(key.enc);
        } catch {
          continue; // a malformed entry for someone else's key must not hide ours
        }
        try {
          return await decrypter.decrypt(file);
        } catch {
          // Not one of ours (or damaged): try the next recipient.
        }
      }
      return undefined;
    },
  };
}
