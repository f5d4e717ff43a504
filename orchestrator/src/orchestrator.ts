/**
 * The orchestrator: one store, one executor, and a driver per live run. `muster run` uses it in
 * process; `muster server` wraps it in an API.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import type { Workflow } from '../../schemas/src/workflow.ts';
import type { Plan } from './plan/types.ts';
import { RunDriver } from './engine/run-driver.ts';
import type { Dispatcher } from './engine/dispatch.ts';
import type { Clock } from './engine/clock.ts';
import type { Run, RunEvent, RunStatus } from './engine/types.ts';
import { createStore, type Store } from './store/index.ts';
import { compileOptions, type CompiledOptions, type OrchestratorOptions } from './options.ts';
import { createLocalExecutor } from './executor/local.ts';
import { createLocalProvider } from '../../providers/local/index.ts';
import { createStepRegistry, loadHandlerModules } from './steps/registry.ts';
import type { StepRegistry } from './steps/types.ts';
import { RunNotFoundError } from './errors.ts';

/** Receives every committed event of every run this orchestrator drives. */
export type EventListener = (event: RunEvent) => void;

/** A submission. */
export interface SubmitOptions {
  /** Names the run; with an existing id, the existing run is returned. */
  readonly id?: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly idempotencyKey?: string;
}

/** An orchestrator. */
export interface Orchestrator {
  readonly options: CompiledOptions;
  readonly store: Store;
  readonly registry: StepRegistry;
  /** Creates a run (or returns the one with the same id or idempotency key). */
  submit(
    workflow: Workflow,
    plan: Plan,
    options?: SubmitOptions,
  ): Promise<{ run: Run; created: boolean }>;
  /** Starts or resumes driving a run; resolves once it is under way. */
  drive(runId: string): Promise<RunDriver>;
  /** The live driver of a run, loading it when needed. */
  driver(runId: string): Promise<RunDriver>;
  subscribe(listener: EventListener): () => void;
  close(): Promise<void>;
}

/** Test and embedding hooks. @internal */
export interface OrchestratorInternals {
  readonly store?: Store;
  readonly dispatcher?: Dispatcher;
  readonly clock?: Clock;
  readonly registry?: StepRegistry;
}

/** Creates an orchestrator over PGlite (default) or PostgreSQL (`databaseUrl`). */
export async function createOrchestrator(
  options: OrchestratorOptions = {},
  internals: OrchestratorInternals = {},
): Promise<Orchestrator> {
  const compiled = compileOptions(options);
  const registry = internals.registry ?? createStepRegistry();
  if (compiled.handlers.length) await loadHandlerModules(registry, [...compiled.handlers]);
  const store =
    internals.store ??
    (await createStore(
      compiled.databaseUrl
        ? { connectionString: compiled.databaseUrl }
        : { pglite: { dataDir: compiled.pgliteDir } },
    ));
  const providers = new Map([['local', createLocalProvider({ root: compiled.serversDir })]]);
  const dispatcher =
    internals.dispatcher ??
    createLocalExecutor({ registry, providers, workRoot: compiled.stateDir });
  const listeners = new Set<EventListener>();
  const drivers = new Map<string, RunDriver>();

  const load = async (runId: string): Promise<RunDriver> => {
    const live = drivers.get(runId);
    if (live) return live;
    if (!(await store.getRun(runId))) throw new RunNotFoundError(runId);
    const driver = await RunDriver.load(runId, {
      store,
      dispatcher,
      concurrency: compiled.concurrency,
      ...(internals.clock ? { clock: internals.clock } : {}),
      onEvent: (event) => {
        for (const listener of listeners) listener(event);
      },
    });
    drivers.set(runId, driver);
    return driver;
  };

  return {
    options: compiled,
    store,
    registry,
    async submit(workflow, plan, submit = {}) {
      if (submit.id) {
        const existing = await store.getRun(submit.id);
        if (existing) return { run: existing, created: false };
      }
      return store.createRun({
        id: submit.id ?? newRunId(workflow.name),
        name: workflow.name,
        workflow,
        plan,
        labels: { ...workflow.labels, ...submit.labels },
        ...(submit.idempotencyKey ? { idempotencyKey: submit.idempotencyKey } : {}),
      });
    },
    async drive(runId) {
      const driver = await load(runId);
      await driver.start();
      return driver;
    },
    driver: load,
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async close() {
      drivers.clear();
      await store.close();
    },
  };
}

/** A run id: the workflow's name, a time stamp and randomness, e.g. `deploy-mhx2k1-9f3a`. */
export function newRunId(name: string): string {
  const slug =
    name
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-|-$/g, '')
      .slice(0, 32) || 'run';
  return `${slug}-${Date.now().toString(36)}-${randomBytes(2).toString('hex')}`;
}

export type { RunStatus };
