/**
 * The workflow language as valibot schemas: what the rest of Muster trusts.
 *
 * It mirrors the CUE package in `schemas/*.cue` field for field, default for default; the
 * conformance test (`schemas/test/conformance.test.ts`) feeds the same documents to both and requires
 * the same verdict. Objects are strict, as CUE definitions are closed: an unknown field is an error,
 * which is how a typo such as `depend_on` gets caught.
 *
 * @module
 */
import * as v from 'valibot';

/** An operation, server or taskserv name: letters, digits, `_` and `-`, starting with a letter or digit. */
export const NAME_PATTERN = /^[A-Za-z0-9][A-Za-z0-9_-]*$/;

const Name = (what: string) =>
  v.pipe(
    v.string(),
    v.regex(
      NAME_PATTERN,
      `${what} must be letters, digits, "_" or "-", starting with a letter or digit`,
    ),
  );

const PositiveInt = v.pipe(v.number(), v.integer(), v.minValue(1));
const NonNegativeInt = v.pipe(v.number(), v.integer(), v.minValue(0));
const NonNegativeNumber = v.pipe(v.number(), v.minValue(0));
/**
 * `v.record` that refuses lists, as CUE does: valibot's record takes `["a"]` as `{"0": "a"}`.
 * It stays a record schema (JSON Schema conversion reads it as one) that checks for a list first.
 */
function Dict<TValue extends v.GenericSchema>(value: TValue) {
  const record = v.record(v.string(), value);
  const run = record['~run'].bind(record);
  return {
    ...record,
    '~run'(dataset, config) {
      if (!Array.isArray(dataset.value)) return run(dataset, config);
      v._addIssue(this, 'type', dataset, config);
      dataset.typed = false;
      return dataset as never;
    },
  } satisfies typeof record;
}

const StringList = v.optional(v.array(v.string()), () => []);
const StringMap = v.optional(Dict(v.string()), () => ({}));

/** Workflow kinds: `sequential` runs one task at a time, `parallel` and `batch` as the DAG allows. */
export const WORKFLOW_TYPES = ['batch', 'sequential', 'parallel'] as const;
export const OPERATION_TYPES = ['create', 'update', 'delete', 'check'] as const;
export const OPERATION_TARGETS = ['server', 'taskserv', 'cluster'] as const;
export const ON_FAILURE = ['fail', 'continue', 'rollback'] as const;
export const DEPENDENCY_TYPES = ['hard', 'soft', 'optional'] as const;
export const BACKOFFS = ['linear', 'exponential'] as const;
export const LOG_LEVELS = ['debug', 'info', 'warn', 'error'] as const;
export const LOG_FORMATS = ['json', 'text'] as const;
export const LOG_DESTINATIONS = ['file', 'stdout'] as const;
export const SECRET_PROVIDERS = ['sops', 'env', 'file'] as const;
export const SERVER_PROVIDERS = ['local', 'ssh', 'upcloud', 'aws'] as const;
export const STEP_TYPES = ['echo', 'script', 'sleep', 'file_write', 'http', 'custom'] as const;
export const ROLLOUT_STRATEGIES = ['parallel', 'sequential', 'rolling', 'canary'] as const;
export const CANARY_PROMOTIONS = ['manual', 'auto'] as const;
export const STATE_STORES = ['postgres', 'pglite'] as const;
export const INPUT_TYPES = ['string', 'int', 'bool', 'enum', 'list'] as const;

/** Compute resources: CPUs, memory in MiB, disk in GB. */
export const ResourcesSchema = v.strictObject({
  cpu: v.optional(PositiveInt),
  memory: v.optional(PositiveInt),
  disk: v.optional(PositiveInt),
});

/** The retry policy. */
export const RetryPolicySchema = v.strictObject({
  max_attempts: v.optional(PositiveInt, 3),
  backoff: v.optional(v.picklist(BACKOFFS), 'exponential'),
  /** Seconds before the second attempt. */
  initial_delay: v.optional(NonNegativeNumber, 5),
  /** Upper bound of any delay, in seconds. */
  max_delay: v.optional(NonNegativeNumber, 300),
  /** Failure types (a step's `TaskFailure.type`) that are never retried. */
  non_retryable: StringList,
});
export type RetryPolicy = v.InferOutput<typeof RetryPolicySchema>;

