/**
 * Conformance: the CUE package (`schemas/*.cue`) and the valibot schema (`schemas/src/workflow.ts`)
 * must give every document the same verdict, and for valid ones the same defaults.
 *
 * Valid documents are evaluated by CUE in one run (each under its own field); invalid ones one run
 * each, because one CUE error stops the whole export and may hide another document's.
 *
 * @module
 */
import * as v from 'valibot';
import { beforeAll, describe, expect, test } from 'vitest';
import { exportCue } from '../src/cue.ts';
import { fastSafeParse } from '../src/fast-validate.ts';
import { formatPath, type PathSegment } from '../src/path.ts';
import { readSchemaFiles } from '../src/schema-files.ts';
import {
  BACKOFFS,
  CANARY_PROMOTIONS,
  DEPENDENCY_TYPES,
  INPUT_TYPES,
  LOG_DESTINATIONS,
  LOG_FORMATS,
  LOG_LEVELS,
  ON_FAILURE,
  OPERATION_TARGETS,
  OPERATION_TYPES,
  ProviderDependenciesSchema,
  ROLLOUT_STRATEGIES,
  SECRET_PROVIDERS,
  SERVER_PROVIDERS,
  STATE_STORES,
  STEP_TYPES,
  TaskservSchema,
  WORKFLOW_TYPES,
  WorkflowSchema,
} from '../src/workflow.ts';

type Definition = '#Workflow' | '#Taskserv' | '#ProviderDependencies';

interface Doc {
  readonly name: string;
  readonly value: unknown;
  readonly definition?: Definition;
}

interface InvalidDoc extends Doc {
  /** A path both schemas must report a problem at. */
  readonly path: string;
  /** Where CUE reports it, when that differs (the loader folds it back into `path`). */
  readonly cuePath?: string;
}

const SCHEMAS: Record<Definition, v.GenericSchema> = {
  '#Workflow': WorkflowSchema,
  '#Taskserv': TaskservSchema,
  '#ProviderDependencies': ProviderDependenciesSchema,
};

const op = (extra: Record<string, unknown> = {}) => ({
  id: 'op',
  type: 'create',
  target: 'server',
  ...extra,
});
const wf = (extra: Record<string, unknown> = {}) => ({ name: 'wf', operations: [op()], ...extra });
const step = (extra: Record<string, unknown> = {}) => ({ name: 's', type: 'echo', ...extra });

