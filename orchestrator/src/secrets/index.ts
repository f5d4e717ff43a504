/**
 * Secrets: where a workflow's `secrets` come from (`sops` files decrypted with age, `env`
 * variables, plain `file`s), the loader the executor uses at dispatch time, and the redactor that
 * keeps their values out of everything Muster stores, streams and logs.
 *
 * Secret values live in memory only: they are read when a task is dispatched, reach a step only
 * through the templates that name them, and never enter the store.
 *
 * @module
 */
import type { Secrets } from '../../../schemas/src/workflow.ts';
import { envProvider } from './env/index.ts';
import { fileProvider } from './file/index.ts';
import { createRedactor, secretLeaves, type Redactor } from './redact.ts';
import { sopsProvider } from './sops/index.ts';
import type { SecretProvider, SecretTree, SecretsContext } from './types.ts';

export { SecretsError } from './types.ts';
export type {
  SecretLeaf,
  SecretNode,
  SecretProvider,
  SecretTree,
  SecretsContext,
} from './types.ts';
export {
  createRedactor,
  MIN_SECRET_LENGTH,
  NO_REDACTION,
  REDACTED,
  secretLeaves,
} from './redact.ts';
export type { Redactor } from './redact.ts';
export { decryptSops, sopsShape, sopsProvider } from './sops/index.ts';
export { envProvider } from './env/index.ts';
export { withSecrets } from './dispatch.ts';
export { fileProvider } from './file/index.ts';
export { createAgeKeyService, findAgeIdentities, parseIdentities } from './kms/age.ts';
export type { AgeIdentities } from './kms/age.ts';
export type { KeyService, SopsMasterKey } from './kms/types.ts';

/** The providers, by `secrets.provider`. */
export const SECRET_PROVIDER_IMPLEMENTATIONS: Readonly<
  Record<Secrets['provider'], SecretProvider>
> = {
  sops: sopsProvider,
  env: envProvider,
  file: fileProvider,
};

/** A workflow's secrets, read: the tree templates see and the redactor for their values. */
export interface LoadedSecrets {
  readonly tree: SecretTree;
  readonly redactor: Redactor;
}

/**
 * Reads a workflow's secrets.
 *
 * @param config The workflow's `secrets` block.
 * @param ctx The environment and working directory.
 * @returns The secret tree and a redactor for its values.
 * @throws {SecretsError} When a source cannot be read, decrypted or verified.
 */
export async function loadSecrets(config: Secrets, ctx: SecretsContext): Promise<LoadedSecrets> {
  const tree = await SECRET_PROVIDER_IMPLEMENTATIONS[config.provider].load(config, ctx);
  return { tree, redactor: createRedactor(secretLeaves(tree)) };
}

/**
 * The names a workflow's secrets provide, without their values (nothing is decrypted): leaves
 * are `true`.
 *
 * @throws {SecretsError} When a source cannot be read.
 */
export function secretsShape(config: Secrets, ctx: SecretsContext): SecretTree {
  return SECRET_PROVIDER_IMPLEMENTATIONS[config.provider].shape(config, ctx);
}

/** Reads secrets for runs, each workflow's at most once a minute. */
export interface SecretsLoader {
  load(config: Secrets): Promise<LoadedSecrets>;
}

/** Options of {@link createSecretsLoader}. */
export interface SecretsLoaderOptions extends SecretsContext {
  /**
   * Milliseconds a loaded set of secrets is reused (a rotated secret is seen after that).
   *
   * @default 60000
   */
  readonly cacheMs?: number;
  /** @default Date.now */
  readonly now?: () => number;
}

/**
 * Creates the loader the executor reads secrets through: it caches each `secrets` block's values
 * briefly, in memory only, so a run of a thousand tasks decrypts its files once.
 */
export function createSecretsLoader(options: SecretsLoaderOptions): SecretsLoader {
  const cacheMs = options.cacheMs ?? 60_000;
  const now = options.now ?? Date.now;
  const cache = new Map<string, { at: number; loaded: Promise<LoadedSecrets> }>();
  return {
    load(config) {
      const key = JSON.stringify(config);
      const hit = cache.get(key);
      if (hit && now() - hit.at < cacheMs) return hit.loaded;
      const loaded = loadSecrets(config, options);
      cache.set(key, { at: now(), loaded });
      // A failure is not kept: the next task tries again (the file may have been fixed).
      loaded.catch(() => cache.delete(key));
      return loaded;
    },
  };
}
