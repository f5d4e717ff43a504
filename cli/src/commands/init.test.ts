import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';

const ROOT = fileURLToPath(new URL('../../../', import.meta.url));

/** Runs `muster ARGS` from source, as a user would. */
function muster(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      ['--import', 'tsx', 'cli/src/main.ts', ...args],
      { cwd: ROOT, env: { ...process.env, MUSTER_DEBUG: '' } },
      (error, stdout, stderr) =>
        resolve({ code: typeof error?.code === 'number' ? error.code : 0, stdout, stderr }),
    );
  });
}

let dir: string;

beforeAll(async () => {
  dir = join(await mkdtemp(join(tmpdir(), 'muster-cli-init-')), 'proj');
});

afterAll(async () => {
  await rm(join(dir, '..'), { recursive: true, force: true });
});

describe('muster init', () => {
  test('scaffolds the project, lists the files, then refuses to overwrite them', async () => {
    const first = await muster(['init', dir]);
    expect(first.code).toBe(0);
    expect(first.stdout.split('\n')).toContain(join(dir, 'workflow.cue'));
    expect(first.stdout.split('\n')).toContain(join(dir, 'cue.mod/module.cue'));
    expect(first.stderr).toContain(`muster validate ${join(dir, 'workflow.cue')}`);
    expect(existsSync(join(dir, 'cue.mod/pkg/muster.dev/schemas/workflow.cue'))).toBe(true);

    const second = await muster(['init', dir]);
    expect(second.code).toBe(2);
    expect(second.stdout).toBe('');
    expect(second.stderr).toMatch(/already exist in .*workflow\.cue.*pass --force/);

    const forced = await muster(['init', '--force', dir]);
    expect(forced.code).toBe(0);
  });
});
