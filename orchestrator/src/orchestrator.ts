/**
 * The orchestrator: one store, one executor, and a driver per live run. `muster run` uses it in
 * process; `muster server` wraps it in an API.
 *
 * Drivers are loaded once per run (concurrent callers share the load), started once, and let go
 * when their run has ended and nobody has touched it for a while, so a long-lived server holds
 * only the runs that are live. Closing stops new commits, waits for those in flight, then closes
 * the store: a task whose result was not committed runs again after a restart, as after a crash.
 *
 * On PostgreSQL, several orchestrators (replicas) share the store, and each run is driven by the
 * one holding its lease (see `cluster/replica.ts`): a driver's commits are fenced by the lease's
 * token, a run whose driver stops is taken over by another replica, control actions for a run
 * driven elsewhere are forwarded to its driver, events of runs driven elsewhere reach this one's
 * subscribers, and agents' tasks go through a queue in the store, so an agent may connect to
 * any replica. Acquiring, driving and letting go of a run happen one at a time per run.
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
import type { Run, RunAction, RunEvent, RunStatus } from './engine/types.ts';
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
import { DriverStoppedError, EngineError } from './engine/errors.ts';
import type { Fence } from './engine/types.ts';
import { OrchestratorError, RunNotFoundError, coerceError } from './errors.ts';
import { createEmbeddedAgents, type EmbeddedAgentsOptions } from './agents/embedded.ts';
import type { AgentHub } from './agents/hub.ts';
import { LeaseLostError } from './store/errors.ts';
import type { CommandOutcome, ReplicaRecord } from './store/store.ts';
import { startReplica, type Replica } from './cluster/replica.ts';
import { createEventFeed, type EventFeed } from './cluster/event-feed.ts';
import { createCommandClient, type CommandClient } from './cluster/commands.ts';
import { createQueueDispatcher, type QueueDispatcher } from './cluster/dispatch-queue.ts';
import { createQueueConsumer, type QueueConsumer } from './cluster/queue-consumer.ts';

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

export { RUN_ACTIONS, type RunAction } from './engine/types.ts';

/** Options of {@link Orchestrator.control}. */
export interface ControlOptions {
  /** `retry`: only this operation (and what was skipped because of it). */
  readonly operation?: string;
  /** `rollback`: keep what was done up to this checkpoint. */
  readonly toCheckpoint?: number;
}

/** This orchestrator among the replicas sharing its PostgreSQL. */
export interface ClusterView {
  /** This replica's id: the owner of its run leases. */
  readonly replicaId: string;
  /** Whether runs are driven under leases (PostgreSQL). */
  readonly leased: boolean;
  /** Whether this replica takes over runs nobody drives (`muster server`). */
  readonly claiming: boolean;
  /** Runs this replica drives now. */
  drivenRuns(): string[];
  /** The replicas registered in the store. */
  replicas(): Promise<ReplicaRecord[]>;
}

