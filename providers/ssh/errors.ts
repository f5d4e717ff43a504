/**
 * The ways reaching a host over SSH fails, as {@link StepFailure}s the engine stores and reads
 * to decide retries: a host that is down may come back (retryable); a refused key, a changed host
 * key or a bad `key_file` will not (non-retryable).
 *
 * @module
 */
import { StepFailure } from '../../orchestrator/src/steps/types.ts';

/** Failure types of the ssh provider. */
export const SSH_FAILURES = {
  /** Connection refused, host unreachable, name not resolved. Retryable. */
  unreachable: 'ssh-unreachable',
  /** No SSH handshake in time. Retryable. */
  timeout: 'ssh-timeout',
  /** The connection dropped while in use. Retryable. */
  disconnected: 'ssh-disconnected',
  /** The server refused the key. */
  auth: 'ssh-auth',
  /** The host presented a key other than the one on record, or a revoked one. */
  hostKey: 'ssh-host-key',
  /** The private key cannot be read or used. */
  key: 'ssh-key',
  /** The server's entry cannot be used over SSH (no address, bad path). */
  config: 'ssh-config',
  /** A step type that does not run over SSH. */
  unsupported: 'ssh-unsupported-step',
  /** A remote file operation failed. */
  sftp: 'ssh-sftp',
} as const;

/** Where a failure happened: `user@host:port`, for messages. */
export function describeTarget(t: { user: string; host: string; port: number }): string {
  return `${t.user}@${t.host}:${t.port}`;
}

/** A failure that retrying cannot fix. */
export function permanent(
  type: string,
  message: string,
  details?: Record<string, unknown>,
  cause?: unknown,
): StepFailure {
  return new StepFailure(type, message, {
    nonRetryable: true,
    ...(details ? { details } : {}),
    ...(cause !== undefined ? { cause } : {}),
  });
}

/** A failure that may pass on a later attempt. */
export function transient(
  type: string,
  message: string,
  details?: Record<string, unknown>,
  cause?: unknown,
): StepFailure {
  return new StepFailure(type, message, {
    ...(details ? { details } : {}),
    ...(cause !== undefined ? { cause } : {}),
  });
}
