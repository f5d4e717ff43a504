/**
 * The control routes: `POST /workflows/{id}/rollback|retry|pause|resume|cancel|terminate`. Each
 * answers `202 { id, status }` once the change is committed (a rollback: once it is under way),
 * and `409` (`ORC1002`) when the run's state forbids it.
 *
 * @module
 */
import { Hono } from 'hono';
import type * as v from 'valibot';
import type { Orchestrator, RunAction } from '../../orchestrator.ts';
import { requireRole, type AuthEnv } from '../middleware/auth/index.ts';
import { limitBody } from '../middleware/body-limit/index.ts';
import { EmptyBodySchema, RetryBodySchema, RollbackBodySchema } from '../schemas.ts';
import { parseJsonBody } from '../validate.ts';

/** Options of {@link controlRoutes}. */
export interface ControlRoutesOptions {
  readonly orchestrator: Orchestrator;
  /** The largest body accepted, in bytes. */
  readonly bodyLimit: number;
}

/** Each action's body schema. */
export const CONTROL_BODIES = {
  rollback: RollbackBodySchema,
  retry: RetryBodySchema,
  pause: EmptyBodySchema,
  resume: EmptyBodySchema,
  cancel: EmptyBodySchema,
  terminate: EmptyBodySchema,
} as const satisfies Record<RunAction, v.GenericSchema>;

/**
 * The control routes; every one needs `operator`.
 *
 * @example
 * ```ts
 * app.route('/', controlRoutes({ orchestrator, bodyLimit: 2 * 1024 * 1024 }));
 * ```
 */
export function controlRoutes(options: ControlRoutesOptions): Hono<AuthEnv> {
  const { orchestrator } = options;
  const app = new Hono<AuthEnv>();
  for (const action of Object.keys(CONTROL_BODIES) as RunAction[]) {
    app.post(
      `/workflows/:id/${action}`,
      requireRole('operator'),
      limitBody(options.bodyLimit),
      async (c) => {
        const id = c.req.param('id');
        const body = (await parseJsonBody(c, CONTROL_BODIES[action])) as {
          to_checkpoint?: number;
          operation?: string;
        };
        const status = await orchestrator.control(id, action, {
          ...(body.to_checkpoint !== undefined ? { toCheckpoint: body.to_checkpoint } : {}),
          ...(body.operation !== undefined ? { operation: body.operation } : {}),
        });
        return c.json({ id, status }, 202);
      },
    );
  }
  return app;
}
