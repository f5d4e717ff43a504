import { describe, expect, test } from 'vitest';
import { chainOfOperations, plan, workflow } from '../plan/plan.fixtures.ts';
import { planDocument } from '../plan/render-json.ts';
import { readBody } from './body.fixtures.ts';
import { planBody } from './plan-body.ts';

describe('planBody', () => {
  // 3,000 operations of one task each in a chain: a few megabytes of plan.
  const big = plan(workflow(chainOfOperations(3_000)));

  test('is the fields, then the plan as muster plan -o json writes it, streamed', async () => {
    const fields = { workflow: { name: 'w', note: 'ü "quoted"' } };
    const { text: body, reads } = await readBody(planBody(fields, big));
    expect(JSON.parse(body)).toEqual({ ...fields, plan: planDocument(big) });
    expect(body.endsWith('\n')).toBe(true);
    expect(reads).toBeGreaterThan(1);
  });

  test('with no other fields, the plan alone', async () => {
    const { text: body } = await readBody(planBody({}, big));
    expect(JSON.parse(body)).toEqual({ plan: planDocument(big) });
  });
});