/** An operation's retry override: each field it sets replaces the workflow's; the rest are kept. */
export const RetryPolicyOverrideSchema = v.strictObject({
  max_attempts: v.optional(PositiveInt),
  backoff: v.optional(v.picklist(BACKOFFS)),
  initial_delay: v.optional(NonNegativeNumber),
  max_delay: v.optional(NonNegativeNumber),
  non_retryable: v.optional(v.array(v.string())),
});
export type RetryPolicyOverride = v.InferOutput<typeof RetryPolicyOverrideSchema>;

/** The rollback strategy. */
export const RollbackStrategySchema = v.strictObject({
  enabled: v.optional(v.boolean(), true),
  /** Roll back the successful part of a run that failed part-way. */
  on_partial_failure: v.optional(v.boolean(), true),
  /** Operations between checkpoints. */
  checkpoint_interval: v.optional(PositiveInt, 5),
  /** Keep what succeeded; compensate only what failed half-way. */
  preserve_successful: v.optional(v.boolean(), false),
});
export type RollbackStrategy = v.InferOutput<typeof RollbackStrategySchema>;

/** Logging configuration. */
export const LoggingSchema = v.strictObject({
  level: v.optional(v.picklist(LOG_LEVELS), 'info'),
  destinations: v.optional(v.array(v.picklist(LOG_DESTINATIONS)), () => ['file', 'stdout']),
  format: v.optional(v.picklist(LOG_FORMATS), 'json'),
  retention_days: v.optional(PositiveInt, 30),
  path: v.optional(v.string(), './logs/workflows'),
});
export type Logging = v.InferOutput<typeof LoggingSchema>;

/** Monitoring and state tracking. */
export const MonitoringSchema = v.strictObject({
  enabled: v.optional(v.boolean(), true),
  metrics_endpoint: v.optional(v.string(), '/metrics'),
  state_store: v.optional(v.picklist(STATE_STORES)),
  /** Seconds between progress snapshots. */
  checkpoint_frequency: v.optional(PositiveInt, 10),
  telemetry: v.optional(
    v.strictObject({
      enabled: v.optional(v.boolean(), false),
      endpoint: v.optional(v.string()),
      service_name: v.optional(v.string()),
    }),
  ),
});
export type Monitoring = v.InferOutput<typeof MonitoringSchema>;

/** Where secrets come from. */
export const SecretsSchema = v.strictObject({
  provider: v.picklist(SECRET_PROVIDERS),
  files: StringList,
  age_key_file: v.optional(v.string()),
  /** The reference plan's spelling of `age_key_file`. */
  sops_config: v.optional(v.strictObject({ age_key_file: v.optional(v.string()) })),
  /** Environment variable names, for `provider: "env"`. */
  env: StringList,
  kms: v.optional(v.strictObject({ provider: v.string(), key_id: v.optional(v.string()) })),
});
export type Secrets = v.InferOutput<typeof SecretsSchema>;

/** What a step does when it is compensated. */
export const StepActionSchema = v.strictObject({
  type: v.picklist(STEP_TYPES),
  handler: v.optional(v.string()),
  params: v.optional(Dict(v.unknown()), () => ({})),
});
export type StepAction = v.InferOutput<typeof StepActionSchema>;

/** One step run on a server. */
export const StepSchema = v.strictObject({
  name: v.pipe(v.string(), v.minLength(1, 'a step needs a name')),
  type: v.picklist(STEP_TYPES),
  /** The custom handler's registered name, for `type: "custom"`. */
  handler: v.optional(v.string()),
  params: v.optional(Dict(v.unknown()), () => ({})),
  required: v.optional(v.boolean(), true),
  continue_on_failure: v.optional(v.boolean(), false),
  /** Seconds; defaults to what is left of the operation's timeout. */
  timeout: v.optional(PositiveInt),
  rollback: v.optional(StepActionSchema),
});
export type Step = v.InferOutput<typeof StepSchema>;

