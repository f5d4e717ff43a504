/**
 * Orchestrator options: what a user may set, the defaults, and the one place that reads the
 * environment.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import { join, resolve } from 'node:path';

/** What a user may set. Every field is optional. */
export interface OrchestratorOptions {
  /**
   * PostgreSQL URL; without one, the embedded PGlite under `stateDir` is used.
   *
   * @default process.env.DATABASE_URL
   */
  readonly databaseUrl?: string;
  /** Muster's local state: the embedded database, server sandboxes, caches. @default `.muster` */
  readonly stateDir?: string;
  /** Tasks running at once in one run. @default 64 */
  readonly concurrency?: number;
  /** Modules with custom step handlers. @default process.env.MUSTER_HANDLERS (comma-separated) */
  readonly handlers?: readonly string[];
  /**
   * Names this orchestrator among the replicas sharing a PostgreSQL; the owner of its run leases.
   *
   * @default process.env.MUSTER_REPLICA_ID, else `HOST-PID-RANDOM`
   */
  readonly replicaId?: string;
  /**
   * How long a run lease lasts without a heartbeat (PostgreSQL only): a replica that dies has its
   * runs taken over by another within about this long. Heartbeats go every third of it.
   *
   * @default process.env.MUSTER_LEASE_TTL_MS, else 3000
   */
  readonly leaseTtlMs?: number;
  /**
   * Take over unfinished runs nobody drives, and serve agents from the shared queue (PostgreSQL
   * only): what `muster server` replicas do. Otherwise only the runs this process starts are
   * driven.
   *
   * @default false
   */
  readonly claimRuns?: boolean;
}

/** Options with every default resolved. */
export interface CompiledOptions {
  readonly databaseUrl: string | undefined;
  readonly stateDir: string;
  readonly pgliteDir: string;
  readonly serversDir: string;
  readonly concurrency: number;
  readonly handlers: readonly string[];
  readonly replicaId: string;
  readonly leaseTtlMs: number;
  readonly claimRuns: boolean;
  /**
   * The environment secrets are read from (`SOPS_AGE_KEY`, `SOPS_AGE_KEY_FILE`, and the names a
   * `provider: "env"` block lists). Never serialize it.
   */
  readonly env: Readonly<Record<string, string | undefined>>;
}

/** Fills in defaults, reading the environment once. */
export function compileOptions(
  options: OrchestratorOptions = {},
  env: NodeJS.ProcessEnv = process.env,
): CompiledOptions {
  const stateDir = resolve(options.stateDir ?? env['MUSTER_STATE_DIR'] ?? '.muster');
  const concurrency = options.concurrency ?? 64;
  if (!Number.isInteger(concurrency) || concurrency < 1) {
    throw new RangeError(`concurrency must be a whole number of at least 1, not ${concurrency}`);
  }
  const leaseTtlMs = options.leaseTtlMs ?? Number(env['MUSTER_LEASE_TTL_MS'] || 3000);
  if (!Number.isInteger(leaseTtlMs) || leaseTtlMs < 300) {
    throw new RangeError(
      `the lease timeout must be a whole number of milliseconds, at least 300, not ${leaseTtlMs}`,
    );
  }
  return {
    replicaId:
      options.replicaId ??
      (env['MUSTER_REPLICA_ID'] ||
        `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`),
    leaseTtlMs,
    claimRuns: options.claimRuns ?? false,
    databaseUrl: options.databaseUrl ?? (env['DATABASE_URL'] || undefined),
    stateDir,
    pgliteDir: join(stateDir, 'pglite'),
    serversDir: join(stateDir, 'servers'),
    concurrency,
    handlers:
      options.handlers ??
      (env['MUSTER_HANDLERS'] ?? '')
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean),
    env,
  };
}
