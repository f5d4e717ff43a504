import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { runCli, type CliResult } from './helpers/run-cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'muster-run-inputs-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const file = join(dir, 'wf.yaml');
const state = join(dir, 'state');

describe('muster run inputs', () => {
  beforeAll(() => {
    writeFileSync(
      file,
      `name: inputs
inputs:
  replicas: { type: int, default: 1 }
  color: { type: enum, values: [blue, green], default: blue }
  tags: { type: list, default: [] }
environments:
  prod: { inputs: { replicas: 3 }, labels: { tier: prod } }
logging: { destinations: [] }
operations:
  - id: show
    type: update
    target: cluster
    items: [x]
    steps:
      - name: echo
        type: script
        params:
          command: sh
          args: ["-c", "echo \\"$0\\" > '${join(dir, 'seen.txt')}'", "{{ inputs.replicas }} {{ inputs.color }} {{ inputs.tags | join('+') }} {{ env }}"]
`,
    );
  });

  test('values of the wrong type exit 2, naming the input, what was expected and found', async () => {
    const r: CliResult = await runCli([
      'run',
      file,
      '--state-dir',
      state,
      '--no-progress',
      '--set',
      'replicas=three',
      '--set',
      'color=red',
    ]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(
      'inputs.replicas: --set replicas=three: not an int value (expected a whole number (int), found "three")',
    );
    expect(r.stderr).toContain(
      'inputs.color: --set color=red: not an enum value (expected one of "blue", "green" (enum), found "red")',
    );
    expect(r.stdout).toBe('');
    // Checked before the database is opened: nothing was created for a run that cannot start.
    expect(existsSync(state)).toBe(false);
  });

  test('an unknown environment exits 2 with the known ones', async () => {
    const r = await runCli(['run', file, '--state-dir', state, '--no-progress', '--env', 'prd']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('unknown environment "prd" (from --env)');
    expect(r.stderr).toContain('did you mean "prod"?');
    expect(existsSync(state)).toBe(false);
  });

  test('--env and --set fill the inputs the steps render', async () => {
    const r = await runCli([
      'run',
      file,
      '--state-dir',
      state,
      '--no-progress',
      '--env',
      'prod',
      '--set',
      'color=green',
      '--set',
      'tags=a,b',
    ]);
    expect(r.code, r.stderr).toBe(0);
    expect(readFileSync(join(dir, 'seen.txt'), 'utf8')).toBe('3 green a+b prod\n');
  });
});