/** How an operation rolls out over its servers. */
export const RolloutSchema = v.strictObject({
  strategy: v.optional(v.picklist(ROLLOUT_STRATEGIES), 'parallel'),
  batch_size: v.optional(PositiveInt, 1),
  /** Seconds between batches. */
  batch_delay: v.optional(NonNegativeNumber, 0),
  /** Failed servers tolerated before the rollout stops: 0 stops at the first. */
  max_failures: v.optional(NonNegativeInt, 0),
  canary_percentage: v.optional(v.pipe(v.number(), v.minValue(1), v.maxValue(100)), 10),
  /** `manual` waits for `muster batch resume`; `auto` goes on when the canaries are healthy. */
  canary_promotion: v.optional(v.picklist(CANARY_PROMOTIONS), 'manual'),
});
export type Rollout = v.InferOutput<typeof RolloutSchema>;

/** A unit of work, expanded over its items and servers into tasks. */
export const OperationSchema = v.strictObject({
  id: Name('an operation id'),
  type: v.picklist(OPERATION_TYPES),
  target: v.picklist(OPERATION_TARGETS),
  description: v.optional(v.string()),
  /** Only servers of these providers; empty means all. */
  providers: StringList,
  /** Server, taskserv or cluster names. For `target: "server"`, empty means every server. */
  items: StringList,
  /** Operation ids this one waits for. */
  depends_on: StringList,
  parallel: v.optional(v.boolean(), true),
  /** Seconds. */
  timeout: v.optional(PositiveInt, 300),
  on_failure: v.optional(v.picklist(ON_FAILURE), 'rollback'),
  retry_policy: v.optional(RetryPolicyOverrideSchema),
  steps: v.optional(v.array(StepSchema), () => []),
  rollout: v.optional(RolloutSchema),
});
export type Operation = v.InferOutput<typeof OperationSchema>;

/** An ordering between operations (`op`) or one item's tasks (`op.item`). */
export const DependencySchema = v.strictObject({
  source: v.pipe(v.string(), v.minLength(1)),
  target: v.pipe(v.string(), v.minLength(1)),
  type: v.optional(v.picklist(DEPENDENCY_TYPES), 'hard'),
  wait_condition: v.optional(v.string()),
});
export type Dependency = v.InferOutput<typeof DependencySchema>;

/** SSH access to a server. */
export const SshSchema = v.strictObject({
  user: v.optional(v.string(), 'root'),
  port: v.optional(v.pipe(v.number(), v.integer(), v.minValue(1), v.maxValue(65535)), 22),
  key_file: v.optional(v.string()),
});

/** A server of the inventory. */
export const ServerSchema = v.strictObject({
  name: Name('a server name'),
  provider: v.optional(v.picklist(SERVER_PROVIDERS), 'local'),
  address: v.optional(v.string()),
  labels: StringMap,
  /** Taskservs installed on this server. */
  taskservs: StringList,
  resources: v.optional(ResourcesSchema),
  ssh: v.optional(SshSchema),
});
export type Server = v.InferOutput<typeof ServerSchema>;

/** A taskserv's health check. */
export const HealthCheckSchema = v.strictObject({
  command: v.pipe(v.string(), v.minLength(1)),
  args: StringList,
  shell: v.optional(v.boolean(), false),
  /** Seconds per attempt. */
  timeout: v.optional(PositiveInt, 60),
  retries: v.optional(NonNegativeInt, 3),
  /** Seconds between attempts. */
  interval: v.optional(NonNegativeNumber, 5),
});
export type HealthCheck = v.InferOutput<typeof HealthCheckSchema>;

