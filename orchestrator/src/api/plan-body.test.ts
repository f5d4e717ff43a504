import { describe, expect, test } from 'vitest';
import { echo, plan, workflow } from '../plan/plan.fixtures.ts';
import { planDocument } from '../plan/render-json.ts';
import { planBody } from './plan-body.ts';

async function text(body: ReadableStream<Uint8Array>): Promise<{ text: string; reads: number }> {
  const decoder = new TextDecoder();
  let all = '';
  let reads = 0;
  for await (const chunk of body) {
    all += decoder.decode(chunk, { stream: true });
    reads++;
  }
  return { text: all + decoder.decode(), reads };
}

describe('planBody', () => {
  // 3,000 operations of one task each in a chain: a few megabytes of plan.
  const big = plan(
    workflow(
      Array.from({ length: 3_000 }, (_, i) => ({
        id: `op-${i}`,
        type: 'update' as const,
        target: 'cluster' as const,
        items: ['a'],
        steps: [echo(`step ${i} ü`)],
        ...(i > 0 ? { depends_on: [`op-${i - 1}`] } : {}),
      })),
    ),
  );

  test('is the fields, then the plan as muster plan -o json writes it, streamed', async () => {
    const fields = { workflow: { name: 'w', note: 'ü "quoted"' } };
    const { text: body, reads } = await text(planBody(fields, big));
    expect(JSON.parse(body)).toEqual({ ...fields, plan: planDocument(big) });
    expect(body.endsWith('\n')).toBe(true);
    expect(reads).toBeGreaterThan(1);
  });

  test('with no other fields, the plan alone', async () => {
    const { text: body } = await text(planBody({}, big));
    expect(JSON.parse(body)).toEqual({ plan: planDocument(big) });
  });
});
