/**
 * Typed workflow inputs and environments: checking what a workflow declares, and resolving the
 * values of one run from the inputs' defaults, an environment (`--env prod`, from the workflow's
 * `environments`) and `--set key=value` flags, later sources winning.
 *
 * A resolved run keeps its values in the workflow it stores: each input's `default` becomes the
 * value the run uses, so the stored workflow says exactly what ran, and a resume or a retry sees
 * the same values. The environment is recorded as the run label {@link ENVIRONMENT_LABEL}.
 *
 * @module
 */
import { isAbsolute, resolve } from 'node:path';
import { didYouMean, InvalidWorkflowError, type Problem } from './problems.ts';
import type { Input, Workflow } from './workflow.ts';

/** The run label that records the environment a run was started in. */
export const ENVIRONMENT_LABEL = 'muster.dev/environment';

/** What {@link resolveRunWorkflow} resolves a run's values from. */
export interface ResolveRunOptions {
  /** `key=value` strings, as given to `--set` (repeatable; later ones win). */
  readonly set?: readonly string[];
  /** An environment of the workflow's `environments`. */
  readonly environment?: string;
  /** Relative paths in `secrets` resolve against it (the workflow file's directory). */
  readonly baseDir?: string;
  /** The workflow file, for problems. */
  readonly file?: string;
}

/** A workflow ready to be submitted. */
export interface ResolvedRun {
  /** The workflow, each input's `default` set to the value this run uses. */
  readonly workflow: Workflow;
  /** The input values by name (inputs without a value are absent). */
  readonly inputs: Readonly<Record<string, unknown>>;
  /** Labels for the run: the environment's, and {@link ENVIRONMENT_LABEL}. */
  readonly labels: Readonly<Record<string, string>>;
}

/**
 * Checks the inputs a workflow declares and the values its environments give them: an `enum`
 * needs `values`, defaults and environment values must fit their input's type, and environments
 * may only set declared inputs.
 *
 * @param workflow The workflow.
 * @returns The problems, with paths such as `environments.prod.inputs.replicas`.
 */
export function checkInputs(workflow: Workflow): Problem[] {
  const problems: Problem[] = [];
  for (const [name, input] of Object.entries(workflow.inputs)) {
    const path = `inputs.${name}`;
    if (input.type === 'enum' && (input.values === undefined || input.values.length === 0)) {
      problems.push({
        code: 'input',
        path: `${path}.values`,
        message: `enum input "${name}" needs its allowed values`,
        hint: 'list them, e.g. values: ["blue", "green"]',
      });
      continue;
    }
    if (input.type !== 'enum' && input.values !== undefined) {
      problems.push({
        code: 'input',
        path: `${path}.values`,
        message: `"values" is only read for enum inputs, and "${name}" is ${article(input.type)}`,
        hint: 'set type: "enum", or remove values',
      });
    }
    if (input.default !== undefined && input.default !== null) {
      const checked = checkValue(input, input.default);
      if (checked.problem) problems.push({ ...checked.problem, path: `${path}.default` });
    }
  }
  for (const [env, environment] of Object.entries(workflow.environments)) {
    for (const [name, value] of Object.entries(environment.inputs)) {
      const path = `environments.${env}.inputs.${name}`;
      const input = workflow.inputs[name];
      if (input === undefined) {
        problems.push(unknownInput(name, workflow, path));
        continue;
      }
      if (value === null) continue;
      const checked = checkValue(input, value);
      if (checked.problem) problems.push({ ...checked.problem, path });
    }
  }
  return problems;
}

/**
 * Resolves a run's input values and labels: defaults, then the environment's values, then
 * `--set`. Relative `secrets` paths become absolute against `baseDir`.
 *
 * @param workflow A valid workflow.
 * @param options `--set` flags, the environment, the workflow file's directory.
 * @returns The workflow to store, the values and the labels.
 * @throws {InvalidWorkflowError} `MUS2001` with a problem for each unknown input or environment,
 * malformed `--set`, value of the wrong type or required input without a value.
 * @example
 * ```ts
 * const run = resolveRunWorkflow(loaded.workflow, { set: ['replicas=3'], environment: 'prod' });
 * await orchestrator.submit(run.workflow, plan, { labels: run.labels });
 * ```
 */
