/**
 * The agent protocol: every message between an agent and the orchestrator's hub, both ways, as
 * valibot schemas. Messages are JSON text frames on a WebSocket at `/agents`, each with a `type`
 * of the form `noun:verb`.
 *
 * A session: the agent sends `agent:hello` (its server, id, version, capabilities, and the leases
 * it still holds after a reconnect); the hub answers `hub:welcome` or closes with a code from
 * {@link AGENT_CLOSE}. Then `agent:heartbeat` / `hub:heartbeat` every `heartbeatMs`; the hub sends
 * `task:assign` with a fencing token; the agent streams `task:output` and `task:step`, then
 * `task:report`, each numbered by `seq` within its lease; the hub acknowledges with `task:ack`.
 * Anything unacknowledged is sent again after a reconnect and the hub drops what it has seen, so
 * nothing is lost or counted twice. `task:cancel` aborts a task (its report still comes);
 * `task:revoke` tells the agent its lease is gone (stop, report nothing). `agent:drain` (or a
 * SIGTERM) makes the agent finish what it runs and take nothing new; `agent:bye` ends cleanly.
 *
 * @module
 */
import * as v from 'valibot';
import { HealthCheckSchema, NAME_PATTERN, StepSchema } from '../../../schemas/src/workflow.ts';
import type { TaskAssignment, TaskReport } from '../engine/dispatch.ts';

/** The protocol version an agent announces in its hello. */
export const AGENT_PROTOCOL_VERSION = 1;

/** The path agents connect to. */
export const AGENTS_PATH = '/agents';

/**
 * WebSocket close codes the hub uses (RFC 6455 §7.4.2 leaves 4000–4999 to applications). An agent
 * gives up on `unauthenticated`, `forbidden`, `superseded` and `protocol`, and reconnects otherwise.
 */
export const AGENT_CLOSE = {
  /** The agent said goodbye after a drain. */
  normal: 1000,
  /** The orchestrator is shutting down. */
  goingAway: 1001,
  /** A malformed or unexpected message, or an unsupported protocol version. */
  protocol: 4400,
  /** No token, or an unknown one. */
  unauthenticated: 4401,
  /** The token may not serve this server. */
  forbidden: 4403,
  /** The hub heard nothing for too long and failed the agent's tasks over. */
  stale: 4408,
  /** Another agent serves this server: a live one, or a newer one (this one is fenced off). */
  superseded: 4409,
} as const;

/** Close codes after which an agent must not reconnect. */
export const FATAL_CLOSE_CODES: ReadonlySet<number> = new Set([
  AGENT_CLOSE.protocol,
  AGENT_CLOSE.unauthenticated,
  AGENT_CLOSE.forbidden,
  AGENT_CLOSE.superseded,
]);

const Text = v.pipe(v.string(), v.minLength(1), v.maxLength(512));
const Token = v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(Number.MAX_SAFE_INTEGER));
const Seq = v.pipe(v.number(), v.integer(), v.minValue(1));
const Count = v.pipe(v.number(), v.integer(), v.minValue(0));
const ServerName = v.pipe(
  v.string(),
  v.regex(NAME_PATTERN, 'a server name is letters, digits, "_" or "-"'),
);
const Labels = v.record(v.string(), v.string());

/** A lease, named by its task and fencing token. */
export const LeaseRefSchema = v.strictObject({
  runId: Text,
  taskId: Text,
  token: Token,
});
export type LeaseRef = v.InferOutput<typeof LeaseRefSchema>;

/** A finished step's record. Loose: fields the engine adds later pass through. */
export const StepRecordSchema = v.looseObject({
  index: v.pipe(v.number(), v.integer(), v.minValue(-1)),
  name: v.string(),
  status: v.picklist(['succeeded', 'failed', 'ignored']),
  outputs: v.exactOptional(Labels),
  rollbackData: v.exactOptional(v.unknown()),
});

/** Why an attempt failed. Loose, as step records are. */
export const TaskFailureSchema = v.looseObject({
  type: v.pipe(v.string(), v.minLength(1)),
  message: v.string(),
  nonRetryable: v.exactOptional(v.boolean()),
  step: v.exactOptional(v.string()),
  details: v.exactOptional(v.record(v.string(), v.unknown())),
});

/** What came of an assignment. */
export const TaskReportSchema = v.strictObject({
  status: v.picklist(['succeeded', 'failed']),
  result: v.strictObject({ steps: v.array(StepRecordSchema) }),
  failure: v.exactOptional(TaskFailureSchema),
});

