/**
 * The contract of secret providers: where a workflow's `secrets` come from.
 *
 * Terminology:
 * - A **secret tree** is what a provider yields: nested objects whose leaves are strings, numbers
 *   or booleans. Templates read it as `secrets.<name>` (`secrets.db.password`).
 * - A **secret name** is a dotted path to a leaf or branch of that tree (`db.password`). Names are
 *   knowable without decrypting anything (a SOPS file keeps its keys in clear), so templates that
 *   name a secret that does not exist fail at validate time.
 * - A **key service** (KMS) turns a SOPS file's encrypted data key back into the key; age is the
 *   one Muster ships (`kms/age.ts`).
 *
 * @module
 */
import type { Secrets } from '../../../schemas/src/workflow.ts';
import { MusterError } from '../../../schemas/src/problems.ts';

/** A secret value: what a leaf of a secret tree holds. */
export type SecretLeaf = string | number | boolean;

/** Secrets as nested objects and lists, leaves being strings, numbers or booleans. */
export interface SecretTree {
  readonly [name: string]: SecretNode;
}

/** A node of a {@link SecretTree}. */
export type SecretNode = SecretLeaf | null | SecretTree | readonly SecretNode[];

/** What a provider may read besides the workflow's `secrets` block. */
export interface SecretsContext {
  /** The environment (`SOPS_AGE_KEY`, `SOPS_AGE_KEY_FILE`, and `provider: "env"` names). */
  readonly env: Readonly<Record<string, string | undefined>>;
  /** Relative paths resolve against it. @default process.cwd() */
  readonly cwd?: string;
}

/** One source of secrets: `sops`, `env` or `file`. */
export interface SecretProvider {
  readonly name: Secrets['provider'];
  /**
   * Reads every secret the config names.
   *
   * @throws {SecretsError} When a file is missing, malformed, tampered with or cannot be decrypted.
   */
  load(config: Secrets, ctx: SecretsContext): Promise<SecretTree>;
  /**
   * The secret tree's shape without its values (leaves are `true`), read without decrypting.
   *
   * @throws {SecretsError} When a file is missing or malformed.
   */
  shape(config: Secrets, ctx: SecretsContext): SecretTree;
}

/**
 * A secret could not be read. The message names the file and what to do; it never holds a
 * secret value.
 */
export class SecretsError extends MusterError {
  override readonly name = 'SecretsError';
  constructor(
    code: `ORC19${string}`,
    message: string,
    readonly file?: string,
    options?: { cause?: unknown },
  ) {
    super(code, message, options);
  }
}
