import { describe, expect, test } from 'vitest';
import { plan, workflow } from '../plan/plan.fixtures.ts';
import { planDocument } from '../plan/render-json.ts';
import { decodePlan, encodePlan } from './plan-encoding.ts';

describe('plan encoding', () => {
  // 50 servers installing kubernetes and what it requires, with uninstall steps: many tasks, few
  // distinct steps.
  const servers = Array.from({ length: 50 }, (_, i) => ({
    name: `web-${i}`,
    taskservs: ['containerd', 'kubernetes', 'helm'],
  }));
  const fleet = plan(
    workflow(
      [
        {
          id: 'base',
          type: 'create',
          target: 'taskserv',
          items: ['containerd', 'kubernetes', 'helm'],
        },
      ],
      { servers },
    ),
  );

  test('writes each step once, and reads back the same plan through JSON', () => {
    const stored = encodePlan(fleet);
    const steps = fleet.tasks.flatMap((t) => [...t.steps, ...t.compensation]);
    expect(steps.length).toBeGreaterThan(300);
    expect(stored.shared_steps.length).toBe(new Set(steps).size);
    expect(stored.shared_steps.length).toBeLessThan(40);
    const json = JSON.stringify(stored);
    expect(json.length).toBeLessThan(JSON.stringify(fleet).length / 1.5);
    const read = decodePlan(JSON.parse(json));
    expect(planDocument(read)).toEqual(planDocument(fleet));
    // Read back, tasks share their steps again.
    expect(read.tasks[0]!.steps[0]).toBe(read.tasks[3]!.steps[0]);
  });

  test('reads a plan stored before steps were shared as it is', () => {
    const old = JSON.parse(JSON.stringify(fleet)) as unknown;
    expect(planDocument(decodePlan(old))).toEqual(planDocument(fleet));
  });
});
