/**
 * Where the `muster batch` commands find the orchestrator: `--server` or `MUSTER_SERVER` (default
 * `http://127.0.0.1:7070`), and the token from `--token` or `MUSTER_TOKEN`.
 *
 * @module
 */
import { DEFAULT_SERVER } from '../client.ts';
import { UsageError } from '../exit.ts';

/** The connection flags of `muster batch`. */
export interface ConnectionFlags {
  readonly server?: string;
  readonly token?: string;
}

/** The orchestrator to talk to. */
export interface Connection {
  /** A base URL without a trailing slash. */
  readonly server: string;
  readonly token: string | undefined;
}

/**
 * Resolves the connection from flags, then the environment, then the default.
 *
 * @param flags `--server` and `--token`.
 * @param env The environment (`MUSTER_SERVER`, `MUSTER_TOKEN`).
 *
 * @returns The server URL and the token.
 *
 * @throws {UsageError} When the server is not an `http://` or `https://` URL.
 */
export function resolveConnection(
  flags: ConnectionFlags,
  env: NodeJS.ProcessEnv = process.env,
): Connection {
  const raw = flags.server || env['MUSTER_SERVER'] || DEFAULT_SERVER;
  const source = flags.server ? '--server' : env['MUSTER_SERVER'] ? 'MUSTER_SERVER' : 'default';
  // `localhost:7070` is what people type; it parses as a URL with the scheme `localhost:`.
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(raw) ? raw : `http://${raw}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new UsageError(
      `${source} "${raw}" is not a URL; give the orchestrator's address, e.g. http://127.0.0.1:7070`,
    );
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new UsageError(
      `${source} "${raw}" must be an http:// or https:// URL, e.g. http://127.0.0.1:7070`,
    );
  }
  if (url.search || url.hash) {
    throw new UsageError(`${source} "${raw}" must not have a query or fragment`);
  }
  const token = flags.token || env['MUSTER_TOKEN'] || undefined;
  return { server: url.toString().replace(/\/+$/, ''), token };
}
