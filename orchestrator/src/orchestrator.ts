/**
 * The orchestrator: one store, one executor, and a driver per live run. `muster run` uses it in
 * process; `muster server` wraps it in an API.
 *
 * Drivers are loaded once per run (concurrent callers share the load), started once, and let go
 * when their run has ended and nobody has touched it for a while, so a long-lived server holds
 * only the runs that are live. Closing stops new commits, waits for those in flight, then closes
 * the store: a task whose result was not committed runs again after a restart, as after a crash.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import type { Workflow } from '../../schemas/src/workflow.ts';
import { loadWorkflowSource, type WorkflowFormat } from '../../schemas/src/load.ts';
import { loadCatalog } from '../../taskservs/index.ts';
import type { Plan } from './plan/types.ts';
import { planLoadedWorkflow, type LoadedPlan } from './plan/load-and-plan.ts';
import { RunDriver, type EngineStore } from './engine/run-driver.ts';
import type { Dispatcher } from './engine/dispatch.ts';
import type { Clock } from './engine/clock.ts';
import { FINAL_RUN_STATUSES } from './engine/types.ts';
import type { Run, RunEvent, RunStatus } from './engine/types.ts';
import { createStore, StoreError, type Store } from './store/index.ts';
import { compileOptions, type CompiledOptions, type OrchestratorOptions } from './options.ts';
import { createLocalExecutor } from './executor/local.ts';
import { createLocalProvider } from '../../providers/local/index.ts';
import { createSshProvider, routeSshServers } from '../../providers/ssh/index.ts';
import { limitProvider } from '../../providers/limits.ts';
import type { Provider } from '../../providers/types.ts';
import { createStepRegistry, loadHandlerModules } from './steps/registry.ts';
import type { StepRegistry } from './steps/types.ts';
import { createSecretsLoader, withSecrets } from './secrets/index.ts';
import { EngineError } from './engine/errors.ts';
import { OrchestratorError, RunNotFoundError } from './errors.ts';
import { createEmbeddedAgents, type EmbeddedAgentsOptions } from './agents/embedded.ts';
import type { AgentHub } from './agents/hub.ts';

/** Receives every committed event of every run this orchestrator drives. */
export type EventListener = (event: RunEvent) => void;

/** A submission. */
export interface SubmitOptions {
  /** Names the run; with an existing id, the existing run is returned. */
  readonly id?: string;
  readonly labels?: Readonly<Record<string, string>>;
  readonly idempotencyKey?: string;
}

/** A workflow given as source text. */
export interface SourceOptions {
  readonly format: WorkflowFormat;
  /** The name problems report. @default `<FORMAT source>` */
  readonly file?: string;
}

/** What can be done to a run once it exists. */
export const RUN_ACTIONS = ['pause', 'resume', 'cancel', 'terminate', 'retry', 'rollback'] as const;
/** An action on a run. */
export type RunAction = (typeof RUN_ACTIONS)[number];

/** Options of {@link Orchestrator.control}. */
export interface ControlOptions {
  /** `retry`: only this operation (and what was skipped because of it). */
  readonly operation?: string;
  /** `rollback`: keep what was done up to this checkpoint. */
  readonly toCheckpoint?: number;
}

/** An orchestrator. */
export interface Orchestrator {
  readonly options: CompiledOptions;
  readonly store: Store;
  readonly registry: StepRegistry;
  /** The agent hub: agents of local servers connect to it, remote ones through `/agents`. */
  readonly agents?: AgentHub;
  /**
   * Loads a workflow from source and plans it against the catalog and this orchestrator's step
   * handlers; nothing is stored.
   *
   * @throws {InvalidWorkflowError} With every problem, located in the source.
   */
  prepare(source: string, options: SourceOptions): Promise<LoadedPlan>;
  /** Creates a run (or returns the one with the same id or idempotency key). */
  submit(
    workflow: Workflow,
    plan: Plan,
    options?: SubmitOptions,
  ): Promise<{ run: Run; created: boolean }>;
  /** Starts or resumes driving a run, once; resolves once it is under way. */
  drive(runId: string): Promise<RunDriver>;
  /** The live driver of a run, loading it when needed (not started). */
  driver(runId: string): Promise<RunDriver>;
  /**
   * Pauses, resumes, cancels, terminates, retries or rolls back a run; resolves once the change is
   * committed (a rollback: once it is under way), with the run's status then.
   *
   * @throws {RunNotFoundError} `ORC1001` for an unknown run.
   * @throws {MusterError} `ORC1002` when the run's state forbids the action; `ORC1203`/`ORC1205`
   * for an unknown checkpoint or operation; `ORC1204` while tasks still run.
   */
  control(runId: string, action: RunAction, options?: ControlOptions): Promise<RunStatus>;
  /**
   * Drives every run left pending, running, cancelling or rolling back, as after a restart.
   *
   * @returns the ids of the runs now driven
   */
  resumeIncomplete(): Promise<string[]>;
  subscribe(listener: EventListener): () => void;
  /** Stops committing, waits for commits in flight, and closes the store. */
  close(): Promise<void>;
}

