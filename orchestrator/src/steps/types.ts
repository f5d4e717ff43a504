/**
 * The contract between the engine (or a remote agent) and the code that runs one step.
 *
 * Terminology:
 * - A **step** is what the workflow says (`{ name, type, params }`); a **handler** is the code that
 *   runs steps of one `type` (`script`, `http`, … or a custom handler's name).
 * - A handler's **execute** does the work and may return **outputs** (strings the engine stores and
 *   later steps can use) and **rollback data** (what its own `rollback` needs to undo the work).
 * - A **StepFailure** is a failed step as data: a `type` (`exit-code`, `timeout`, …) that retry
 *   policies name in `non_retryable`, and a `nonRetryable` flag the handler sets when retrying
 *   cannot help.
 *
 * @module
 */
import type * as v from 'valibot';

/** The server a step runs on. */
export interface StepServer {
  readonly name: string;
  readonly address?: string;
  readonly labels: Readonly<Record<string, string>>;
}

/** Where a log line came from. */
export type StepLogStream = 'stdout' | 'stderr' | 'info';

/** What a handler gets besides its params: where it runs, when to stop, where to log. */
export interface StepContext {
  readonly runId: string;
  readonly taskId: string;
  /** 1 for the first attempt. */
  readonly attempt: number;
  readonly server?: StepServer;
  /** Directory relative paths resolve against (a local server's sandbox). Exists. */
  readonly workdir: string;
  /** Aborted on timeout, cancel or terminate: handlers stop promptly and kill what they started. */
  readonly signal: AbortSignal;
  /** Environment added to processes: MUSTER_RUN_ID, MUSTER_TASK_ID, MUSTER_ATTEMPT, MUSTER_SERVER … */
  readonly env: Readonly<Record<string, string>>;
  /** Output lines for the event log (one call per line, without the newline). */
  log(stream: StepLogStream, line: string): void;
}

/** What a successful step leaves behind. */
export interface StepResult {
  /** Named string outputs, e.g. `{ status: '200' }`. */
  readonly outputs?: Readonly<Record<string, string>>;
  /** JSON-serialisable data the handler's own `rollback` receives; the engine stores it. */
  readonly rollbackData?: unknown;
}

/**
 * The code behind one step type.
 *
 * @example
 * ```ts
 * const greet: StepHandler<{ name: string }> = {
 *   type: 'greet',
 *   params: v.strictObject({ name: v.string() }),
 *   async execute({ name }, ctx) {
 *     ctx.log('info', `hello ${name}`);
 *     return { outputs: { greeted: name } };
 *   },
 * };
 * ```
 */
export interface StepHandler<TParams = unknown> {
  /** `echo`, … or the custom handler's name (what `handler:` names in a workflow). */
  readonly type: string;
  /** Validates and defaults the step's `params` before `execute` sees them. */
  readonly params: v.GenericSchema<unknown, TParams>;
  /** Does the work; throws a {@link StepFailure} (or anything, which becomes type `error`). */
  execute(params: TParams, ctx: StepContext): Promise<StepResult | void>;
  /** Undoes a successful `execute`, given the `rollbackData` it returned. */
  rollback?(params: TParams, rollbackData: unknown, ctx: StepContext): Promise<void>;
}

/** Handlers by type. */
export interface StepRegistry {
  /** Adds a handler; throws {@link StepRegistryError} for a malformed one or a taken type. */
  // The registry stores handlers of every params type; `any` is what lets a
  // `StepHandler<{ message: string }>` in without a cast.
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  register(handler: StepHandler<any>): void;
  get(type: string): StepHandler<unknown> | undefined;
  /** Registered types, sorted. */
  types(): string[];
}

/** How a {@link StepFailure} is built. */
export interface StepFailureOptions {
  /** Retrying cannot help (bad params, a 404, a missing command). */
  readonly nonRetryable?: boolean;
  /** JSON-serialisable facts: exit code, status, last stderr lines, … */
  readonly details?: Record<string, unknown>;
  readonly cause?: unknown;
}

/** A {@link StepFailure} as plain JSON, as the engine stores it and agents send it. */
export interface StepFailureData {
  readonly type: string;
  readonly message: string;
  readonly nonRetryable: boolean;
  readonly details?: Record<string, unknown>;
}

/** A failed step, as data the engine stores on the attempt and reads to decide retries. */
export class StepFailure extends Error {
  override readonly name = 'StepFailure';
  /** A stable kind: `exit-code`, `timeout`, `http-status`, `invalid-params`, … */
  readonly type: string;
  readonly nonRetryable: boolean;
  readonly details?: Record<string, unknown>;

  constructor(type: string, message: string, options: StepFailureOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.type = type;
    this.nonRetryable = options.nonRetryable ?? false;
    if (options.details !== undefined) this.details = options.details;
  }

  /** The failure as plain JSON. */
  toJSON(): StepFailureData {
    return {
      type: this.type,
      message: this.message,
      nonRetryable: this.nonRetryable,
      ...(this.details === undefined ? {} : { details: this.details }),
    };
  }

  /** Rebuilds a failure from {@link StepFailure.toJSON}'s output (e.g. one an agent sent). */
  static fromJSON(data: StepFailureData): StepFailure {
    return new StepFailure(data.type, data.message, {
      nonRetryable: data.nonRetryable,
      ...(data.details === undefined ? {} : { details: data.details }),
    });
  }
}

/**
 * The failure an aborted signal stands for: its reason when that is a {@link StepFailure} (the
 * engine's or a step timeout's), otherwise a retryable `cancelled`; the engine knows whether the
 * run was cancelled or the worker is shutting down, and decides.
 */
export function abortFailure(signal: AbortSignal): StepFailure {
  const reason: unknown = signal.reason;
  if (reason instanceof StepFailure) return reason;
  // `abort()` without a reason gives a generic AbortError, which says nothing worth repeating.
  const generic = reason === undefined || (reason instanceof Error && reason.name === 'AbortError');
  const why = generic ? '' : reason instanceof Error ? reason.message : String(reason);
  return new StepFailure('cancelled', `the step was cancelled${why ? ` (${why})` : ''}`, {
    ...(why ? { details: { reason: why } } : {}),
  });
}
