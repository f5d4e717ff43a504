/**
 * Orchestrator options: what a user may set, the defaults, and the one place that reads the
 * environment.
 *
 * @module
 */
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
}

/** Options with every default resolved. */
export interface CompiledOptions {
  readonly databaseUrl: string | undefined;
  readonly stateDir: string;
  readonly pgliteDir: string;
  readonly serversDir: string;
  readonly concurrency: number;
  readonly handlers: readonly string[];
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
  return {
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