const PlannedTaskSchema = v.looseObject({
  id: Text,
  operation: v.string(),
  item: v.string(),
  server: v.exactOptional(v.string()),
  queue: v.pipe(v.string(), v.regex(/^server:/, 'agents only take server queues')),
  action: v.exactOptional(v.picklist(['create', 'delete', 'status'])),
  provider: v.exactOptional(v.string()),
  steps: v.array(StepSchema),
  compensation: v.array(StepSchema),
  health_check: v.exactOptional(HealthCheckSchema),
});

/**
 * One attempt at a task, as the agent receives it. Loose objects: fields added to assignments
 * later pass through to the task runner unchanged.
 */
export const AssignmentSchema = v.looseObject({
  runId: Text,
  task: PlannedTaskSchema,
  attempt: v.pipe(v.number(), v.integer(), v.minValue(1)),
  mode: v.picklist(['execute', 'compensate']),
  previous: v.exactOptional(v.strictObject({ steps: v.array(StepRecordSchema) })),
  timeoutMs: v.pipe(v.number(), v.minValue(1)),
  server: v.exactOptional(
    v.looseObject({
      name: v.string(),
      provider: v.string(),
      address: v.exactOptional(v.string()),
      labels: Labels,
    }),
  ),
});

// ── agent → hub ─────────────────────────────────────────────────────────────

/** What an agent can do, sent in its hello. */
export const CapabilitiesSchema = v.strictObject({
  /** Step types it has handlers for. */
  steps: v.array(v.string()),
  /** Tasks it runs at once. */
  slots: v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(256)),
  platform: v.string(),
  arch: v.string(),
  hostname: v.string(),
});
export type Capabilities = v.InferOutput<typeof CapabilitiesSchema>;

/** A lease the agent still holds when it (re)connects. */
export const HeldLeaseSchema = v.strictObject({
  ...LeaseRefSchema.entries,
  attempt: v.pipe(v.number(), v.integer(), v.minValue(1)),
  /** `running`, or `done` with its report not yet acknowledged. */
  state: v.picklist(['running', 'done']),
});
export type HeldLease = v.InferOutput<typeof HeldLeaseSchema>;

/** The first message of every connection. */
export const AgentHelloSchema = v.strictObject({
  type: v.literal('agent:hello'),
  protocol: v.pipe(v.number(), v.integer()),
  agentId: v.pipe(v.string(), v.minLength(1), v.maxLength(128)),
  server: ServerName,
  version: v.pipe(v.string(), v.maxLength(64)),
  capabilities: CapabilitiesSchema,
  leases: v.array(HeldLeaseSchema),
  draining: v.boolean(),
});
export type AgentHello = v.InferOutput<typeof AgentHelloSchema>;

/** Sent every `heartbeatMs`. */
export const AgentHeartbeatSchema = v.strictObject({
  type: v.literal('agent:heartbeat'),
  /** Tasks running now. */
  running: Count,
});

/** A line of a running task's output. */
export const TaskOutputSchema = v.strictObject({
  type: v.literal('task:output'),
  lease: LeaseRefSchema,
  seq: Seq,
  stream: v.picklist(['stdout', 'stderr', 'info']),
  line: v.string(),
  step: v.exactOptional(v.string()),
});

/** A step finished: its record is kept so a rollback can undo it. */
export const TaskStepSchema = v.strictObject({
  type: v.literal('task:step'),
  lease: LeaseRefSchema,
  seq: Seq,
  record: StepRecordSchema,
});

/** The outcome of an assignment. */
export const TaskReportMessageSchema = v.strictObject({
  type: v.literal('task:report'),
  lease: LeaseRefSchema,
  seq: Seq,
  report: TaskReportSchema,
});

/** The agent will not run an assignment (it is draining); the hub queues it again. */
export const TaskRefusedSchema = v.strictObject({
  type: v.literal('task:refused'),
  lease: LeaseRefSchema,
  reason: v.string(),
});

/** The agent takes no new task from now on. */
export const AgentDrainingSchema = v.strictObject({ type: v.literal('agent:draining') });

/** The agent has nothing left to report and is leaving. */
export const AgentByeSchema = v.strictObject({ type: v.literal('agent:bye') });

