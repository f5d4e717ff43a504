/**
 * The provider interface: how Muster creates, deletes and inspects servers. `local` ships today;
 * `ssh` and cloud providers implement the same four calls.
 *
 * @module
 */

/** How a server is reached over SSH (the workflow's `ssh` field, defaults filled in). */
export interface ServerSshAccess {
  readonly user: string;
  readonly port: number;
  readonly key_file?: string;
}

/** A server as a provider sees it. */
export interface ProviderServer {
  readonly name: string;
  readonly address?: string;
  readonly labels: Readonly<Record<string, string>>;
  /** For servers reached over SSH. */
  readonly ssh?: ServerSshAccess;
}

/** What a provider reports about a server. */
export interface ServerStatus {
  readonly name: string;
  readonly state: 'running' | 'stopped' | 'absent';
  readonly address?: string;
}

/** What a create left behind, so a rollback deletes only what it created. */
export interface CreateResult {
  readonly created: boolean;
  readonly address?: string;
}

/** A provider of servers. */
export interface Provider {
  readonly name: string;
  create(server: ProviderServer, signal: AbortSignal): Promise<CreateResult>;
  delete(server: ProviderServer, signal: AbortSignal): Promise<void>;
  status(server: ProviderServer, signal: AbortSignal): Promise<ServerStatus>;
  list(): Promise<ServerStatus[]>;
  /** Where steps for this server run on this machine, for providers whose servers are local. */
  workdir?(server: ProviderServer): string;
}
