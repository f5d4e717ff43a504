/**
 * One orchestrator replica among several sharing a PostgreSQL: its heartbeat, the leases of the
 * runs it drives, claiming runs that have no driver, and the commands other replicas forward to it.
 *
 * Leases: a run is driven by the replica holding its lease; every commit of the run is fenced by
 * the lease's token (see `store/sql-store.ts`), so a replica that lost a lease cannot write. The
 * heartbeat extends every lease of the replica in one statement every third of the lease timeout.
 * When a heartbeat has not succeeded for most of the timeout, the replica stops its drivers by
 * itself before any other may claim their runs, so a task never runs under two drivers.
 *
 * Claiming: every `claimIntervalMs`, and at once when notified on {@link RUNS_CHANNEL}, a claiming
 * replica (`muster server`) leases unfinished runs with no live lease, up to its fair share (the
 * unfinished runs divided by the live replicas), so work spreads over replicas and a dead
 * replica's runs are taken over within the lease timeout.
 *
 * @module
 */
import { hostname } from 'node:os';
import { coerceError } from '../errors.ts';
import type { CommandOutcome, HeldRun, RunCommand, Store } from '../store/store.ts';
import { COMMANDS_CHANNEL, COMMAND_DONE_CHANNEL, RUNS_CHANNEL } from './channels.ts';

/** Options of {@link startReplica}. */
export interface ReplicaOptions {
  readonly store: Store;
  readonly id: string;
  /** Lease timeout of runs. */
  readonly leaseTtlMs: number;
  /** Take over runs that have no driver (`muster server`); otherwise only renew this one's. */
  readonly claim: boolean;
  /** Where this replica's API answers, for `GET /cluster`. */
  readonly url?: string;
  readonly version: string;
  /** The runs this replica drives now, by id, with the lease token of each. */
  held(): ReadonlyMap<string, number>;
  /** A run was leased to this replica: drive it. */
  onClaimed(run: HeldRun): Promise<void>;
  /** The store holds this replica's lease on a run it does not drive (its driver died): drive it. */
  onOrphan(runId: string): Promise<void>;
  /** A run's lease was lost (another replica holds it now, or ours ran out): stop its driver. */
  onLost(runId: string, reason: string): void;
  /** Carries out a command for a run this replica drives. */
  onCommand(command: RunCommand): Promise<CommandOutcome>;
  /** @default nothing */
  readonly log?: (line: string) => void;
}

/** A running replica. */
export interface Replica {
  readonly id: string;
  /** Runs a claim round now; returns the runs claimed. */
  claimNow(): Promise<string[]>;
  /** Wakes the claiming replicas (a run was submitted or reopened). */
  announceRun(): void;
  /** Tells the replica named to look at its commands. */
  announceCommand(owner: string): void;
  /** Whether the leases are trusted now (the last heartbeat is recent). */
  readonly healthy: boolean;
  /** Stops: frees this replica's leases for the others at once. */
  stop(): Promise<void>;
}

