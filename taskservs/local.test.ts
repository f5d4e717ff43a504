import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import type { Step, Taskserv } from '../schemas/src/workflow.ts';
import { checkStepParams, createStepRegistry, runStep } from '../orchestrator/src/steps/index.ts';
import type { StepContext } from '../orchestrator/src/steps/index.ts';
import { loadCatalog } from './index.ts';

const catalog = await loadCatalog();
const registry = createStepRegistry();

let workdir: string;
let logged: string[];
beforeEach(async () => {
  workdir = await mkdtemp(join(tmpdir(), 'muster-local-taskserv-'));
  logged = [];
});
afterEach(async () => {
  await rm(workdir, { recursive: true, force: true });
});

function context(): StepContext {
  return {
    runId: 'run-test',
    taskId: 'task-test',
    attempt: 1,
    server: { name: 'qs-1', labels: {} },
    workdir,
    signal: new AbortController().signal,
    env: { MUSTER_SERVER: 'qs-1', MUSTER_RUN_ID: 'run-test', MUSTER_TASK_ID: 'task-test' },
    log: (stream, line) => logged.push(`${stream}: ${line}`),
  };
}

function get(name: string): Taskserv {
  const t = catalog.get(name);
  if (!t) throw new Error(`no taskserv ${name} in the catalog`);
  return t;
}

async function runAll(steps: readonly Step[]): Promise<void> {
  for (const step of steps) await runStep(registry, step, context());
}

/** Runs a taskserv's health check once, as a script step in the server's working directory. */
async function healthy(t: Taskserv): Promise<boolean> {
  const check = t.health_check;
  if (!check) throw new Error(`${t.name} has no health check`);
  const step: Step = {
    name: 'health-check',
    type: 'script',
    params: { command: check.command, args: check.args, shell: check.shell },
    required: true,
    continue_on_failure: false,
    timeout: check.timeout,
  };
  return runStep(registry, step, context()).then(
    () => true,
    () => false,
  );
}

describe('catalog steps', () => {
  test('every install and uninstall step has params its handler accepts', () => {
    for (const t of catalog.values()) {
      [...t.install, ...t.uninstall].forEach((step) => {
        expect(checkStepParams(registry, step), `${t.name}/${step.name}`).toEqual([]);
      });
    }
  });
});

describe('local taskservs run for real in a sandbox', () => {
  test('base-tools installs bin/muster-info, passes its health check and uninstalls', async () => {
    const t = get('base-tools');
    expect(await healthy(t)).toBe(false);
    await runAll(t.install);
    expect((await stat(join(workdir, 'bin/muster-info'))).mode & 0o777).toBe(0o755);
    expect(await healthy(t)).toBe(true);
    expect(logged.join('\n')).toContain('server=qs-1');
    await runAll(t.uninstall);
    expect(await healthy(t)).toBe(false);
  });

  test('motd writes etc/motd and its health check reads it', async () => {
    const t = get('motd');
    await runAll(get('base-tools').install);
    await runAll(t.install);
    expect(await readFile(join(workdir, 'etc/motd'), 'utf8')).toContain('managed by Muster');
    expect(await healthy(t)).toBe(true);
    await runAll(t.uninstall);
    expect(await healthy(t)).toBe(false);
  });

  test('demo-app installs its release and VERSION, checked by the health check', async () => {
    const t = get('demo-app');
    await runAll(get('base-tools').install);
    await runAll(t.install);
    expect(await readFile(join(workdir, 'demo-app/VERSION'), 'utf8')).toBe(`${t.version}\n`);
    expect(await readFile(join(workdir, `demo-app/releases/${t.version}/README`), 'utf8')).toBe(
      `demo-app ${t.version} on qs-1\n`,
    );
    expect(await healthy(t)).toBe(true);
    await runAll(t.uninstall);
    expect(await healthy(t)).toBe(false);
  });

  test("demo-app's health check catches a wrong version", async () => {
    const t = get('demo-app');
    await runAll(get('base-tools').install);
    await runAll(t.install);
    await runStep(
      registry,
      {
        name: 'downgrade',
        type: 'script',
        params: { command: 'sh', args: ['demo-app/install.sh', '0.9.0'] },
        required: true,
        continue_on_failure: false,
      },
      context(),
    );
    expect(await healthy(t)).toBe(false);
  });
});
