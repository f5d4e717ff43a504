/**
 * The REST API as a Hono app: the routes of the contract (`/workflows…`, `/health`, `/ready`,
 * `/metrics`, `/openapi.json`), with auth on every route but `/health`, errors mapped once to
 * RFC 9457 problem details, and each answered request counted by route pattern.
 *
 * The app opens no socket: tests call `app.request(…)`, and {@link startServer} serves it.
 *
 * @module
 */
import { Hono, type Context } from 'hono';
import type { ContentfulStatusCode } from 'hono/utils/http-status';
import { routePath } from 'hono/route';
import type { Orchestrator } from '../orchestrator.ts';
import { coerceError } from '../errors.ts';
import type { Auth } from './auth.ts';
import { RouteNotFoundError, UnauthenticatedError } from './errors.ts';
import type { Metrics } from './metrics.ts';
import { provideAuth, type AuthEnv } from './middleware/auth/index.ts';
import { DEFAULT_BODY_LIMIT } from './middleware/body-limit/index.ts';
import { buildOpenApi } from './openapi.ts';
import { PROBLEM_JSON, toProblem } from './problem.ts';
import { controlRoutes } from './routes/control.ts';
import { executionRoutes } from './routes/executions.ts';
import { logsRoutes } from './routes/logs.ts';
import { serviceRoutes } from './routes/service.ts';
import { workflowRoutes } from './routes/workflows.ts';

/** Options of {@link createApp}. */
export interface AppOptions {
  readonly orchestrator: Orchestrator;
  readonly auth: Auth;
  readonly metrics: Metrics;
  /** The largest request body, in bytes. @default 2 MiB */
  readonly bodyLimit?: number;
  /** The version `/openapi.json` states. @default '0.1.0' */
  readonly version?: string;
  /**
   * Where errors that are the server's fault are reported (a request's method, path and stack;
   * never its headers, so never a token).
   *
   * @default a line on stderr
   */
  readonly logError?: (message: string) => void;
}

/**
 * Creates the API app.
 *
 * @param options The orchestrator to serve, the token checker, the metrics, the body limit.
 *
 * @returns The Hono app.
 *
 * @example
 * ```ts
 * const app = createApp({ orchestrator, auth, metrics });
 * const res = await app.request('/workflows', { headers: { Authorization: `Bearer ${token}` } });
 * ```
 */
export function createApp(options: AppOptions): Hono<AuthEnv> {
  const { orchestrator, auth, metrics } = options;
  const bodyLimit = options.bodyLimit ?? DEFAULT_BODY_LIMIT;
  const logError =
    options.logError ?? ((message: string) => process.stderr.write(`muster server: ${message}\n`));
  let openapi: Record<string, unknown> | undefined;

  const app = new Hono<AuthEnv>();

  app.use('*', async (c, next) => {
    const started = performance.now();
    await next();
    const route = routePath(c, -1);
    metrics.observeRequest(
      c.req.method,
      route === '' || route === '*' || route === '/*' ? 'unmatched' : route,
      c.res.status,
      (performance.now() - started) / 1000,
    );
  });
  app.use('*', provideAuth(auth));

  app.route(
    '/',
    serviceRoutes({
      store: orchestrator.store,
      cluster: orchestrator.cluster,
      metrics,
      openapi: () =>
        (openapi ??= buildOpenApi(options.version ? { version: options.version } : {})),
    }),
  );
  app.route('/', workflowRoutes({ orchestrator, bodyLimit }));
  app.route('/', controlRoutes({ orchestrator, bodyLimit }));
  // POST /executions: reference-format fleet requests (routes/executions.ts, compat/executions.ts).
  app.route('/', executionRoutes({ orchestrator, bodyLimit }));
  app.route('/', logsRoutes({ orchestrator, auth }));

  const answer = (error: unknown, c: Context<AuthEnv>): Response => {
    const { body, internal } = toProblem(error, c.req.path);
    if (internal) {
      const e = coerceError(error);
      logError(`${c.req.method} ${c.req.path} failed: ${e.stack ?? e.message}`);
    }
    if (error instanceof UnauthenticatedError) {
      // RFC 6750 §3: tell the client which scheme to use.
      c.header('WWW-Authenticate', 'Bearer realm="muster"');
    }
    return c.json(body, body.status as ContentfulStatusCode, { 'Content-Type': PROBLEM_JSON });
  };
  app.notFound((c) => answer(new RouteNotFoundError(c.req.method, c.req.path), c));
  app.onError((error, c) => answer(error, c));

  return app;
}