/** Starts the replica's heartbeat, claims and command handling. */
export async function startReplica(options: ReplicaOptions): Promise<Replica> {
  const { store, id, leaseTtlMs } = options;
  const log = options.log ?? (() => {});
  const beatMs = Math.max(50, Math.floor(leaseTtlMs / 3));
  const claimMs = Math.max(50, Math.floor(leaseTtlMs / 6));
  /** Past this long without a heartbeat the leases may have run out: stop driving. */
  const selfFenceMs = Math.floor(leaseTtlMs * 0.8);
  let stopped = false;
  let lastBeat = Date.now();
  let fenced = false;

  if (options.claim) {
    await store.cluster.registerReplica({
      id,
      host: hostname(),
      pid: process.pid,
      version: options.version,
      ...(options.url ? { url: options.url } : {}),
    });
  }

  // ── heartbeat ──────────────────────────────────────────────────────────────
  let beating = false;
  const beat = async () => {
    if (beating || stopped) return;
    beating = true;
    const before = new Map(options.held());
    const started = Date.now();
    try {
      // A heartbeat stuck on a dead connection must not hold the next ones back.
      const held = await withTimeout(store.cluster.heartbeat(id, leaseTtlMs), beatMs * 2);
      lastBeat = started;
      if (fenced) {
        fenced = false;
        log('the store answers again; taking runs back');
      }
      const inStore = new Map(held.map((h) => [h.runId, h.token]));
      const now = options.held();
      for (const [runId, token] of before) {
        // Judged only if it was driven before the heartbeat and still is, with the same token.
        if (now.get(runId) !== token) continue;
        if (inStore.get(runId) !== token) {
          options.onLost(
            runId,
            inStore.has(runId) ? 'its lease was taken again' : 'another replica holds its lease',
          );
        }
      }
      for (const [runId, token] of inStore) {
        if (!now.has(runId) && !before.has(runId) && token !== undefined) {
          void options
            .onOrphan(runId)
            .catch((e: unknown) =>
              log(`could not drive run ${runId} again: ${coerceError(e).message}`),
            );
        }
      }
    } catch (e: unknown) {
      log(`heartbeat failed: ${coerceError(e).message}`);
    } finally {
      beating = false;
    }
  };
  const watchdog = () => {
    if (stopped || fenced || Date.now() - lastBeat < selfFenceMs) return;
    fenced = true;
    const runs = [...options.held().keys()];
    log(
      `no heartbeat for ${Date.now() - lastBeat}ms: stopping ${runs.length} run driver(s) before ` +
        'their leases can run out; they resume once the store answers',
    );
    for (const runId of runs) options.onLost(runId, 'the store did not answer for too long');
  };
  const beatTimer = setInterval(() => {
    watchdog();
    void beat();
  }, beatMs);
  beatTimer.unref();

  // ── claiming ───────────────────────────────────────────────────────────────
  let claiming: Promise<string[]> | undefined;
  let claimAgain = false;
  const claimRound = async (): Promise<string[]> => {
    if (!options.claim || stopped || fenced) return [];
    const work = await store.cluster.workload(id, leaseTtlMs);
    const share = Math.ceil(work.runs / work.replicas);
    const limit = Math.min(64, share - work.mine);
    if (limit <= 0) return [];
    const claimed = await store.cluster.claimRuns(id, leaseTtlMs, limit);
    for (const run of claimed) {
      await options.onClaimed(run).catch((e: unknown) => {
        log(`could not drive claimed run ${run.runId}: ${coerceError(e).message}`);
      });
    }
    if (claimed.length > 0) {
      log(`took over ${claimed.length} run(s): ${claimed.map((c) => c.runId).join(', ')}`);
    }
    return claimed.map((c) => c.runId);
  };
  const claimNow = (): Promise<string[]> => {
    if (claiming) {
      claimAgain = true;
      return claiming;
    }
    claiming = Promise.resolve().then(async () => {
      const ids: string[] = [];
      try {
        do {
          claimAgain = false;
          ids.push(...(await claimRound()));
        } while (claimAgain && !stopped);
      } catch (e: unknown) {
        log(`could not claim runs: ${coerceError(e).message}`);
      } finally {
        claiming = undefined;
      }
      return ids;
    });
    return claiming;
  };

  // ── commands ───────────────────────────────────────────────────────────────
  let taking = false;
  let takeAgain = false;
  const takeCommands = async () => {
    if (taking) {
      takeAgain = true;
      return;
    }
    taking = true;
    try {
      do {
        takeAgain = false;
        if (stopped || fenced) break;
        const commands = await store.cluster.takeCommands(id);
        for (const command of commands) {
          const outcome = await options.onCommand(command).catch((e: unknown): CommandOutcome => ({
            state: 'failed',
            code: 'ORC1008',
            message: coerceError(e).message,
          }));
          await store.cluster.finishCommand(command.id, outcome);
          await store.cluster.notify(COMMAND_DONE_CHANNEL, String(command.id));
        }
      } while (takeAgain);
    } catch (e: unknown) {
      log(`could not carry out commands: ${coerceError(e).message}`);
    } finally {
      taking = false;
    }
  };

  const unlisten: Array<() => Promise<void>> = [];
  unlisten.push(
    await store.listen(
      COMMANDS_CHANNEL,
      (owner) => {
        if (owner === id) void takeCommands();
      },
      () => void takeCommands(),
    ),
  );
  if (options.claim) {
    unlisten.push(
      await store.listen(
        RUNS_CHANNEL,
        () => void claimNow(),
        () => void claimNow(),
      ),
    );
  }
  const claimTimer = setInterval(() => {
    void claimNow();
    void takeCommands();
  }, claimMs);
  claimTimer.unref();

  return {
    id,
    claimNow,
    announceRun() {
      store.cluster.notify(RUNS_CHANNEL, id).catch(() => {});
    },
    announceCommand(owner) {
      store.cluster.notify(COMMANDS_CHANNEL, owner).catch(() => {});
    },
    get healthy() {
      return !fenced && Date.now() - lastBeat < selfFenceMs;
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      clearInterval(beatTimer);
      clearInterval(claimTimer);
      await claiming?.catch(() => {});
      for (const u of unlisten) await u().catch(() => {});
      await store.cluster.stopReplica(id).catch((e: unknown) => {
        log(`could not free this replica's leases: ${coerceError(e).message}`);
      });
      // The others take the freed runs at once rather than at their next poll.
      await store.cluster.notify(RUNS_CHANNEL, id).catch(() => {});
    },
  };
}

/** Rejects if `promise` takes longer than `ms`. */
function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no answer within ${ms}ms`)), ms);
    promise.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}
