/**
 * `muster server`: runs the orchestrator as a service — the REST API, the WebSocket and the
 * metrics — on the embedded PGlite under `.muster/` (or PostgreSQL with `--database-url`).
 * Prints `listening on http://HOST:PORT` to stderr once it accepts requests; SIGTERM or SIGINT
 * stops it gracefully (a second signal stops it at once).
 *
 * Tokens come from `--tokens-file` and `MUSTER_TOKENS`; without any, the server refuses to start
 * unless `--insecure-no-auth` is given. `--tls-cert` and `--tls-key` serve HTTPS and `wss://`;
 * listening beyond this machine without them is warned about, since tokens would cross the
 * network in clear text.
 *
 * Runs log as their workflow's `logging` says: files under `--log-dir` (default
 * `<state-dir>/logs`; a `logging.path` must stay inside it), and the `stdout` destination on this
 * process's stdout. The server's own messages, agents' comings and goings included, go to stderr.
 *
 * @module
 */
import type { Command } from 'commander';
import { EXIT_INTERRUPTED, EXIT_OK, UsageError } from '../exit.ts';

interface ServerFlags {
  port?: string;
  host?: string;
  databaseUrl?: string;
  stateDir?: string;
  logDir?: string;
  tokensFile?: string;
  bodyLimit?: string;
  concurrency?: string;
  handlers?: string;
  insecureNoAuth?: boolean;
  replicaId?: string;
  leaseTtl?: string;
  advertiseUrl?: string;
  agentHeartbeat?: string;
  tlsCert?: string;
  tlsKey?: string;
}

/** Registers `muster server`. */
export function serverCommand(program: Command): void {
  program
    .command('server')
    .description('run the orchestrator service: REST API, WebSocket, Prometheus metrics')
    .option('--port <n>', 'port to listen on; 0 picks a free one (default 7070)')
    .option('--host <host>', 'address to listen on (default 127.0.0.1)')
    .option(
      '--database-url <url>',
      'PostgreSQL instead of the embedded database (env DATABASE_URL)',
    )
    .option('--state-dir <dir>', "Muster's local state (default .muster, env MUSTER_STATE_DIR)")
    .option(
      '--log-dir <dir>',
      "runs' log files; a workflow's logging.path resolves inside it (default <state-dir>/logs)",
    )
    .option(
      '--tokens-file <file>',
      'API tokens, one role:token[:name] a line (also env MUSTER_TOKENS=role:token,…)',
    )
    .option('--body-limit <bytes>', 'largest request body (default 2097152, i.e. 2 MiB)')
    .option('--concurrency <n>', 'tasks running at once in one run (default 64)')
    .option('--handlers <modules>', 'comma-separated modules with custom step handlers')
    .option('--insecure-no-auth', 'accept every request as an operator, with no token')
    .option(
      '--replica-id <id>',
      'this replica among those sharing a PostgreSQL (env MUSTER_REPLICA_ID; default HOST-PID-RANDOM)',
    )
    .option(
      '--lease-ttl <ms>',
      "how soon another replica takes over this one's runs if it dies (env MUSTER_LEASE_TTL_MS; default 3000)",
    )
    .option(
      '--advertise-url <url>',
      'the URL this replica is reached at (default http://HOST:PORT)',
    )
    .option('--tls-cert <file>', 'serve HTTPS and wss:// with this PEM certificate (chain)')
    .option('--tls-key <file>', "the certificate's PEM private key (with --tls-cert)")
    .option(
      '--agent-heartbeat <ms>',
      'how often agents heartbeat; one silent for three heartbeats is lost (default 5000)',
    )
    .action(async (flags: ServerFlags) => {
      process.exitCode = await server(flags);
    });
}

