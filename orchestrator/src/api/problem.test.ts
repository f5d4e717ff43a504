import { describe, expect, test } from 'vitest';
import { CueOutOfMemoryError } from '../../../schemas/src/cue.ts';
import { toProblem } from './problem.ts';

describe('toProblem', () => {
  test('a workflow too large for the bundled CUE is the client’s to change: 422 with the way out', () => {
    const { body, internal } = toProblem(new CueOutOfMemoryError(), '/workflows/batch');
    expect(body).toMatchObject({ status: 422, code: 'MUS2005', instance: '/workflows/batch' });
    expect(body.detail).toMatch(
      /^the bundled CUE .* ran out of memory .* write the workflow as JSON or YAML/,
    );
    expect(internal).toBe(false);
  });

  test('an unknown error says nothing of itself', () => {
    const { body, internal } = toProblem(new Error('secret stack'));
    expect(body).toMatchObject({ status: 500, code: 'API5000' });
    expect(JSON.stringify(body)).not.toContain('secret');
    expect(internal).toBe(true);
  });
});