/** Test and embedding hooks. @internal */
export interface OrchestratorInternals {
  readonly store?: Store;
  readonly dispatcher?: Dispatcher;
  readonly clock?: Clock;
  readonly registry?: StepRegistry;
  /** How long an ended run's driver stays in memory after its last use. @default 60_000 */
  readonly idleDriverMs?: number;
  /**
   * Agents for local servers; `false` runs their steps in process. @default on, unless a
   * `dispatcher` is given
   */
  readonly agents?: EmbeddedAgentsOptions | false;
}

/** The orchestrator is closing: nothing more is committed. */
export class OrchestratorClosedError extends OrchestratorError {
  override readonly name = 'OrchestratorClosedError';
  constructor() {
    super('ORC1006', 'the orchestrator is shutting down; the run resumes when it starts again');
  }
}

/** Run states a restarted orchestrator picks up by itself. */
const INCOMPLETE: readonly RunStatus[] = ['pending', 'running', 'cancelling', 'rolling_back'];

interface LiveDriver {
  readonly driver: RunDriver;
  started?: Promise<void>;
  lastUsed: number;
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
  // Local servers are real `muster agent` processes, and their tasks go to them (issue 5).
  const agents =
    internals.agents === false || (internals.dispatcher && internals.agents === undefined)
      ? undefined
      : createEmbeddedAgents({
          store: store.agents,
          serversDir: compiled.serversDir,
          handlers: compiled.handlers,
          ...(internals.agents ? { options: internals.agents } : {}),
        });
  // Hosts reached over SSH: their steps run there directly, not through agents (providers/ssh).
  const ssh = createSshProvider({ stateDir: compiled.stateDir });
  const providers = new Map<string, Provider>([
    ['local', agents?.localProvider ?? createLocalProvider({ root: compiled.serversDir })],
    ['ssh', limitProvider(ssh, ssh.limits)],
  ]);
  const localExecutor = createLocalExecutor({ registry, providers, workRoot: compiled.stateDir });
  // Secrets are read here, where the files and keys are, and travel with the task.
  const dispatcher = withSecrets(
    internals.dispatcher ??
      routeSshServers(agents?.route(localExecutor) ?? localExecutor, { ssh, providers, registry }),
    createSecretsLoader({ env: compiled.env }),
  );
  const listeners = new Set<EventListener>();
  const drivers = new Map<string, LiveDriver>();
  const loading = new Map<string, Promise<LiveDriver>>();
  const idleMs = internals.idleDriverMs ?? 60_000;

  // Drivers commit through this gate, so closing can refuse new commits and wait for the rest.
  let closing = false;
  const inFlight = new Set<Promise<unknown>>();
  const engineStore: EngineStore = {
    loadRun: (id) => store.loadRun(id),
    commit(runId, batch, fence) {
      if (closing) return Promise.reject(new OrchestratorClosedError());
      const commit = store.commit(runId, batch, fence);
      inFlight.add(commit);
      const forget = () => inFlight.delete(commit);
      commit.then(forget, forget);
      return commit;
    },
  };

  const live = (runId: string): Promise<LiveDriver> => {
    const entry = drivers.get(runId);
    if (entry) {
      entry.lastUsed = Date.now();
      return Promise.resolve(entry);
    }
    let pending = loading.get(runId);
    if (!pending) {
      pending = (async () => {
        const driver = await RunDriver.load(runId, {
          store: engineStore,
          dispatcher,
          concurrency: compiled.concurrency,
          ...(internals.clock ? { clock: internals.clock } : {}),
          onEvent: (event) => {
            for (const listener of listeners) listener(event);
          },
        }).catch((e: unknown) => {
          // The engine's own "no such run" becomes the orchestrator's, which the API maps to 404.
          throw e instanceof EngineError && e.code === 'ORC1201' ? new RunNotFoundError(runId) : e;
        });
        const loaded: LiveDriver = { driver, lastUsed: Date.now() };
        drivers.set(runId, loaded);
        // A driver that lost its store is of no further use: the next caller loads a fresh one.
        const watch = () =>
          driver.done.then(
            () => {},
            () => {
              if (drivers.get(runId) === loaded) drivers.delete(runId);
            },
          );
        void watch();
        return loaded;
      })().finally(() => loading.delete(runId));
      loading.set(runId, pending);
    }
    return pending;
  };