/** A service installed on servers. */
export const TaskservSchema = v.strictObject({
  name: Name('a taskserv name'),
  version: v.optional(v.string(), 'latest'),
  description: v.optional(v.string()),
  /** Taskservs installed first on the same server. */
  requires: StringList,
  /** Taskservs that may not share a server with this one. */
  conflicts_with: StringList,
  minimum_resources: v.optional(ResourcesSchema),
  health_check: v.optional(HealthCheckSchema),
  install: v.optional(v.array(StepSchema), () => []),
  uninstall: v.optional(v.array(StepSchema), () => []),
});
export type Taskserv = v.InferOutput<typeof TaskservSchema>;

/** What a provider needs from the engine. */
export const ProviderDependenciesSchema = v.strictObject({
  requires_network: v.optional(v.boolean(), true),
  network_before_servers: v.optional(v.boolean(), true),
  shared_resources: StringList,
  /** Requests per second to the provider's API. */
  api_rate_limit: v.optional(v.pipe(v.number(), v.minValue(0)), 10),
  /** Operations at once. */
  batch_size: v.optional(PositiveInt, 5),
});
export type ProviderDependencies = v.InferOutput<typeof ProviderDependenciesSchema>;

/** A typed workflow input. */
export const InputSchema = v.strictObject({
  type: v.picklist(INPUT_TYPES),
  description: v.optional(v.string()),
  default: v.optional(v.unknown()),
  /** The allowed values of an `enum` input. */
  values: v.optional(v.array(v.string())),
  required: v.optional(v.boolean(), false),
});
export type Input = v.InferOutput<typeof InputSchema>;

/**
 * An environment a workflow runs in (`muster run --env prod`): values for its inputs and labels
 * for its runs.
 */
export const EnvironmentSchema = v.strictObject({
  description: v.optional(v.string()),
  /** Input values, by input name; they replace the inputs' defaults and give way to `--set`. */
  inputs: v.optional(Dict(v.unknown()), () => ({})),
  /** Added to the labels of runs in this environment. */
  labels: StringMap,
});
export type Environment = v.InferOutput<typeof EnvironmentSchema>;

/** A batch workflow: the top level of a workflow file. */
export const WorkflowSchema = v.strictObject({
  name: v.pipe(v.string(), v.minLength(1, 'a workflow needs a name')),
  type: v.optional(v.picklist(WORKFLOW_TYPES), 'batch'),
  description: v.optional(v.string()),
  /** Accepted for the reference plan's files; Muster is always provider-agnostic. */
  provider_agnostic: v.optional(v.boolean(), true),
  labels: StringMap,
  inputs: v.optional(Dict(InputSchema), () => ({})),
  /** Named sets of input values and labels, chosen with `--env NAME`. */
  environments: v.optional(Dict(EnvironmentSchema), () => ({})),
  servers: v.optional(v.array(ServerSchema), () => []),
  /** Taskservs defined in the workflow; they replace catalog entries of the same name. */
  taskservs: v.optional(v.array(TaskservSchema), () => []),
  operations: v.pipe(
    v.array(OperationSchema),
    v.minLength(1, 'a workflow needs at least one operation'),
  ),
  dependencies: v.optional(v.array(DependencySchema), () => []),
  rollback_strategy: v.optional(RollbackStrategySchema, () => v.parse(RollbackStrategySchema, {})),
  retry_policy: v.optional(RetryPolicySchema, () => v.parse(RetryPolicySchema, {})),
  logging: v.optional(LoggingSchema, () => v.parse(LoggingSchema, {})),
  secrets: v.optional(SecretsSchema),
  templates: StringList,
  monitoring: v.optional(MonitoringSchema, () => v.parse(MonitoringSchema, {})),
});
/** A workflow as written (defaults optional). */
export type WorkflowInput = v.InferInput<typeof WorkflowSchema>;
/** A workflow with every default filled in. */
export type Workflow = v.InferOutput<typeof WorkflowSchema>;

export type WorkflowType = (typeof WORKFLOW_TYPES)[number];
export type OnFailure = (typeof ON_FAILURE)[number];
export type StepType = (typeof STEP_TYPES)[number];
