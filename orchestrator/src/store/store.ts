/**
 * The run store: what the engine and the API need from persistence, independent of the driver.
 *
 * Every state change of a run goes through {@link Store.commit}, one transaction per batch, so the
 * state a crash leaves behind is always a state the engine wrote on purpose.
 *
 * @module
 */
import type { Plan } from '../plan/types.ts';
import type {
  AttemptWrite,
  Batch,
  Fence,
  Run,
  RunEvent,
  RunSnapshot,
  RunOverview,
  RunStatus,
} from '../engine/types.ts';
import type { AgentStore } from './agent-store.ts';
import type { ClusterStore } from './cluster-store.ts';

export type {
  AttemptWrite,
  Batch,
  Fence,
  RunOverview,
  RunSnapshot,
  RunWrite,
  TaskWrite,
} from '../engine/types.ts';
export type * from './agent-store.ts';
export type * from './cluster-store.ts';

/** A run to create, with its plan. */
export interface NewRun {
  readonly id: string;
  readonly name: string;
  readonly workflow: unknown;
  readonly plan: Plan;
  readonly labels?: Readonly<Record<string, string>>;
  readonly idempotencyKey?: string;
  /** Created leased to this owner for `ttlMs`, so no other replica claims it first. */
  readonly lease?: { readonly owner: string; readonly ttlMs: number };
}

/** Filters for {@link Store.listRuns}. */
export interface RunFilter {
  readonly status?: RunStatus;
  readonly name?: string;
  /** `key=value`: runs carrying that label. */
  readonly label?: { readonly key: string; readonly value: string };
  readonly limit?: number;
  /** From a previous page's `nextCursor`. */
  readonly cursor?: string;
}

/** A run without its workflow and plan: what a listing needs. */
export type RunInfo = Omit<Run, 'plan' | 'workflow'>;

/** A page of runs, newest first. */
export interface RunPage {
  readonly items: readonly RunInfo[];
  readonly nextCursor: string | null;
}

/** An attempt as stored. */
export interface Attempt extends AttemptWrite {
  readonly runId: string;
}

/** The run store. */
export interface Store {
  /** Which driver backs it, for messages and metrics. */
  readonly driver: 'pglite' | 'postgres';
  /** Applies pending migrations; safe when several processes start at once. */
  migrate(): Promise<void>;
  /** Checks that the database answers. */
  ping(): Promise<void>;
  close(): Promise<void>;

  /** Creates a run, or returns the existing one with the same idempotency key (`created: false`). */
  createRun(run: NewRun): Promise<{ run: Run; created: boolean }>;
  getRun(id: string): Promise<Run | undefined>;
  /** A run's status alone: for callers that ask often, without reading its workflow and plan. */
  runStatus(id: string): Promise<RunStatus | undefined>;
  listRuns(filter?: RunFilter): Promise<RunPage>;
  loadRun(id: string): Promise<RunSnapshot | undefined>;
  /** A run's status picture, counting its tasks in the database instead of reading them. */
  runOverview(id: string): Promise<RunOverview | undefined>;
  /**
   * Writes a batch atomically; with a fence, fails with `LeaseLostError` if it is stale.
   *
   * @returns the global id of each event written, by its sequence number
   */
  commit(runId: string, batch: Batch, fence?: Fence): Promise<ReadonlyMap<number, number>>;

  /** Events of one run after `afterSeq`, in order. */
  events(runId: string, afterSeq?: number, limit?: number): Promise<RunEvent[]>;
  /** Events of every run after the global id `afterId`, in order. */
  allEvents(afterId?: number, limit?: number): Promise<RunEvent[]>;
  attempts(runId: string, taskId?: string): Promise<Attempt[]>;

  /**
   * Takes the run's lease for `ttlMs` if it is free, expired or already ours.
   *
   * @returns the fencing token, or `undefined` when another owner holds a live lease
   */
  acquireLease(runId: string, owner: string, ttlMs: number): Promise<number | undefined>;
  /** Extends a lease we hold; false when it was lost. */
  renewLease(runId: string, fence: Fence, ttlMs: number): Promise<boolean>;
  releaseLease(runId: string, fence: Fence): Promise<void>;

  /** Agents and the leases they hold on tasks (see `agents/`). */
  readonly agents: AgentStore;
  /** Replicas, run leases, forwarded commands and the shared agent queue (see `cluster/`). */
  readonly cluster: ClusterStore;

  /**
   * Listens on a notification channel (`LISTEN`); `onListen` runs once listening and again after
   * every reconnection, when notifications sent meanwhile were lost and the caller catches up.
   *
   * @returns a function that stops listening
   */
  listen(
    channel: string,
    onMessage: (payload: string) => void,
    onListen?: () => void,
  ): Promise<() => Promise<void>>;
}