  const drive = async (runId: string): Promise<RunDriver> => {
    const entry = await live(runId);
    entry.started ??= entry.driver.start();
    await entry.started;
    return entry.driver;
  };

  // Let go of drivers whose run ended and that nobody used lately; they reload on demand.
  const sweeper = setInterval(
    () => {
      const cutoff = Date.now() - idleMs;
      for (const [runId, entry] of drivers) {
        if (entry.lastUsed < cutoff && FINAL_RUN_STATUSES.has(entry.driver.runStatus)) {
          drivers.delete(runId);
        }
      }
    },
    Math.max(1000, Math.min(idleMs, 30_000)),
  );
  sweeper.unref();

  let catalog: ReturnType<typeof loadCatalog> | undefined;

  const submit: Orchestrator['submit'] = async (workflow, plan, submit = {}) => {
    if (submit.id) {
      const existing = await store.getRun(submit.id);
      if (existing) return { run: existing, created: false };
    }
    const create = () =>
      store.createRun({
        id: submit.id ?? newRunId(workflow.name),
        name: workflow.name,
        workflow,
        plan,
        labels: { ...workflow.labels, ...submit.labels },
        ...(submit.idempotencyKey ? { idempotencyKey: submit.idempotencyKey } : {}),
      });
    try {
      return await create();
    } catch (e: unknown) {
      // Two submits with one idempotency key at once: the loser finds the winner's run. Without
      // a key, a clash of generated ids (vanishingly rare) gets a fresh id.
      if (!(e instanceof StoreError) || submit.id !== undefined) throw e;
      return create();
    }
  };

  return {
    options: compiled,
    store,
    registry,
    ...(agents ? { agents: agents.hub } : {}),
    async prepare(source, { format, file }) {
      const loaded = await loadWorkflowSource(source, {
        format,
        ...(file !== undefined ? { file } : {}),
      });
      catalog ??= loadCatalog();
      catalog.catch(() => (catalog = undefined));
      return { loaded, plan: planLoadedWorkflow(loaded, await catalog, registry) };
    },
    submit,
    drive,
    driver: async (runId) => (await live(runId)).driver,
    async control(runId, action, options = {}) {
      const driver = await drive(runId);
      switch (action) {
        case 'pause':
          await driver.pause();
          break;
        case 'resume':
          await driver.resume();
          break;
        case 'cancel':
          await driver.cancel();
          break;
        case 'terminate':
          await driver.cancel({ force: true });
          break;
        case 'retry':
          await driver.retry(
            options.operation !== undefined ? { operation: options.operation } : {},
          );
          break;
        case 'rollback':
          await rollbackUnderWay(driver, options.toCheckpoint, listeners);
          break;
      }
      return driver.runStatus;
    },
    async resumeIncomplete() {
      const ids: string[] = [];
      for (const status of INCOMPLETE) {
        let cursor: string | undefined;
        do {
          const page = await store.listRuns({
            status,
            limit: 100,
            ...(cursor ? { cursor } : {}),
          });
          ids.push(...page.items.map((r) => r.id));
          cursor = page.nextCursor ?? undefined;
        } while (cursor);
      }
      for (const id of ids) await drive(id);
      return ids;
    },
    subscribe(listener) {
      listeners.add(listener);
      return () => listeners.delete(listener);
    },
    async close() {
      closing = true;
      clearInterval(sweeper);
      await Promise.allSettled([...loading.values()]);
      while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
      drivers.clear();
      await agents?.close();
      await ssh.close();
      await store.close();
    },
  };
}

/**
 * Starts a rollback and resolves once it is under way: its `run:rolling_back` event committed, or
 * the rollback over already (nothing to undo), or refused.
 */
async function rollbackUnderWay(
  driver: RunDriver,
  toCheckpoint: number | undefined,
  listeners: Set<EventListener>,
): Promise<void> {
  let resolveStarted!: () => void;
  const started = new Promise<void>((resolve) => (resolveStarted = resolve));
  const listener: EventListener = (e) => {
    if (e.runId === driver.runId && e.type === 'run:rolling_back') resolveStarted();
  };
  listeners.add(listener);
  try {
    const rollback = driver.rollbackRun(toCheckpoint !== undefined ? { toCheckpoint } : {});
    rollback.catch(() => {});
    await Promise.race([rollback, started]);
  } finally {
    listeners.delete(listener);
  }
}

/** A run id: the workflow's name, a time stamp and randomness, e.g. `deploy-mhx2k1-9f3a07c2`. */
export function newRunId(name: string): string {
  const slug =
    name
      .toLowerCase()
      .replace(/[^a-z0-9]+/g, '-')
      .replace(/^-|-$/g, '')
      .slice(0, 32) || 'run';
  return `${slug}-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
}

export type { RunStatus };
