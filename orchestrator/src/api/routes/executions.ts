/**
 * `POST /executions`: a fleet-rollout request in the reference format (`servers`, `steps`,
 * `rolloutStrategy`), translated to a Muster workflow (see `compat/executions.ts`) and submitted
 * as `POST /workflows/batch` submits one: planned, stored, driven, and answered with the run id.
 *
 * A request of the wrong shape is a `400` whose problems name the request's fields
 * (`rolloutStrategy.batchSize`); a well-formed request whose steps Muster refuses (a `script`
 * without `command`) is a `422` whose problems are located in the request too (`steps.0.params`).
 * `?dry_run=1` answers with the translated workflow and its plan and runs nothing; `?validate=1`
 * only validates. An `Idempotency-Key` header makes a retried request return the first run.
 *
 * @module
 */
import { Hono } from 'hono';
import * as v from 'valibot';
import { InvalidWorkflowError } from '../../../../schemas/src/problems.ts';
import type { Server } from '../../../../schemas/src/workflow.ts';
import { parseExecutionRequest, requestPath, translateExecution } from '../../compat/executions.ts';
import type { Orchestrator } from '../../orchestrator.ts';
import { planBody } from '../plan-body.ts';
import { BadRequestError, IdempotencyConflictError } from '../errors.ts';
import { requireRole, type AuthEnv } from '../middleware/auth/index.ts';
import { limitBody } from '../middleware/body-limit/index.ts';
import { IdempotencyKeySchema, isOn, SubmitQuerySchema, type SubmitResult } from '../schemas.ts';
import { parseJsonBody, parseQuery, parseRequest } from '../validate.ts';

/** Options of {@link executionRoutes}. */
export interface ExecutionRoutesOptions {
  readonly orchestrator: Orchestrator;
  /** The largest body accepted, in bytes. */
  readonly bodyLimit: number;
  /**
   * Servers a request may name and get more than a local server (an ssh host, say); any other
   * name is a server on the local provider.
   *
   * @default none
   */
  readonly inventory?: () => readonly Server[] | Promise<readonly Server[]>;
}

/** The name problems give a translated request. */
const REQUEST_FILE = '<POST /executions>';

/**
 * The executions route; it needs `operator`.
 *
 * @example
 * ```ts
 * app.route('/', executionRoutes({ orchestrator, bodyLimit: 2 * 1024 * 1024 }));
 * // POST /executions {"servers":["server-1"],"steps":[…],"rolloutStrategy":{"type":"Rolling"}}
 * // → 201 {"id":"execution-mhx2k1-9f3a07c2","name":"execution","status":"running","created":true}
 * ```
 */
export function executionRoutes(options: ExecutionRoutesOptions): Hono<AuthEnv> {
  const { orchestrator } = options;
  const app = new Hono<AuthEnv>();

  app.post('/executions', requireRole('operator'), limitBody(options.bodyLimit), async (c) => {
    const query = parseQuery(c, SubmitQuerySchema);
    const body: unknown = await parseJsonBody(c, v.unknown());
    const parsed = parseExecutionRequest(body);
    if (!parsed.success) {
      throw new BadRequestError(
        `the execution request is not valid: ${parsed.problems.map((p) => p.message).join('; ')}`,
        parsed.problems,
      );
    }
    const inventory = options.inventory ? await options.inventory() : [];
    const workflow = translateExecution(parsed.output, { inventory });
    let prepared;
    try {
      prepared = await orchestrator.prepare(JSON.stringify(workflow), {
        format: 'json',
        file: REQUEST_FILE,
      });
    } catch (e: unknown) {
      if (!(e instanceof InvalidWorkflowError)) throw e;
      // Locate the problems in the request, not in the workflow it became.
      throw new InvalidWorkflowError(
        e.problems.map(({ line: _line, column: _column, ...p }) => ({
          ...p,
          path: requestPath(p.path),
          file: REQUEST_FILE,
        })),
        REQUEST_FILE,
      );
    }
    const { loaded, plan } = prepared;
    if (isOn(query.dry_run)) {
      return c.body(planBody({ workflow }, plan), 200, {
        'Content-Type': 'application/json; charset=utf-8',
      });
    }
    if (isOn(query.validate)) return c.json({ valid: true, problems: [] }, 200);

    const header = c.req.header('idempotency-key');
    const key =
      header === undefined ? undefined : parseRequest(IdempotencyKeySchema, header, 'header');
    const { run, created } = await orchestrator.submit(loaded.workflow, plan, {
      ...(key !== undefined ? { idempotencyKey: key } : {}),
    });
    let status = run.status;
    if (created) {
      status = (await orchestrator.drive(run.id)).runStatus;
    } else if (key !== undefined && canonical(run.workflow) !== canonical(loaded.workflow)) {
      throw new IdempotencyConflictError(key, run.id);
    }
    c.header('Location', `/workflows/${encodeURIComponent(run.id)}/status`);
    return c.json(
      { id: run.id, name: run.name, status, created } satisfies SubmitResult,
      created ? 201 : 200,
    );
  });

  return app;
}

/** JSON with keys sorted, to compare two workflows whatever their key order. */
function canonical(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    v !== null && typeof v === 'object' && !Array.isArray(v)
      ? Object.fromEntries(Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : v,
  );
}