async function server(flags: ServerFlags): Promise<number> {
  const port = wholeNumber(flags.port, '--port', 0, 65535);
  const bodyLimit = wholeNumber(flags.bodyLimit, '--body-limit', 1, Number.MAX_SAFE_INTEGER);
  const concurrency = wholeNumber(flags.concurrency, '--concurrency', 1, 1_000_000);
  const leaseTtlMs = wholeNumber(flags.leaseTtl, '--lease-ttl', 300, 3_600_000);
  const agentHeartbeatMs = wholeNumber(flags.agentHeartbeat, '--agent-heartbeat', 50, 600_000);
  const tokensEnv = process.env['MUSTER_TOKENS'];
  if (Boolean(flags.tlsCert) !== Boolean(flags.tlsKey)) {
    throw new UsageError(
      `--tls-cert and --tls-key go together; ${flags.tlsCert ? '--tls-key' : '--tls-cert'} is missing`,
    );
  }
  // Loaded here, not with the command: `muster --help` need not load the whole service.
  const { startServer } = await import('../../../orchestrator/src/api/server.ts');
  const running = await startServer({
    ...(port !== undefined ? { port } : {}),
    ...(flags.host ? { host: flags.host } : {}),
    ...(flags.databaseUrl ? { databaseUrl: flags.databaseUrl } : {}),
    ...(flags.stateDir ? { stateDir: flags.stateDir } : {}),
    ...(flags.logDir ? { logDir: flags.logDir } : {}),
    ...(flags.tokensFile ? { tokensFile: flags.tokensFile } : {}),
    ...(tokensEnv ? { tokensEnv } : {}),
    ...(bodyLimit !== undefined ? { bodyLimit } : {}),
    ...(concurrency !== undefined ? { concurrency } : {}),
    ...(leaseTtlMs !== undefined ? { leaseTtlMs } : {}),
    ...(agentHeartbeatMs !== undefined ? { agentHeartbeatMs } : {}),
    ...(flags.replicaId ? { replicaId: flags.replicaId } : {}),
    ...(flags.advertiseUrl ? { advertiseUrl: flags.advertiseUrl } : {}),
    ...(flags.handlers ? { handlers: flags.handlers.split(',').map((s) => s.trim()) } : {}),
    ...(flags.tlsCert && flags.tlsKey
      ? { tls: { certFile: flags.tlsCert, keyFile: flags.tlsKey } }
      : {}),
    insecureNoAuth: flags.insecureNoAuth ?? false,
    log: (line) => process.stderr.write(`muster server: ${line}\n`),
  });
  if (flags.insecureNoAuth) {
    process.stderr.write(
      'muster server: WARNING: --insecure-no-auth: every request is accepted as an operator\n',
    );
  }
  if (!flags.tlsCert && !isLoopback(flags.host ?? '127.0.0.1')) {
    process.stderr.write(
      `muster server: WARNING: listening on ${flags.host} without TLS: tokens cross the network ` +
        'in clear text; give --tls-cert and --tls-key, or put a TLS proxy in front\n',
    );
  }
  process.stderr.write(`muster server: run logs under ${running.logDir}\n`);
  process.stderr.write(`listening on ${running.url}\n`);

  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: NodeJS.Signals) => {
      if (stopping) {
        process.stderr.write(`muster server: ${signal} again: stopping now\n`);
        process.exit(EXIT_INTERRUPTED);
      }
      stopping = true;
      process.stderr.write(`muster server: ${signal}: stopping (again to force)\n`);
      running.close().then(
        () => {
          process.stderr.write('muster server: stopped\n');
          resolve(EXIT_OK);
        },
        (e: unknown) => {
          process.stderr.write(
            `muster server: stopping failed: ${e instanceof Error ? e.message : String(e)}\n`,
          );
          resolve(1);
        },
      );
    };
    process.on('SIGTERM', stop);
    process.on('SIGINT', stop);
  });
}

function wholeNumber(
  raw: string | undefined,
  flag: string,
  min: number,
  max: number,
): number | undefined {
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (!/^\d+$/.test(raw.trim()) || n < min || n > max) {
    throw new UsageError(`${flag} takes a whole number from ${min} to ${max}, not "${raw}"`);
  }
  return n;
}

/** Whether a listen address is reachable from this machine only. */
function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || host.startsWith('127.');
}
