/**
 * Forwarding a control action (pause, retry, …) to the replica driving the run: the command is a
 * row in `run_commands`, the driving replica is woken on {@link COMMANDS_CHANNEL}, carries it out
 * and writes the outcome, and the asking replica is woken on {@link COMMAND_DONE_CHANNEL} (and
 * polls, in case the notification is lost).
 *
 * A command nobody took within the timeout is expired, never carried out later: an operator who
 * was told "try again" must not see it happen by surprise a minute after.
 *
 * @module
 */
import type { RunAction } from '../engine/types.ts';
import { coerceError } from '../errors.ts';
import type { CommandOutcome, Store } from '../store/store.ts';
import { COMMAND_DONE_CHANNEL, COMMANDS_CHANNEL } from './channels.ts';

/** Options of {@link createCommandClient}. */
export interface CommandClientOptions {
  readonly store: Store;
  readonly replicaId: string;
  /** How long the driving replica has to take a command. @default 10_000 */
  readonly timeoutMs?: number;
  /** How often outcomes are polled for. @default 250 */
  readonly pollMs?: number;
}

/** A command to forward. */
export interface ForwardedCommand {
  readonly runId: string;
  /** The replica driving the run. */
  readonly owner: string;
  readonly action: RunAction;
  readonly options: { readonly operation?: string; readonly toCheckpoint?: number };
}

/** What came of a forwarded command. */
export type ForwardOutcome = CommandOutcome | { readonly state: 'unanswered' };

/** Sends commands to other replicas and waits for their outcome. */
export interface CommandClient {
  send(command: ForwardedCommand): Promise<ForwardOutcome>;
  close(): Promise<void>;
}

/** Starts listening for outcomes. */
export async function createCommandClient(options: CommandClientOptions): Promise<CommandClient> {
  const { store } = options;
  const timeoutMs = options.timeoutMs ?? 10_000;
  const pollMs = options.pollMs ?? 250;
  const waiters = new Map<number, () => void>();
  const unlisten = await store.listen(
    COMMAND_DONE_CHANNEL,
    (payload) => waiters.get(Number(payload))?.(),
    () => {
      for (const wake of waiters.values()) wake();
    },
  );

  const send = async (command: ForwardedCommand): Promise<ForwardOutcome> => {
    const id = await store.cluster.addCommand({
      runId: command.runId,
      action: command.action,
      options: command.options,
      requestedBy: options.replicaId,
    });
    await store.cluster.notify(COMMANDS_CHANNEL, command.owner).catch(() => {});
    const deadline = Date.now() + timeoutMs;
    try {
      for (;;) {
        const state = await store.cluster.commandState(id);
        if (state?.state === 'done' || state?.state === 'failed') return state;
        if (state === undefined || state.state === 'expired') return { state: 'unanswered' };
        if (Date.now() >= deadline) {
          // Taken already: it is being carried out, so its outcome is worth a little more wait.
          if (state.state === 'pending' && (await store.cluster.expireCommand(id))) {
            return { state: 'unanswered' };
          }
          if (Date.now() >= deadline + timeoutMs) return { state: 'unanswered' };
        }
        await new Promise<void>((resolve) => {
          const timer = setTimeout(done, pollMs);
          function done() {
            clearTimeout(timer);
            waiters.delete(id);
            resolve();
          }
          waiters.set(id, done);
        });
      }
    } catch (e: unknown) {
      await store.cluster.expireCommand(id).catch(() => false);
      throw coerceError(e);
    }
  };

  return {
    send,
    async close() {
      for (const wake of waiters.values()) wake();
      await unlisten().catch(() => {});
    },
  };
}
