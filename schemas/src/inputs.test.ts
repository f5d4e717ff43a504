import * as v from 'valibot';
import { describe, expect, test } from 'vitest';
import { checkInputs, ENVIRONMENT_LABEL, inputValues, resolveRunWorkflow } from './inputs.ts';
import { InvalidWorkflowError } from './problems.ts';
import { WorkflowSchema, type WorkflowInput } from './workflow.ts';

const workflow = (extra: Partial<WorkflowInput> = {}) =>
  v.parse(WorkflowSchema, {
    name: 'wf',
    operations: [{ id: 'a', type: 'check', target: 'cluster', items: ['x'] }],
    inputs: {
      version: { type: 'string', required: true },
      replicas: { type: 'int', default: 1 },
      debug: { type: 'bool', default: false },
      color: { type: 'enum', values: ['blue', 'green'], default: 'blue' },
      tags: { type: 'list', default: [] },
    },
    environments: { prod: { inputs: { replicas: 3, color: 'green' }, labels: { tier: 'prod' } } },
    ...extra,
  });

function problemsOf(fn: () => unknown) {
  try {
    fn();
  } catch (e: unknown) {
    if (e instanceof InvalidWorkflowError) return e.problems;
    throw e;
  }
  throw new Error('expected an InvalidWorkflowError');
}

describe('inputs', () => {
  describe('resolveRunWorkflow', () => {
    test('defaults, then the environment, then --set, each parsed by its type', () => {
      const run = resolveRunWorkflow(workflow(), {
        environment: 'prod',
        set: ['version=1.2.3', 'debug=yes', 'tags=a, b', 'replicas=5'],
      });
      expect(run.inputs).toEqual({
        version: '1.2.3',
        replicas: 5,
        debug: true,
        color: 'green',
        tags: ['a', 'b'],
      });
      expect(run.labels).toEqual({ tier: 'prod', [ENVIRONMENT_LABEL]: 'prod' });
      // The stored workflow carries the values, so a resume sees them.
      expect(inputValues(run.workflow)).toEqual(run.inputs);
    });

    test('a value of the wrong type names the input, what was expected and what was found', () => {
      const problems = problemsOf(() =>
        resolveRunWorkflow(workflow(), { set: ['version=1', 'replicas=three', 'color=red'] }),
      );
      expect(problems).toEqual([
        expect.objectContaining({
          path: 'inputs.replicas',
          message: '--set replicas=three: not an int value',
          expected: 'a whole number (int)',
          received: '"three"',
        }),
        expect.objectContaining({
          path: 'inputs.color',
          expected: 'one of "blue", "green" (enum)',
          received: '"red"',
        }),
      ]);
    });

    test('unknown inputs and environments, malformed flags and missing required inputs', () => {
      const problems = problemsOf(() =>
        resolveRunWorkflow(workflow(), { set: ['replica=2', 'nonsense'], environment: 'prd' }),
      );
      expect(problems.map((p) => [p.code, p.hint])).toEqual([
        ['unknown-environment', 'did you mean "prod"?'],
        ['unknown-input', 'did you mean "replicas"?'],
        ['invalid-set', 'write it as --set name=value, e.g. --set replicas=3'],
        ['missing-input', expect.stringContaining('--set version=')],
      ]);
    });

    test('makes relative secrets paths absolute against the workflow directory', () => {
      const run = resolveRunWorkflow(
        workflow({
          secrets: { provider: 'sops', files: ['s.enc.yaml', '/abs.yaml'], age_key_file: 'k.txt' },
        }),
        { set: ['version=1'], baseDir: '/srv/wf' },
      );
      expect(run.workflow.secrets).toMatchObject({
        files: ['/srv/wf/s.enc.yaml', '/abs.yaml'],
        age_key_file: '/srv/wf/k.txt',
      });
    });
  });

  describe('checkInputs', () => {
    test('defaults and environment values of the wrong type, unknown names, enums without values', () => {
      const wf = workflow({
        inputs: {
          n: { type: 'int', default: '3' },
          e: { type: 'enum' },
          s: { type: 'string', values: ['x'] },
        },
        environments: { prod: { inputs: { n: 1.5, m: 1 } } },
      });
      expect(checkInputs(wf).map((p) => [p.path, p.received ?? p.message])).toEqual([
        ['inputs.n.default', '"3"'],
        ['inputs.e.values', 'enum input "e" needs its allowed values'],
        ['inputs.s.values', '"values" is only read for enum inputs, and "s" is a string'],
        ['environments.prod.inputs.n', '1.5'],
        ['environments.prod.inputs.m', '"m"'],
      ]);
    });
  });
});
