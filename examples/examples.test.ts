import { readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, test } from 'vitest';
import { loadAndPlanFile } from '../orchestrator/src/plan/load-and-plan.ts';
import type { LoadedPlan } from '../orchestrator/src/plan/load-and-plan.ts';
import { loadCatalog } from '../taskservs/index.ts';

const DIR = fileURLToPath(new URL('.', import.meta.url));
const FILES = readdirSync(DIR)
  .filter((f) => /\.(cue|json|ya?ml)$/.test(f))
  .sort();

const catalog = await loadCatalog();
const planned = new Map<string, Promise<LoadedPlan>>();
/** Each example is loaded and planned once, whichever test asks first. */
function example(file: string): Promise<LoadedPlan> {
  let p = planned.get(file);
  if (!p) planned.set(file, (p = loadAndPlanFile(`${DIR}${file}`, { catalog })));
  return p;
}

function operation(plan: LoadedPlan['plan'], id: string) {
  const op = plan.operations.find((o) => o.id === id);
  if (!op) throw new Error(`no operation ${id}`);
  return op;
}

describe('examples', () => {
  test('include the four-phase deployment, the rolling update and the quick start', () => {
    expect(FILES).toEqual(
      expect.arrayContaining([
        'four-phase.cue',
        'four-phase.yaml',
        'quickstart.cue',
        'rolling-update.cue',
      ]),
    );
  });

  test.each(FILES)('%s loads and plans', async (file) => {
    const { loaded, plan } = await example(file);
    expect(loaded.workflow.operations.length).toBeGreaterThan(0);
    expect(plan.operations.length).toBe(loaded.workflow.operations.length);
    expect(plan.tasks.length).toBeGreaterThan(0);
    // Every task belongs to a planned operation and every edge joins two tasks.
    const ids = new Set(plan.tasks.map((t) => t.id));
    for (const op of plan.operations) for (const t of op.tasks) expect(ids.has(t)).toBe(true);
    for (const e of plan.edges) expect(ids.has(e.from) && ids.has(e.to)).toBe(true);
  });
});

describe('four-phase', () => {
  test('runs its four operations in four levels, as in the reference plan', async () => {
    const { plan } = await example('four-phase.cue');
    expect(plan.operations.map((o) => [o.id, o.level])).toEqual([
      ['create-servers', 0],
      ['install-base', 1],
      ['install-k8s', 2],
      ['install-cluster', 3],
    ]);
  });

  test('creates three servers and installs each taskserv where it is listed', async () => {
    const { plan } = await example('four-phase.cue');
    expect(operation(plan, 'create-servers').tasks).toHaveLength(3);
    expect(operation(plan, 'install-base').tasks).toHaveLength(9);
    expect(operation(plan, 'install-k8s').tasks).toHaveLength(3);
    expect(operation(plan, 'install-cluster').tasks).toHaveLength(3);
    const k8s = plan.tasks.find((t) => t.operation === 'install-k8s' && t.server === 'wuji-cp-0');
    expect(k8s?.health_check?.command).toBe('kubectl');
    expect(k8s?.compensation.length).toBeGreaterThan(0);
  });

  test('orders each server by requires: containerd waits for os', async () => {
    const { plan } = await example('four-phase.cue');
    const task = (item: string) =>
      plan.tasks.find((t) => t.item === item && t.server === 'wuji-strg-0')?.id;
    expect(plan.edges).toContainEqual(
      expect.objectContaining({ from: task('os'), to: task('containerd'), reason: 'requires' }),
    );
  });

  test('the YAML variant is the same workflow as the CUE one', async () => {
    const [cue, yaml] = await Promise.all([example('four-phase.cue'), example('four-phase.yaml')]);
    expect(yaml.loaded.format).toBe('yaml');
    expect(cue.loaded.format).toBe('cue');
    expect(yaml.loaded.workflow).toEqual(cue.loaded.workflow);
    expect(yaml.plan).toEqual(cue.plan);
  });
});

describe('rolling-update', () => {
  test('rolls over five servers two at a time, tolerating one failure', async () => {
    const { plan } = await example('rolling-update.cue');
    const deploy = operation(plan, 'deploy');
    expect(deploy.tasks).toHaveLength(5);
    expect(deploy.rollout).toMatchObject({ strategy: 'rolling', batch_size: 2, max_failures: 1 });
    expect(deploy.retry_policy.max_attempts).toBe(2);
    const checks = plan.operations.filter((o) => o.type === 'check');
    expect(checks.map((o) => o.id)).toEqual(['status']);
  });
});

describe('quickstart', () => {
  test('uses only local servers and the local taskservs', async () => {
    const { loaded, plan } = await example('quickstart.cue');
    expect(loaded.workflow.servers.every((s) => s.provider === 'local')).toBe(true);
    const items = new Set(
      plan.tasks.filter((t) => t.operation.startsWith('install')).map((t) => t.item),
    );
    expect([...items].sort()).toEqual(['base-tools', 'demo-app', 'motd']);
  });

  test('ends with the health checks of what it installed', async () => {
    const { plan } = await example('quickstart.cue');
    const health = plan.operations.at(-1);
    expect(health?.id).toBe('health');
    const tasks = plan.tasks.filter((t) => t.operation === 'health');
    // base-tools on 3 servers, motd on 2, demo-app on 2.
    expect(tasks).toHaveLength(7);
    for (const t of tasks) {
      expect(t.health_check).toBeDefined();
      expect(t.steps).toEqual([]);
    }
  });
});
