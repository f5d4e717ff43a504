/**
 * `scaffoldWorkflowProject` (what `muster init` runs): the project it writes loads, through the
 * vendored `muster.dev/schemas` import, and problems in it still point at the user's lines.
 *
 * @module
 */
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { loadWorkflowFile } from '../src/load.ts';
import { InvalidWorkflowError } from '../src/problems.ts';
import { readSchemaFiles } from '../src/schema-files.ts';
import { ScaffoldExistsError, scaffoldWorkflowProject } from '../src/scaffold.ts';

let root: string;

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'muster-init-'));
});

afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

describe('scaffoldWorkflowProject', () => {
  test('writes a module, the schema package and a starter workflow that loads', async () => {
    const dir = join(root, 'My Fleet');
    const written = await scaffoldWorkflowProject(dir);
    const schema = await readSchemaFiles();
    expect(written).toEqual([
      'cue.mod/module.cue',
      ...schema.map((f) => `cue.mod/pkg/muster.dev/schemas/${f.name}`),
      'workflow.cue',
    ]);
    expect(await readFile(join(dir, 'cue.mod/module.cue'), 'utf8')).toContain(
      'module: "example.com/my-fleet"',
    );
    const starter = await readFile(join(dir, 'workflow.cue'), 'utf8');
    expect(starter).toContain('import "muster.dev/schemas:muster"');

    const loaded = await loadWorkflowFile(join(dir, 'workflow.cue'));
    expect(loaded.workflow.name).toBe('hello');
    expect(loaded.workflow.servers.map((s) => s.name)).toEqual(['local-1', 'local-2']);
    expect(loaded.workflow.operations[0]?.rollout?.strategy).toBe('sequential');
    expect(loaded.locate('operations[0].steps[0]')?.line).toBe(
      starter.split('\n').findIndex((l) => l.includes('name: "greet"')) + 1,
    );
  });

  test('a mistake in the scaffolded workflow is reported on its line', async () => {
    const dir = join(root, 'typo');
    await scaffoldWorkflowProject(dir);
    const path = join(dir, 'workflow.cue');
    const lines = (await readFile(path, 'utf8')).split('\n');
    const at = lines.findIndex((l) => l.includes('target: "server"'));
    lines.splice(at + 1, 0, '\t\t\tdepend_on: ["x"]');
    await writeFile(path, lines.join('\n'));
    const error = await loadWorkflowFile(path).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(InvalidWorkflowError);
    expect((error as InvalidWorkflowError).problems).toEqual([
      expect.objectContaining({
        path: 'operations[0].depend_on',
        line: at + 2,
        hint: 'did you mean "depends_on"?',
        file: path,
      }),
    ]);
  });

  test('refuses to overwrite, writes nothing, and overwrites with force', async () => {
    const dir = join(root, 'again');
    await scaffoldWorkflowProject(dir);
    await writeFile(join(dir, 'workflow.cue'), '// mine\n');
    const error = await scaffoldWorkflowProject(dir).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ScaffoldExistsError);
    expect((error as ScaffoldExistsError).existing).toContain('workflow.cue');
    expect((error as Error).message).toMatch(/pass --force/);
    expect(await readFile(join(dir, 'workflow.cue'), 'utf8')).toBe('// mine\n');

    await scaffoldWorkflowProject(dir, { force: true });
    expect(await readFile(join(dir, 'workflow.cue'), 'utf8')).toContain('#Workflow');
  });
});
