/**
 * The ssh provider's interface: a {@link Provider} plus what the executor needs to run steps on
 * its hosts.
 *
 * @module
 */
import type { ProviderLimits } from '../limits.ts';
import type { Provider, ProviderServer } from '../types.ts';
import type { SshConnection, SshTarget } from './connection.ts';

/** The ssh provider, with what the executor needs to run steps on its hosts. */
export interface SshProvider extends Provider {
  readonly name: 'ssh';
  /** The limits the engine applies to this provider's calls. */
  readonly limits: ProviderLimits;
  /**
   * Where a server is reached.
   *
   * @throws {StepFailure} `ssh-config` when the server has no address.
   */
  target(server: ProviderServer): SshTarget;
  /** The pooled connection to a server's host. */
  connect(server: ProviderServer, signal?: AbortSignal): Promise<SshConnection>;
  /** A server's work directory on its host (absolute). */
  remoteWorkdir(server: ProviderServer, signal?: AbortSignal): Promise<string>;
  /** Closes every connection. */
  close(): Promise<void>;
}