/** An orchestrator. */
export interface Orchestrator {
  readonly options: CompiledOptions;
  readonly store: Store;
  readonly registry: StepRegistry;
  readonly cluster: ClusterView;
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
   * Drives every run left pending, running, cancelling or rolling back, as after a restart (on
   * PostgreSQL with `claimRuns`: those no replica drives, up to this one's share).
   *
   * @returns the ids of the runs now driven
   */
  resumeIncomplete(): Promise<string[]>;
  /**
   * Calls `listener` with every event committed by this orchestrator's drivers; with `remote`,
   * also with those of runs driven by other replicas (per run in order, for streams).
   */
  subscribe(listener: EventListener, options?: { readonly remote?: boolean }): () => void;
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
  /** Where the orchestrator says what happens to runs and replicas. @default nothing */
  readonly log?: (line: string) => void;
  /** This replica's API, recorded with it. */
  readonly url?: string;
  /** The version recorded with this replica. @default '0.1.0' */
  readonly version?: string;
}

/** The orchestrator is closing: nothing more is committed. */
export class OrchestratorClosedError extends OrchestratorError {
  override readonly name = 'OrchestratorClosedError';
  constructor() {
    super('ORC1006', 'the orchestrator is shutting down; the run resumes when it starts again');
  }
}

/** The run is driven by another replica, which holds its lease. */
export class RunDrivenElsewhereError extends OrchestratorError {
  override readonly name = 'RunDrivenElsewhereError';
  constructor(
    readonly runId: string,
    readonly owner: string,
  ) {
    super('ORC1009', `run "${runId}" is driven by replica ${owner}`);
  }
}

/** The replica driving the run did not answer a forwarded command in time. */
export class ReplicaUnavailableError extends OrchestratorError {
  override readonly name = 'ReplicaUnavailableError';
  constructor(
    readonly runId: string,
    readonly owner: string,
  ) {
    super(
      'ORC1010',
      `replica ${owner}, which drives run "${runId}", did not answer; nothing was done: ` +
        'try again in a few seconds (a replica that stopped has its runs taken over)',
    );
  }
}

/** A command the driving replica carried out and refused; keeps that replica's code. */
export class ForwardedCommandError extends OrchestratorError {
  override readonly name = 'ForwardedCommandError';
  constructor(code: string, message: string) {
    super(code, message.replace(/^\[[A-Z]+\d+\] /, ''));
  }
}

/** Run states a restarted orchestrator picks up by itself. */
const INCOMPLETE: readonly RunStatus[] = ['pending', 'running', 'cancelling', 'rolling_back'];

interface LiveDriver {
  readonly driver: RunDriver;
  started?: Promise<void>;
  lastUsed: number;
  /** The run lease it drives under (PostgreSQL). */
  readonly fence?: Fence;
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
  // On PostgreSQL runs are driven under leases, so replicas can share the store.
  const leased = store.driver === 'postgres';
  const claiming = leased && compiled.claimRuns;
  const replicaId = compiled.replicaId;
  const ttl = compiled.leaseTtlMs;
  const log = internals.log ?? (() => {});
  const secretsLoader = createSecretsLoader({ env: compiled.env });
  const hubTiming = internals.agents ? internals.agents.hub : undefined;
  const heartbeatMs = hubTiming?.heartbeatMs ?? 5000;
  const staleAfterMs = hubTiming?.staleAfterMs ?? 3 * heartbeatMs;
  // Agents' heartbeats reach the store every few seconds (agents/hub.ts): an agent is live in the
  // store's eyes until its staleness plus one such interval has passed.
  const agentStaleMs = staleAfterMs + Math.max(heartbeatMs, 2000);
  // Replicas that claim runs serve agents from a queue in the store, so an agent may connect to
  // any of them (cluster/queue-consumer.ts).
  const consumer: QueueConsumer | undefined = claiming
    ? createQueueConsumer({
        store,
        replicaId,
        secrets: secretsLoader,
        agentStaleMs,
        // A replica is dead once its runs' leases would have run out twice, and its agents have
        // had the time to be declared lost and reconnect elsewhere.
        orphanAfterMs: 2 * ttl + staleAfterMs,
        log,
      })
    : undefined;
  // Local servers are real `muster agent` processes, and their tasks go to them (issue 5).
  const agents =
    internals.agents === false || (internals.dispatcher && internals.agents === undefined)
      ? undefined
      : createEmbeddedAgents({
          store: store.agents,
          serversDir: compiled.serversDir,
          handlers: compiled.handlers,
          ...(internals.agents ? { options: internals.agents } : {}),
          ...(consumer ? { source: consumer } : {}),
        });
  if (agents && consumer) await consumer.bind(agents.hub);
  const queue: QueueDispatcher | undefined =
    agents && claiming
      ? await createQueueDispatcher({
          store,
          replicaId,
          agentStaleMs,
          ...(internals.agents && internals.agents.hub?.agentWaitMs !== undefined
            ? { agentWaitMs: internals.agents.hub.agentWaitMs }
            : {}),
          ...(internals.agents && internals.agents.autoStart === false
            ? {}
            : {
                onAgentNeeded: async (server, assignment) => {
                  await agents.localProvider.startAgent({
                    name: server,
                    labels: assignment.server?.labels ?? {},
                  });
                },
              }),
          log,
        })
      : undefined;
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
      routeSshServers(agents?.route(localExecutor, queue) ?? localExecutor, {
        ssh,
        providers,
        registry,
      }),
    secretsLoader,
  );
  const listeners = new Set<EventListener>();
  const remoteListeners = new Set<EventListener>();
  const drivers = new Map<string, LiveDriver>();
  const loading = new Map<string, Promise<LiveDriver>>();
  /** Leases held, by run: set before a driver loads, so a heartbeat never mistakes it for lost. */
  const held = new Map<string, number>();
  const idleMs = internals.idleDriverMs ?? 60_000;
  let feed: EventFeed | undefined;

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

  const publish = (event: RunEvent) => {
    for (const listener of listeners) listener(event);
    for (const listener of remoteListeners) listener(event);
    feed?.local(event);
  };

  const load = (runId: string, fence?: Fence) =>
    RunDriver.load(runId, {
      store: engineStore,
      dispatcher,
      concurrency: compiled.concurrency,
      ...(internals.clock ? { clock: internals.clock } : {}),
      ...(fence ? { fence } : {}),
      onEvent: publish,
    }).catch((e: unknown) => {
      // The engine's own "no such run" becomes the orchestrator's, which the API maps to 404.
      throw e instanceof EngineError && e.code === 'ORC1201' ? new RunNotFoundError(runId) : e;
    });

