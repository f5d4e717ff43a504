/**
 * A rollout's batch delay when timers fire a little early by the wall clock, as Node's do (they
 * count from the event loop's cached time): the next batch must still start.
 *
 * @module
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { Store } from '../src/store/index.ts';
import {
  _ManualClock,
  ScriptedExecutor,
  expectEnds,
  memoryStore,
  newDriver,
  op,
  until,
} from './helpers/engine.ts';

/** A clock whose timers of more than a millisecond fire one millisecond before they are due. */
class EarlyClock extends _ManualClock {
  override setTimer(ms: number, fn: () => void): () => void {
    return super.setTimer(ms > 1 ? ms - 1 : ms, fn);
  }
}

let store: Store;
beforeAll(async () => {
  store = await memoryStore();
});
afterAll(async () => {
  await store.close();
});

describe('batch_delay', () => {
  test('the next batch starts even when the delay timer fires early', async () => {
    const clock = new EarlyClock();
    const exec = new ScriptedExecutor();
    const driver = await newDriver(
      store,
      {
        name: 'early',
        retry_policy: { max_attempts: 1 },
        operations: [
          op('up', ['s1', 's2', 's3'], { rollout: { strategy: 'rolling', batch_delay: 10 } }),
        ],
      },
      exec,
      { clock },
    );
    await driver.start();
    await until(() => exec.executed.length === 1);
    // The first timer fires at 9.999 s: too early, so another waits for the last millisecond.
    clock.advance(9_999);
    await new Promise((r) => setTimeout(r, 20));
    expect(exec.executed).toHaveLength(1);
    clock.advance(1);
    await until(() => exec.executed.length === 2);
    clock.advance(10_000);
    await expectEnds(driver, 'succeeded');
    expect(exec.executed).toEqual(['up:s1', 'up:s2', 'up:s3']);
  });
});