const VALID: Doc[] = [
  { name: 'minimal workflow', value: wf() },
  ...WORKFLOW_TYPES.map((type) => ({ name: `workflow type ${type}`, value: wf({ type }) })),
  ...OPERATION_TYPES.map((type) => ({
    name: `operation type ${type}`,
    value: wf({ operations: [op({ type })] }),
  })),
  ...OPERATION_TARGETS.map((target) => ({
    name: `operation target ${target}`,
    value: wf({ operations: [op({ target, items: ['x'] })] }),
  })),
  ...ON_FAILURE.map((on_failure) => ({
    name: `on_failure ${on_failure}`,
    value: wf({ operations: [op({ on_failure })] }),
  })),
  ...DEPENDENCY_TYPES.map((type) => ({
    name: `dependency type ${type}`,
    value: wf({ dependencies: [{ source: 'a', target: 'b.c', type, wait_condition: 'healthy' }] }),
  })),
  ...BACKOFFS.map((backoff) => ({
    name: `backoff ${backoff}`,
    value: wf({
      retry_policy: { backoff },
      operations: [op({ retry_policy: { backoff, max_attempts: 2 } })],
    }),
  })),
  ...LOG_LEVELS.map((level) => ({ name: `log level ${level}`, value: wf({ logging: { level } }) })),
  ...LOG_FORMATS.map((format) => ({
    name: `log format ${format}`,
    value: wf({ logging: { format } }),
  })),
  ...LOG_DESTINATIONS.map((d) => ({
    name: `log destination ${d}`,
    value: wf({ logging: { destinations: [d] } }),
  })),
  ...SECRET_PROVIDERS.map((provider) => ({
    name: `secrets provider ${provider}`,
    value: wf({ secrets: { provider } }),
  })),
  ...SERVER_PROVIDERS.map((provider) => ({
    name: `server provider ${provider}`,
    value: wf({ servers: [{ name: 'srv-1', provider }] }),
  })),
  ...STEP_TYPES.map((type) => ({
    name: `step type ${type}`,
    value: wf({
      operations: [op({ steps: [step({ type, rollback: { type } })] })],
    }),
  })),
  ...ROLLOUT_STRATEGIES.map((strategy) => ({
    name: `rollout strategy ${strategy}`,
    value: wf({ operations: [op({ rollout: { strategy } })] }),
  })),
  ...CANARY_PROMOTIONS.map((canary_promotion) => ({
    name: `canary promotion ${canary_promotion}`,
    value: wf({ operations: [op({ rollout: { strategy: 'canary', canary_promotion } })] }),
  })),
  ...STATE_STORES.map((state_store) => ({
    name: `state store ${state_store}`,
    value: wf({ monitoring: { state_store } }),
  })),
  ...INPUT_TYPES.map((type) => ({
    name: `input type ${type}`,
    value: wf({ inputs: { x: { type } } }),
  })),
  {
    name: 'every optional object present and empty (all nested defaults)',
    value: wf({
      servers: [{ name: 's1', ssh: {}, resources: {} }],
      taskservs: [{ name: 't1', health_check: { command: 'true' }, minimum_resources: {} }],
      operations: [
        op({ retry_policy: {}, rollout: {}, steps: [step({ rollback: { type: 'echo' } })] }),
      ],
      dependencies: [{ source: 'a', target: 'b' }],
      rollback_strategy: {},
      retry_policy: {},
      logging: {},
      monitoring: { telemetry: {} },
      secrets: { provider: 'sops', sops_config: {}, kms: { provider: 'aws' } },
      inputs: { x: { type: 'enum', values: ['a', 'b'], default: 'a', required: true } },
    }),
  },
  {
    name: 'every field set to a non-default value',
    value: {
      name: 'full',
      type: 'sequential',
      description: 'd',
      provider_agnostic: false,
      labels: { team: 'ops', 'app.kubernetes.io/name': 'x' },
      inputs: { n: { type: 'int', description: 'how many', default: 3 } },
      environments: { prod: { description: 'p', inputs: { n: 5 }, labels: { tier: 'prod' } } },
      servers: [
        {
          name: 'web-1',
          provider: 'ssh',
          address: '10.0.0.1',
          labels: { role: 'web' },
          taskservs: ['os'],
          resources: { cpu: 2, memory: 2048, disk: 20 },
          ssh: { user: 'admin', port: 2222, key_file: '~/.ssh/id' },
        },
      ],
      taskservs: [
        {
          name: 'svc',
          version: '1.2.3',
          description: 'd',
          requires: ['os'],
          conflicts_with: ['docker'],
          minimum_resources: { cpu: 1 },
          health_check: {
            command: 'curl',
            args: ['-f', 'http://localhost'],
            shell: true,
            timeout: 5,
            retries: 0,
            interval: 0.5,
          },
          install: [step({ type: 'script', params: { command: 'true' } })],
          uninstall: [step({ name: 'u', type: 'script', params: { command: 'true' } })],
        },
      ],
      operations: [
        op({
          id: 'a-1',
          description: 'd',
          providers: ['ssh'],
          items: ['web-1'],
          parallel: false,
          timeout: 1,
          on_failure: 'continue',
          retry_policy: {
            max_attempts: 1,
            backoff: 'linear',
            initial_delay: 0,
            max_delay: 0,
            non_retryable: ['fatal'],
          },
          steps: [
            {
              name: 'c',
              type: 'custom',
              handler: 'mine',
              params: { nested: { deep: [1, null, true] } },
              required: false,
              continue_on_failure: true,
              timeout: 10,
              rollback: { type: 'custom', handler: 'undo', params: { a: 1 } },
            },
          ],
          rollout: {
            strategy: 'canary',
            batch_size: 3,
            batch_delay: 1.5,
            max_failures: 2,
            canary_percentage: 100,
            canary_promotion: 'auto',
          },
        }),
        op({ id: 'b', depends_on: ['a-1'] }),
      ],
      dependencies: [{ source: 'a-1', target: 'b', type: 'soft' }],
      rollback_strategy: {
        enabled: false,
        on_partial_failure: false,
        checkpoint_interval: 1,
        preserve_successful: true,
      },
      retry_policy: {
        max_attempts: 10,
        backoff: 'linear',
        initial_delay: 0.25,
        max_delay: 60,
        non_retryable: ['x'],
      },
      logging: {
        level: 'debug',
        destinations: [],
        format: 'text',
        retention_days: 1,
        path: '/var/log/m',
      },
      secrets: {
        provider: 'sops',
        files: ['a.enc.yaml'],
        age_key_file: 'k',
        sops_config: { age_key_file: 'k' },
        env: ['TOKEN'],
        kms: { provider: 'aws', key_id: 'id' },
      },
      templates: ['base'],
      monitoring: {
        enabled: false,
        metrics_endpoint: '/m',
        state_store: 'pglite',
        checkpoint_frequency: 1,
        telemetry: { enabled: true, endpoint: 'http://otel', service_name: 'muster' },
      },
    },
  },
  {
    name: 'environments with inputs and labels, and an empty one',
    value: wf({
      inputs: { replicas: { type: 'int', default: 1 }, tags: { type: 'list' } },
      environments: {
        prod: {
          description: 'production',
          inputs: { replicas: 3, tags: ['a', 'b'], anything: null },
          labels: { tier: 'prod' },
        },
        'staging-eu': {},
      },
    }),
  },
  {
    name: 'input default of any type, including null',
    value: wf({
      inputs: {
        a: { type: 'list', default: ['x', 1] },
        b: { type: 'bool', default: null },
        c: { type: 'string', default: { nested: true } },
      },
    }),
  },
  {
    name: 'boundary values',
    value: wf({
      servers: [
        { name: '0', ssh: { port: 65535 } },
        { name: 'a_b-c', ssh: { port: 1 } },
      ],
      operations: [op({ rollout: { canary_percentage: 1, batch_delay: 0, max_failures: 0 } })],
    }),
  },
  { name: 'minimal taskserv', definition: '#Taskserv', value: { name: 'os' } },
  {
    name: 'taskserv with steps and health check',
    definition: '#Taskserv',
    value: { name: 'os', install: [step()], health_check: { command: 'x', args: ['y'] } },
  },
  { name: 'provider dependencies defaults', definition: '#ProviderDependencies', value: {} },
  {
    name: 'provider dependencies set',
    definition: '#ProviderDependencies',
    value: {
      requires_network: false,
      network_before_servers: false,
      shared_resources: ['net'],
      api_rate_limit: 0.5,
      batch_size: 2,
    },
  },
];