  /** Loads a run's driver without a lease (PGlite: one process owns the database). */
  const live = (runId: string): Promise<LiveDriver> => {
    const entry = drivers.get(runId);
    if (entry) {
      entry.lastUsed = Date.now();
      return Promise.resolve(entry);
    }
    let pending = loading.get(runId);
    if (!pending) {
      pending = (async () => {
        const driver = await load(runId);
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

  // ── leased driving (PostgreSQL) ────────────────────────────────────────────
  const runLocks = new Map<string, Promise<unknown>>();
  /** Runs `fn` alone among the lease and control operations of one run. */
  const withRun = <T>(runId: string, fn: () => Promise<T>): Promise<T> => {
    const previous = runLocks.get(runId) ?? Promise.resolve();
    const next = previous.then(fn, fn);
    const tail = next.catch(() => {});
    runLocks.set(runId, tail);
    void tail.then(() => {
      if (runLocks.get(runId) === tail) runLocks.delete(runId);
    });
    return next;
  };

  /** Loads a driver under a lease this replica holds, and lets go of the lease when it ends. */
  const loadLeased = async (runId: string, token: number): Promise<LiveDriver> => {
    const fence: Fence = { owner: replicaId, token };
    held.set(runId, token);
    let driver: RunDriver;
    try {
      driver = await load(runId, fence);
    } catch (e: unknown) {
      if (held.get(runId) === token) held.delete(runId);
      throw e;
    }
    const entry: LiveDriver = { driver, lastUsed: Date.now(), fence };
    drivers.set(runId, entry);
    void watchLeased(runId, entry);
    return entry;
  };

  const forgetLeased = (runId: string, entry: LiveDriver) => {
    if (drivers.get(runId) !== entry) return false;
    drivers.delete(runId);
    if (held.get(runId) === entry.fence?.token) held.delete(runId);
    return true;
  };

  /** Once the run ends (and is not reopened meanwhile), frees its lease for any replica. */
  const watchLeased = async (runId: string, entry: LiveDriver): Promise<void> => {
    for (;;) {
      const done = entry.driver.done;
      try {
        await done;
      } catch {
        // Its lease or its store is gone: the run is taken over, here again or elsewhere.
        await withRun(runId, async () => forgetLeased(runId, entry));
        return;
      }
      const released = await withRun(runId, async () => {
        if (drivers.get(runId) !== entry) return true;
        if (!FINAL_RUN_STATUSES.has(entry.driver.runStatus)) return false;
        forgetLeased(runId, entry);
        await store.releaseLease(runId, entry.fence!).catch((e: unknown) => {
          log(`could not release the lease of run ${runId}: ${coerceError(e).message}`);
        });
        return true;
      });
      if (released) return;
      if (entry.driver.done === done) await new Promise((r) => setTimeout(r, 50));
    }
  };

  /** The run's driver, taking its lease first when leased; call within `withRun`. */
  const acquire = async (runId: string): Promise<LiveDriver> => {
    if (!leased) return live(runId);
    const entry = drivers.get(runId);
    if (entry) {
      entry.lastUsed = Date.now();
      return entry;
    }
    const token = await store.acquireLease(runId, replicaId, ttl);
    if (token === undefined) {
      const lease = await store.cluster.runLease(runId);
      if (!lease) throw new RunNotFoundError(runId);
      throw new RunDrivenElsewhereError(runId, lease.owner ?? 'another replica');
    }
    return loadLeased(runId, token);
  };

  const startDriver = async (entry: LiveDriver): Promise<RunDriver> => {
    entry.started ??= entry.driver.start();
    await entry.started;
    return entry.driver;
  };

  const drive = (runId: string): Promise<RunDriver> =>
    leased
      ? withRun(runId, async () => startDriver(await acquire(runId)))
      : live(runId).then(startDriver);

  /** Applies a control action to a run this replica drives (or may drive: its lease is free). */
  const controlHere = (runId: string, action: RunAction, options: ControlOptions) => {
    const apply = async (entry: LiveDriver) => {
      const driver = await startDriver(entry);
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
    };
    return leased
      ? withRun(runId, async () => apply(await acquire(runId)))
      : live(runId).then(apply);
  };

  let replica: Replica | undefined;
  let commands: CommandClient | undefined;

  /** Forwards a control action to the replica driving the run, and waits for its outcome. */
  const forward = async (runId: string, owner: string, action: RunAction, o: ControlOptions) => {
    const outcome = await commands!.send({
      runId,
      owner,
      action,
      options: {
        ...(o.operation !== undefined ? { operation: o.operation } : {}),
        ...(o.toCheckpoint !== undefined ? { toCheckpoint: o.toCheckpoint } : {}),
      },
    });
    if (outcome.state === 'done') return outcome.status as RunStatus;
    if (outcome.state === 'failed') throw new ForwardedCommandError(outcome.code, outcome.message);
    throw new ReplicaUnavailableError(runId, owner);
  };

  const control: Orchestrator['control'] = async (runId, action, o = {}) => {
    if (!leased || drivers.has(runId)) return controlHere(runId, action, o);
    for (let attempt = 0; ; attempt++) {
      const lease = await store.cluster.runLease(runId);
      if (!lease) throw new RunNotFoundError(runId);
      if (lease.free || lease.owner === replicaId || lease.owner === null) {
        try {
          return await controlHere(runId, action, o);
        } catch (e: unknown) {
          // Another replica took the lease between the read and the acquire: ask it.
          if (!(e instanceof RunDrivenElsewhereError) || attempt > 2) throw e;
          continue;
        }
      }
      return forward(runId, lease.owner, action, o);
    }
  };

  const stopDriver = (runId: string, reason: string) => {
    const entry = drivers.get(runId);
    if (!entry) return;
    log(`run ${runId}: stopping its driver: ${reason}`);
    entry.driver.abandon(new LeaseLostError(runId, replicaId));
  };

  if (leased) {
    commands = await createCommandClient({ store, replicaId });
    feed = await createEventFeed({
      store,
      replicaId,
      log,
      publish: (event) => {
        for (const listener of remoteListeners) listener(event);
      },
    });
    replica = await startReplica({
      store,
      id: replicaId,
      leaseTtlMs: ttl,
      claim: claiming,
      version: internals.version ?? '0.1.0',
      ...(internals.url ? { url: internals.url } : {}),
      log,
      held: () => held,
      onClaimed: ({ runId, token }) =>
        withRun(runId, async () => {
          const existing = drivers.get(runId);
          // Our own lease ran out and was claimed again (a long pause): start afresh.
          if (existing) {
            existing.driver.abandon(new LeaseLostError(runId, replicaId));
            forgetLeased(runId, existing);
          }
          await startDriver(await loadLeased(runId, token));
        }),
      onOrphan: (runId) =>
        withRun(runId, async () => {
          if (drivers.has(runId) || closing) return;
          log(`run ${runId}: its driver stopped; driving it again`);
          await startDriver(await acquire(runId));
        }),
      onLost: stopDriver,
      onCommand: async (command): Promise<CommandOutcome> => {
        try {
          const status = await controlHere(command.runId, command.action, command.options);
          return { state: 'done', status };
        } catch (e: unknown) {
          const err = coerceError(e) as Error & { code?: unknown };
          return {
            state: 'failed',
            code: typeof err.code === 'string' ? err.code : 'ORC1008',
            message: err.message,
          };
        }
      },
    });
  }

  // Let go of drivers whose run ended and that nobody used lately; they reload on demand.
  const sweeper = setInterval(
    () => {
      const cutoff = Date.now() - idleMs;
      for (const [runId, entry] of drivers) {
        if (entry.fence) continue;
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
        // Leased to the submitter, which drives it next: no other replica claims it first.
        ...(leased ? { lease: { owner: replicaId, ttlMs: ttl } } : {}),
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
    cluster: {
      replicaId,
      leased,
      claiming,
      drivenRuns: () => [...drivers.keys()].filter((id) => drivers.get(id)?.fence),
      replicas: () => store.cluster.listReplicas(ttl),
    },
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
    driver: async (runId) =>
      leased
        ? withRun(runId, async () => (await acquire(runId)).driver)
        : (await live(runId)).driver,
    control,
    async resumeIncomplete() {
      if (leased) return claiming && replica ? replica.claimNow() : [];
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
    subscribe(listener, o = {}) {
      const set = o.remote ? remoteListeners : listeners;
      set.add(listener);
      return () => set.delete(listener);
    },
    async close() {
      closing = true;
      clearInterval(sweeper);
      await Promise.allSettled([...loading.values()]);
      while (inFlight.size > 0) await Promise.allSettled([...inFlight]);
      // Drivers stop deciding; tasks on agents go on, for whoever drives their runs next.
      for (const [runId, entry] of drivers) {
        if (entry.fence) entry.driver.abandon(new DriverStoppedError(runId, 'shutting down'));
      }
      drivers.clear();
      await queue?.close();
      await agents?.close();
      await consumer?.close();
      await feed?.close();
      await commands?.close();
      // Last: the leases are freed only once nothing here can write under them.
      await replica?.stop();
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