/** Any message from an agent. */
export const AgentMessageSchema = v.variant('type', [
  AgentHelloSchema,
  AgentHeartbeatSchema,
  TaskOutputSchema,
  TaskStepSchema,
  TaskReportMessageSchema,
  TaskRefusedSchema,
  AgentDrainingSchema,
  AgentByeSchema,
]);
export type AgentMessage = v.InferOutput<typeof AgentMessageSchema>;

// ── hub → agent ─────────────────────────────────────────────────────────────

/** The answer to a hello. */
export const HubWelcomeSchema = v.strictObject({
  type: v.literal('hub:welcome'),
  agentId: v.string(),
  server: v.string(),
  epoch: Count,
  /** Send a heartbeat this often. */
  heartbeatMs: v.pipe(v.number(), v.integer(), v.minValue(10)),
  /**
   * The hub fails the agent's tasks over after this long without a word from it; the agent stops
   * its running tasks a little before, so no task runs in two places.
   */
  leaseMs: v.pipe(v.number(), v.integer(), v.minValue(10)),
  /** Leases named in the hello that are no longer the agent's: drop them. */
  revoked: v.array(LeaseRefSchema),
  /** Leases named in the hello whose report was accepted already (its ack was lost): forget them. */
  done: v.array(LeaseRefSchema),
});

/** The answer to a heartbeat. */
export const HubHeartbeatSchema = v.strictObject({ type: v.literal('hub:heartbeat') });

/** An assignment under a fresh lease. */
export const TaskAssignSchema = v.strictObject({
  type: v.literal('task:assign'),
  lease: LeaseRefSchema,
  assignment: AssignmentSchema,
});

/** Abort a running task (terminate, timeout); its report is still expected. */
export const TaskCancelSchema = v.strictObject({
  type: v.literal('task:cancel'),
  lease: LeaseRefSchema,
  reason: v.string(),
});

/** The lease is no longer the agent's: stop the task and report nothing. */
export const TaskRevokeSchema = v.strictObject({
  type: v.literal('task:revoke'),
  lease: LeaseRefSchema,
  reason: v.string(),
});

/** Everything of the lease up to `seq` arrived. */
export const TaskAckSchema = v.strictObject({
  type: v.literal('task:ack'),
  lease: LeaseRefSchema,
  seq: Seq,
});

/** Finish what runs, take nothing new, then leave. */
export const AgentDrainSchema = v.strictObject({ type: v.literal('agent:drain') });

/**
 * Why the hub is about to close the connection, in full (a close reason holds 123 bytes only).
 * `code` is the close code that follows.
 */
export const HubRejectSchema = v.strictObject({
  type: v.literal('hub:reject'),
  code: v.pipe(v.number(), v.integer()),
  message: v.string(),
});

/** Any message from the hub. */
export const HubMessageSchema = v.variant('type', [
  HubWelcomeSchema,
  HubHeartbeatSchema,
  TaskAssignSchema,
  TaskCancelSchema,
  TaskRevokeSchema,
  TaskAckSchema,
  AgentDrainSchema,
  HubRejectSchema,
]);
export type HubMessage = v.InferOutput<typeof HubMessageSchema>;

/**
 * Parses a text frame into a message of the given schema.
 *
 * @returns the message, or a one-line description of what is wrong with it
 */
export function parseMessage<TSchema extends v.GenericSchema>(
  schema: TSchema,
  data: string,
): { ok: true; message: v.InferOutput<TSchema> } | { ok: false; error: string } {
  let json: unknown;
  try {
    json = JSON.parse(data);
  } catch {
    return { ok: false, error: 'the frame is not JSON' };
  }
  const parsed = v.safeParse(schema, json);
  if (parsed.success) return { ok: true, message: parsed.output };
  const issue = parsed.issues[0];
  const path = issue.path?.map((p) => String(p.key)).join('.') ?? '';
  const type = (json as { type?: unknown } | null)?.type;
  return {
    ok: false,
    error: `${typeof type === 'string' ? `${type}: ` : ''}${path ? `${path}: ` : ''}${issue.message}`,
  };
}

/** The assignment as the task runner takes it (the schema checked its shape). */
export function toTaskAssignment(a: v.InferOutput<typeof AssignmentSchema>): TaskAssignment {
  return a as unknown as TaskAssignment;
}

/** A report as the engine takes it. */
export function toTaskReport(r: v.InferOutput<typeof TaskReportSchema>): TaskReport {
  return r;
}

/** The key of a lease in maps. */
export function leaseKey(lease: LeaseRef): string {
  return `${lease.runId}\n${lease.taskId}\n${lease.token}`;
}