const INVALID: InvalidDoc[] = [
  { name: 'missing name', value: { operations: [op()] }, path: 'name' },
  { name: 'empty name', value: wf({ name: '' }), path: 'name' },
  { name: 'name of the wrong type', value: wf({ name: 5 }), path: 'name' },
  {
    name: 'missing operations',
    value: { name: 'wf' },
    path: 'operations',
    // `[#Operation, ...#Operation]` leaves an incomplete first element: its fields are missing.
    cuePath: 'operations[0].id',
  },
  { name: 'no operations', value: wf({ operations: [] }), path: 'operations' },
  { name: 'operations not a list', value: wf({ operations: {} }), path: 'operations' },
  {
    name: 'operation without id',
    value: wf({ operations: [{ type: 'create', target: 'server' }] }),
    path: 'operations[0].id',
  },
  {
    name: 'operation without type',
    value: wf({ operations: [{ id: 'a', target: 'server' }] }),
    path: 'operations[0].type',
  },
  {
    name: 'operation without target',
    value: wf({ operations: [{ id: 'a', type: 'create' }] }),
    path: 'operations[0].target',
  },
  {
    name: 'operation id with a space',
    value: wf({ operations: [op({ id: 'a b' })] }),
    path: 'operations[0].id',
  },
  {
    name: 'operation id starting with a dash',
    value: wf({ operations: [op({ id: '-a' })] }),
    path: 'operations[0].id',
  },
  { name: 'unknown top-level field', value: wf({ depend_on: [] }), path: 'depend_on' },
  {
    name: 'unknown operation field',
    value: wf({ operations: [op({ depend_on: ['x'] })] }),
    path: 'operations[0].depend_on',
  },
  {
    name: 'unknown step field',
    value: wf({ operations: [op({ steps: [step({ foo: 1 })] })] }),
    path: 'operations[0].steps[0].foo',
  },
  {
    name: 'unknown telemetry field',
    value: wf({ monitoring: { telemetry: { port: 1 } } }),
    path: 'monitoring.telemetry.port',
  },
  { name: 'bad workflow type', value: wf({ type: 'serial' }), path: 'type' },
  {
    name: 'bad operation type',
    value: wf({ operations: [op({ type: 'crate' })] }),
    path: 'operations[0].type',
  },
  {
    name: 'bad target',
    value: wf({ operations: [op({ target: 'host' })] }),
    path: 'operations[0].target',
  },
  {
    name: 'bad on_failure',
    value: wf({ operations: [op({ on_failure: 'stop' })] }),
    path: 'operations[0].on_failure',
  },
  {
    name: 'bad step type',
    value: wf({ operations: [op({ steps: [step({ type: 'shell' })] })] }),
    path: 'operations[0].steps[0].type',
  },
  {
    name: 'step without name',
    value: wf({ operations: [op({ steps: [{ type: 'echo' }] })] }),
    path: 'operations[0].steps[0].name',
  },
  {
    name: 'step with empty name',
    value: wf({ operations: [op({ steps: [step({ name: '' })] })] }),
    path: 'operations[0].steps[0].name',
  },
  {
    name: 'step params not an object',
    value: wf({ operations: [op({ steps: [step({ params: 'x' })] })] }),
    path: 'operations[0].steps[0].params',
  },
  {
    name: 'timeout zero',
    value: wf({ operations: [op({ timeout: 0 })] }),
    path: 'operations[0].timeout',
  },
  {
    name: 'timeout not whole',
    value: wf({ operations: [op({ timeout: 1.5 })] }),
    path: 'operations[0].timeout',
  },
  {
    name: 'timeout as a string',
    value: wf({ operations: [op({ timeout: '30' })] }),
    path: 'operations[0].timeout',
  },
  {
    name: 'negative initial delay',
    value: wf({ retry_policy: { initial_delay: -1 } }),
    path: 'retry_policy.initial_delay',
  },
  {
    name: 'max_attempts zero in an override',
    value: wf({ operations: [op({ retry_policy: { max_attempts: 0 } })] }),
    path: 'operations[0].retry_policy.max_attempts',
  },
  {
    name: 'bad backoff',
    value: wf({ retry_policy: { backoff: 'random' } }),
    path: 'retry_policy.backoff',
  },
  {
    name: 'canary percentage zero',
    value: wf({ operations: [op({ rollout: { canary_percentage: 0 } })] }),
    path: 'operations[0].rollout.canary_percentage',
  },
  {
    name: 'canary percentage over 100',
    value: wf({ operations: [op({ rollout: { canary_percentage: 101 } })] }),
    path: 'operations[0].rollout.canary_percentage',
  },
  {
    name: 'negative max_failures',
    value: wf({ operations: [op({ rollout: { max_failures: -1 } })] }),
    path: 'operations[0].rollout.max_failures',
  },
  {
    name: 'bad rollout strategy',
    value: wf({ operations: [op({ rollout: { strategy: 'blue-green' } })] }),
    path: 'operations[0].rollout.strategy',
  },
  {
    name: 'ssh port out of range',
    value: wf({ servers: [{ name: 's', ssh: { port: 70000 } }] }),
    path: 'servers[0].ssh.port',
  },
  {
    name: 'bad server provider',
    value: wf({ servers: [{ name: 's', provider: 'gcp' }] }),
    path: 'servers[0].provider',
  },
  {
    name: 'server name with a dot',
    value: wf({ servers: [{ name: 's.1' }] }),
    path: 'servers[0].name',
  },
  { name: 'label value not a string', value: wf({ labels: { a: 1 } }), path: 'labels.a' },
  {
    name: 'zero cpu',
    value: wf({ servers: [{ name: 's', resources: { cpu: 0 } }] }),
    path: 'servers[0].resources.cpu',
  },
  {
    name: 'dependency with empty source',
    value: wf({ dependencies: [{ source: '', target: 'b' }] }),
    path: 'dependencies[0].source',
  },
  {
    name: 'bad dependency type',
    value: wf({ dependencies: [{ source: 'a', target: 'b', type: 'strong' }] }),
    path: 'dependencies[0].type',
  },
  { name: 'bad log level', value: wf({ logging: { level: 'trace' } }), path: 'logging.level' },
  {
    name: 'bad log destination',
    value: wf({ logging: { destinations: ['syslog'] } }),
    path: 'logging.destinations[0]',
  },
  { name: 'bad log format', value: wf({ logging: { format: 'xml' } }), path: 'logging.format' },
  {
    name: 'secrets without provider',
    value: wf({ secrets: { files: [] } }),
    path: 'secrets.provider',
  },
  {
    name: 'bad secrets provider',
    value: wf({ secrets: { provider: 'vault' } }),
    path: 'secrets.provider',
  },
  {
    name: 'kms without provider',
    value: wf({ secrets: { provider: 'sops', kms: { key_id: 'k' } } }),
    path: 'secrets.kms.provider',
  },
  {
    name: 'bad state store',
    value: wf({ monitoring: { state_store: 'redis' } }),
    path: 'monitoring.state_store',
  },
  { name: 'input without type', value: wf({ inputs: { x: {} } }), path: 'inputs.x.type' },
  {
    name: 'unknown environment field',
    value: wf({ environments: { prod: { values: {} } } }),
    path: 'environments.prod.values',
  },
  {
    name: 'environment label not a string',
    value: wf({ environments: { prod: { labels: { tier: 1 } } } }),
    path: 'environments.prod.labels.tier',
  },
  {
    name: 'environment inputs not an object',
    value: wf({ environments: { prod: { inputs: ['a'] } } }),
    path: 'environments.prod.inputs',
  },
  {
    name: 'environments not an object',
    value: wf({ environments: ['prod'] }),
    path: 'environments',
  },
  {
    name: 'bad input type',
    value: wf({ inputs: { x: { type: 'float' } } }),
    path: 'inputs.x.type',
  },
  { name: 'description null', value: wf({ description: null }), path: 'description' },
  {
    name: 'boolean as a string',
    value: wf({ provider_agnostic: 'yes' }),
    path: 'provider_agnostic',
  },
  {
    name: 'health check with empty command',
    value: wf({ taskservs: [{ name: 't', health_check: { command: '' } }] }),
    path: 'taskservs[0].health_check.command',
  },
  { name: 'taskserv without name', definition: '#Taskserv', value: { version: '1' }, path: 'name' },
  {
    name: 'taskserv with unknown field',
    definition: '#Taskserv',
    value: { name: 't', needs: [] },
    path: 'needs',
  },
  {
    name: 'negative api rate limit',
    definition: '#ProviderDependencies',
    value: { api_rate_limit: -1 },
    path: 'api_rate_limit',
  },
];