export function resolveRunWorkflow(
  workflow: Workflow,
  options: ResolveRunOptions = {},
): ResolvedRun {
  const problems: Problem[] = [];
  const values: Record<string, unknown> = {};
  for (const [name, input] of Object.entries(workflow.inputs)) {
    if (input.default !== undefined && input.default !== null) values[name] = input.default;
  }
  const labels: Record<string, string> = {};
  const envName = options.environment;
  if (envName !== undefined) {
    const environment = workflow.environments[envName];
    if (environment === undefined) {
      const known = Object.keys(workflow.environments);
      problems.push({
        code: 'unknown-environment',
        path: 'environments',
        message: `unknown environment "${envName}" (from --env)`,
        expected:
          known.length > 0
            ? `one of ${known.map((k) => `"${k}"`).join(', ')}`
            : 'an environment the workflow defines',
        received: `"${envName}"`,
        hint:
          didYouMean(envName, known) ??
          `define it in the workflow: environments: { ${envName}: { inputs: {...} } }`,
      });
    } else {
      for (const [name, value] of Object.entries(environment.inputs)) {
        if (value !== null) values[name] = value;
      }
      Object.assign(labels, environment.labels, { [ENVIRONMENT_LABEL]: envName });
    }
  }
  for (const flag of options.set ?? []) {
    const eq = flag.indexOf('=');
    if (eq <= 0) {
      problems.push({
        code: 'invalid-set',
        path: '',
        message: `--set "${flag}" is not key=value`,
        hint: 'write it as --set name=value, e.g. --set replicas=3',
      });
      continue;
    }
    const name = flag.slice(0, eq);
    const raw = flag.slice(eq + 1);
    const input = workflow.inputs[name];
    if (input === undefined) {
      problems.push({
        ...unknownInput(name, workflow, `inputs.${name}`),
        message: `--set ${name}: ${unknownInput(name, workflow, '').message}`,
      });
      continue;
    }
    const parsed = parseFlagValue(input, raw);
    if (parsed.problem) {
      problems.push({
        ...parsed.problem,
        path: `inputs.${name}`,
        message: `--set ${name}=${raw}: ${parsed.problem.message}`,
      });
      continue;
    }
    values[name] = parsed.value;
  }
  for (const [name, input] of Object.entries(workflow.inputs)) {
    if (input.required && values[name] === undefined) {
      problems.push({
        code: 'missing-input',
        path: `inputs.${name}`,
        message: `input "${name}" is required and has no value`,
        expected: describeType(input),
        received: 'nothing',
        hint: `give it with --set ${name}=…${Object.keys(workflow.environments).length > 0 ? ', in the chosen environment,' : ''} or as a default`,
      });
    }
  }
  // Values from the file (defaults, environments) were checked at validation; check again, as a
  // caller may resolve a workflow it never validated with checkInputs.
  for (const [name, value] of Object.entries(values)) {
    const input = workflow.inputs[name];
    if (input === undefined) continue;
    const checked = checkValue(input, value);
    if (checked.problem && !problems.some((p) => p.path === `inputs.${name}`)) {
      problems.push({ ...checked.problem, path: `inputs.${name}` });
    }
  }
  if (problems.length > 0) {
    throw new InvalidWorkflowError(
      problems.map((p) => (options.file && !p.file ? { ...p, file: options.file } : p)),
      options.file,
    );
  }
  const inputs = Object.fromEntries(
    Object.entries(workflow.inputs).map(([name, input]) => [
      name,
      values[name] === undefined ? input : { ...input, default: values[name] },
    ]),
  );
  return {
    workflow: {
      ...workflow,
      inputs,
      ...(workflow.secrets && options.baseDir !== undefined
        ? { secrets: absoluteSecretPaths(workflow.secrets, options.baseDir) }
        : {}),
    },
    inputs: values,
    labels,
  };
}

/**
 * The input values a stored run uses: each input's `default` (set by {@link resolveRunWorkflow}).
 *
 * @param workflow A stored workflow (or anything shaped like one).
 * @returns The values by input name.
 */
export function inputValues(workflow: unknown): Record<string, unknown> {
  const inputs = (workflow as { inputs?: Record<string, { default?: unknown }> } | null)?.inputs;
  const out: Record<string, unknown> = {};
  for (const [name, input] of Object.entries(inputs ?? {})) {
    if (input?.default !== undefined && input.default !== null) out[name] = input.default;
  }
  return out;
}

