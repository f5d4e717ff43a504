/**
 * The service routes: `GET /health` (liveness, the only route without a token), `GET /ready`
 * (the store answers), `GET /metrics` (Prometheus text) and `GET /openapi.json`.
 *
 * @module
 */
import { Hono } from 'hono';
import type { Store } from '../../store/store.ts';
import type { Metrics } from '../metrics.ts';
import { requireRole, type AuthEnv } from '../middleware/auth/index.ts';
import { ApiError } from '../errors.ts';
import type { ClusterView } from '../../orchestrator.ts';
import type { ClusterSchema } from '../schemas.ts';
import type * as v from 'valibot';

/** Options of {@link serviceRoutes}. */
export interface ServiceRoutesOptions {
  readonly store: Pick<Store, 'ping' | 'driver'>;
  /** This orchestrator among its replicas. */
  readonly cluster?: ClusterView;
  readonly metrics: Metrics;
  /** The OpenAPI document, built once. */
  readonly openapi: () => unknown;
  /** How long `/ready` waits for the store. @default 2000 */
  readonly readyTimeoutMs?: number;
}

/** The store did not answer in time. */
export class StoreUnavailableError extends ApiError {
  override readonly name = 'StoreUnavailableError';
  constructor(reason: string) {
    super('API5030', 503, `the store does not answer (${reason}); the server is not ready`);
  }
}

/**
 * The service routes.
 *
 * @example
 * ```ts
 * app.route('/', serviceRoutes({ store, metrics, openapi: () => document }));
 * ```
 */
export function serviceRoutes(options: ServiceRoutesOptions): Hono<AuthEnv> {
  const { store, metrics } = options;
  const timeoutMs = options.readyTimeoutMs ?? 2000;
  const app = new Hono<AuthEnv>();

  app.get('/health', (c) => c.json({ status: 'ok' as const }));

  app.get('/ready', requireRole('viewer'), async (c) => {
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([
        store.ping(),
        new Promise((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer in ${timeoutMs} ms`)), timeoutMs);
        }),
      ]);
    } catch (e: unknown) {
      throw new StoreUnavailableError(e instanceof Error ? e.message.split('\n')[0]! : 'failed');
    } finally {
      clearTimeout(timer);
    }
    return c.json({ status: 'ready' as const, store: store.driver });
  });

  app.get('/cluster', requireRole('viewer'), async (c) => {
    const cluster = options.cluster;
    const replicas = cluster?.leased ? await cluster.replicas() : [];
    const body: v.InferOutput<typeof ClusterSchema> = {
      replica: cluster?.replicaId ?? 'embedded',
      leased: cluster?.leased ?? false,
      driving: cluster?.drivenRuns() ?? [],
      replicas: replicas.map((r) => ({
        id: r.id,
        url: r.url ?? null,
        host: r.host,
        pid: r.pid,
        version: r.version,
        started_at: r.startedAt.toISOString(),
        heartbeat_at: r.heartbeatAt.toISOString(),
        live: r.live,
      })),
    };
    return c.json(body);
  });

  app.get('/metrics', requireRole('viewer'), async (c) => {
    return c.body(await metrics.render(), 200, { 'Content-Type': metrics.contentType });
  });

  app.get('/openapi.json', requireRole('viewer'), (c) => c.json(options.openapi()));

  return app;
}