/** The CUE package plus one file with the given body. */
async function cueFiles(body: string) {
  const schema = await readSchemaFiles();
  return [
    { name: 'docs.cue', source: `package muster\n\n${body}\n` },
    ...schema.map((f) => ({ name: f.name, source: f.source, internal: true })),
  ];
}

function valibot(doc: Doc) {
  return v.safeParse(SCHEMAS[doc.definition ?? '#Workflow'], doc.value);
}

describe('conformance of the CUE package and the valibot schema', () => {
  test('covers enough documents', () => {
    expect(VALID.length + INVALID.length).toBeGreaterThanOrEqual(40);
    expect(new Set([...VALID, ...INVALID].map((d) => d.name)).size).toBe(
      VALID.length + INVALID.length,
    );
  });

  describe('valid documents', () => {
    let exported: Record<string, unknown> = {};

    beforeAll(async () => {
      const body = VALID.map(
        (d, i) => `d${i}: ${d.definition ?? '#Workflow'} & ${JSON.stringify(d.value)}`,
      ).join('\n');
      const result = await exportCue({
        files: await cueFiles(`valid: {\n${body}\n}`),
        expression: 'valid',
      });
      if (!result.ok)
        throw new Error(
          `CUE rejected valid documents:\n${JSON.stringify(result.problems, null, 2)}`,
        );
      exported = result.value as Record<string, unknown>;
    });

    test.each(VALID.map((d, i) => [d.name, i, d] as const))('%s', (_name, i, doc) => {
      const parsed = valibot(doc);
      expect(parsed.issues).toBeUndefined();
      // CUE fills in the same defaults as valibot, and nothing else.
      expect(exported[`d${i}`]).toStrictEqual(parsed.output);
    });
  });

  // The compiled fast path (`fastSafeParse`, used by the loader) must agree with valibot exactly.
  test.each([...VALID, ...INVALID].map((d) => [d.name, d] as const))(
    'compiled validator matches valibot: %s',
    (_name, doc) => {
      const schema = SCHEMAS[doc.definition ?? '#Workflow'];
      const fast = fastSafeParse(schema, doc.value);
      const slow = valibot(doc);
      expect(fast.success).toBe(slow.success);
      expect(fast.output).toStrictEqual(slow.output);
    },
  );

  describe('invalid documents', () => {
    test.each(INVALID.map((d) => [d.name, d] as const))('%s', async (_name, doc) => {
      const parsed = valibot(doc);
      expect(parsed.success).toBe(false);
      const valibotPaths = (parsed.issues ?? []).map((i) =>
        formatPath((i.path ?? []).map((p) => p.key as PathSegment)),
      );
      expect(valibotPaths).toContain(doc.path);

      const result = await exportCue({
        files: await cueFiles(
          `doc: ${doc.definition ?? '#Workflow'} & ${JSON.stringify(doc.value)}`,
        ),
        expression: 'doc',
      });
      expect(result.ok).toBe(false);
      if (result.ok) return;
      expect(result.problems.map((p) => p.path)).toContain(doc.cuePath ?? doc.path);
    });
  });
});