function absoluteSecretPaths(secrets: NonNullable<Workflow['secrets']>, baseDir: string) {
  // `~/…` is left for the key service to expand against the home directory where it runs.
  const abs = (p: string) => (isAbsolute(p) || p.startsWith('~') ? p : resolve(baseDir, p));
  return {
    ...secrets,
    files: secrets.files.map(abs),
    ...(secrets.age_key_file !== undefined ? { age_key_file: abs(secrets.age_key_file) } : {}),
    ...(secrets.sops_config?.age_key_file !== undefined
      ? {
          sops_config: {
            ...secrets.sops_config,
            age_key_file: abs(secrets.sops_config.age_key_file),
          },
        }
      : {}),
  };
}

type Checked = { value: unknown; problem?: undefined } | { problem: Omit<Problem, 'path'> };

/** Checks a value from a file (YAML/JSON/CUE types) against an input's type. */
function checkValue(input: Input, value: unknown): Checked {
  const ok = (() => {
    switch (input.type) {
      case 'string':
        return typeof value === 'string';
      case 'int':
        return typeof value === 'number' && Number.isInteger(value);
      case 'bool':
        return typeof value === 'boolean';
      case 'enum':
        return typeof value === 'string' && (input.values ?? []).includes(value);
      case 'list':
        return Array.isArray(value);
    }
  })();
  if (ok) return { value };
  return { problem: typeProblem(input, JSON.stringify(value) ?? String(value)) };
}

/** Parses a `--set` string by the input's type. */
function parseFlagValue(input: Input, raw: string): Checked {
  switch (input.type) {
    case 'string':
      return { value: raw };
    case 'int':
      return /^[+-]?\d+$/.test(raw.trim()) && Number.isSafeInteger(Number(raw))
        ? { value: Number(raw) }
        : { problem: typeProblem(input, JSON.stringify(raw)) };
    case 'bool': {
      const b = BOOLEANS[raw.trim().toLowerCase()];
      return b === undefined ? { problem: typeProblem(input, JSON.stringify(raw)) } : { value: b };
    }
    case 'enum':
      return (input.values ?? []).includes(raw)
        ? { value: raw }
        : {
            problem: {
              ...typeProblem(input, JSON.stringify(raw)),
              ...(didYouMean(raw, input.values ?? [])
                ? { hint: didYouMean(raw, input.values ?? [])! }
                : {}),
            },
          };
    case 'list': {
      if (raw.trim().startsWith('[')) {
        try {
          const parsed: unknown = JSON.parse(raw);
          if (Array.isArray(parsed)) return { value: parsed };
        } catch {
          // fall through to the problem
        }
        return { problem: typeProblem(input, JSON.stringify(raw)) };
      }
      return { value: raw.trim() === '' ? [] : raw.split(',').map((s) => s.trim()) };
    }
  }
}

const BOOLEANS: Readonly<Record<string, boolean>> = {
  true: true,
  yes: true,
  on: true,
  '1': true,
  false: false,
  no: false,
  off: false,
  '0': false,
};

function typeProblem(input: Input, received: string): Omit<Problem, 'path'> {
  return {
    code: 'input-type',
    message: `not ${article(input.type)} value`,
    expected: describeType(input),
    received,
  };
}

function describeType(input: Input): string {
  switch (input.type) {
    case 'string':
      return 'a string';
    case 'int':
      return 'a whole number (int)';
    case 'bool':
      return 'true or false (bool)';
    case 'enum':
      return `one of ${(input.values ?? []).map((v) => `"${v}"`).join(', ')} (enum)`;
    case 'list':
      return 'a list (list; with --set: a,b,c or a JSON array)';
  }
}

function article(type: string): string {
  return `${/^[aeiou]/.test(type) ? 'an' : 'a'} ${type}`;
}

function unknownInput(name: string, workflow: Workflow, path: string): Problem {
  const known = Object.keys(workflow.inputs);
  return {
    code: 'unknown-input',
    path,
    message: `unknown input "${name}"`,
    expected:
      known.length > 0
        ? `one of ${known.map((k) => `"${k}"`).join(', ')}`
        : 'an input the workflow declares (it declares none)',
    received: `"${name}"`,
    hint: didYouMean(name, known) ?? `declare it under inputs: { ${name}: { type: "string" } }`,
  };
}
