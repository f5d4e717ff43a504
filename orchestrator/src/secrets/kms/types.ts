/**
 * The key-service (KMS) interface: how a SOPS file's data key is recovered from the master keys
 * it was encrypted to. Muster ships age (`age.ts`); a service for AWS KMS, GCP KMS, Vault or PGP
 * would implement the same interface.
 *
 * @module
 */

/** One master key of a SOPS file: its type and what the file stores for it. */
export interface SopsMasterKey {
  /** The metadata list it came from: `age`, `pgp`, `kms`, `gcp_kms`, `azure_kv`, `hc_vault`. */
  readonly type: string;
  /** Who it is for: an age recipient, a PGP fingerprint, a KMS ARN, … (for messages). */
  readonly id: string;
  /** The data key, encrypted to this master key. */
  readonly enc: string;
}

/** Recovers SOPS data keys for one type of master key. */
export interface KeyService {
  /** The master key type it handles (`age`). */
  readonly type: string;
  /** Where its keys come from, for messages (paths and variable names, never key material). */
  readonly sources: readonly string[];
  /**
   * Decrypts the data key with the first master key of its type that one of its keys opens.
   *
   * @param keys The file's master keys of this service's type.
   * @returns The 32-byte data key, or `undefined` when none of `keys` is ours.
   */
  decryptDataKey(keys: readonly SopsMasterKey[]): Promise<Uint8Array | undefined>;
}
