import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { Store } from '../src/store/index.ts';
import {
  ScriptedExecutor,
  _ManualClock,
  expectEnds,
  failed,
  memoryStore,
  newDriver,
  op,
  planOf,
  until,
} from './helpers/engine.ts';

let store: Store;
beforeAll(async () => {
  store = await memoryStore();
});
afterAll(async () => {
  await store.close();
});

const noRetry = { max_attempts: 1 };

describe('RunDriver', () => {
  describe('diamond DAG', () => {
    test('runs the join after both parents, and records every transition', async () => {
      const exec = new ScriptedExecutor();
      const driver = await newDriver(
        store,
        {
          name: 'diamond',
          operations: [
            op('a', ['x']),
            op('b', ['x'], { depends_on: ['a'] }),
            op('c', ['x'], { depends_on: ['a'] }),
            op('d', ['x'], { depends_on: ['b', 'c'] }),
          ],
        },
        exec,
      );
      await driver.start();
      await expectEnds(driver, 'succeeded');
      expect(exec.executed[0]).toBe('a:x');
      expect(exec.executed[3]).toBe('d:x');
      expect(new Set(exec.executed.slice(1, 3))).toEqual(new Set(['b:x', 'c:x']));
      const snap = await store.loadRun(driver.runId);
      expect(snap?.run.status).toBe('succeeded');
      expect(snap?.tasks.every((t) => t.status === 'succeeded' && t.attempts === 1)).toBe(true);
      expect(snap?.operations.every((o) => o.status === 'succeeded')).toBe(true);
      const events = await store.events(driver.runId);
      expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
      expect(events[0]?.type).toBe('run:started');
      expect(events.at(-1)?.type).toBe('run:succeeded');
    });

    test('a sequential workflow runs one task at a time', async () => {
      let running = 0;
      let most = 0;
      const exec = new ScriptedExecutor();
      for (const item of ['p', 'q', 'r']) {
        exec.on(`a:${item}`, async () => {
          most = Math.max(most, ++running);
          await new Promise((r) => setTimeout(r, 5));
          running--;
          return { status: 'succeeded', result: { steps: [] } };
        });
      }
      const driver = await newDriver(
        store,
        { name: 'seq', type: 'sequential', operations: [op('a', ['p', 'q', 'r'])] },
        exec,
      );
      await driver.start();
      await expectEnds(driver, 'succeeded');
      expect(most).toBe(1);
    });

    test("an operation's tasks start in the order of its items, under the concurrency cap", async () => {
      const items = ['i0', 'i1', 'i2', 'i3', 'i4', 'i5', 'i6', 'i7'];
      const exec = new ScriptedExecutor();
      const driver = await newDriver(
        store,
        { name: 'in-order', operations: [op('a', items), op('b', items, { depends_on: ['a'] })] },
        exec,
        { concurrency: 3 },
      );
      await driver.start();
      await expectEnds(driver, 'succeeded');
      expect(exec.executed).toEqual([...items.map((i) => `a:${i}`), ...items.map((i) => `b:${i}`)]);
    });
  });

  describe('retries', () => {
    test('retries with exponential backoff on the engine clock, then succeeds', async () => {
      const clock = new _ManualClock();
      const exec = new ScriptedExecutor().on('a:x', failed(), failed());
      const driver = await newDriver(
        store,
        {
          name: 'retry',
          retry_policy: {
            max_attempts: 3,
            backoff: 'exponential',
            initial_delay: 5,
            max_delay: 60,
          },
          operations: [op('a', ['x'])],
        },
        exec,
        { clock },
      );
      await driver.start();
      await until(async () => (await store.loadRun(driver.runId))?.tasks[0]?.notBefore !== null);
      const first = (await store.loadRun(driver.runId))!.tasks[0]!;
      expect(first.notBefore!.getTime() - clock.now().getTime()).toBe(5000);
      clock.advance(4999);
      expect(exec.log).toEqual(['a:x#1']);
      clock.advance(1);
      await until(() => exec.log.length === 2);
      await until(async () => (await store.loadRun(driver.runId))?.tasks[0]?.attempts === 2);
      await until(() => clock.pending > 0);
      clock.advance(10_000); // the second delay doubles
      await expectEnds(driver, 'succeeded');
      expect(exec.log).toEqual(['a:x#1', 'a:x#2', 'a:x#3']);
      const attempts = await store.attempts(driver.runId, 'a:x');
      expect(attempts.map((a) => a.status)).toEqual(['failed', 'failed', 'succeeded']);
    });

    test('a non-retryable failure type is not retried', async () => {
      const exec = new ScriptedExecutor().on('a:x', failed('bad-config'));
      const driver = await newDriver(
        store,
        {
          name: 'nonretry',
          retry_policy: { max_attempts: 5, initial_delay: 0, non_retryable: ['bad-config'] },
          operations: [op('a', ['x'], { on_failure: 'fail' })],
        },
        exec,
      );
      await driver.start();
      await expectEnds(driver, 'failed');
      expect(exec.log).toEqual(['a:x#1']);
    });

    test("an operation's retry override replaces only the fields it sets", async () => {
      const exec = new ScriptedExecutor().on('a:x', failed(), failed(), failed());
      const driver = await newDriver(
        store,
        {
          name: 'override',
          retry_policy: { max_attempts: 5, initial_delay: 0 },
          operations: [op('a', ['x'], { retry_policy: { max_attempts: 2 }, on_failure: 'fail' })],
        },
        exec,
      );
      await driver.start();
      await expectEnds(driver, 'failed');
      expect(exec.log).toEqual(['a:x#1', 'a:x#2']);
    });
  });

  describe('timeouts', () => {
    test("aborts an attempt after the operation's timeout and fails it as a timeout", async () => {
      const clock = new _ManualClock();
      const exec = new ScriptedExecutor().hold('a:x');
      const driver = await newDriver(
        store,
        {
          name: 'timeout',
          operations: [op('a', ['x'], { timeout: 30, retry_policy: noRetry, on_failure: 'fail' })],
        },
        exec,
        { clock },
      );
      await driver.start();
      await until(() => exec.held.has('a:x'));
      clock.advance(30_000);
      await expectEnds(driver, 'failed');
      const task = (await store.loadRun(driver.runId))!.tasks[0]!;
      expect(task.failure).toMatchObject({ type: 'timeout' });
      expect(task.failure?.message).toContain('30s');
    });
  });

  describe('on_failure', () => {
    const wf = (
      onFailure: 'fail' | 'continue' | 'rollback',
      extra: Record<string, unknown> = {},
    ) => ({
      name: `of-${onFailure}`,
      retry_policy: noRetry,
      ...extra,
      operations: [
        op('a', ['x']),
        op('bad', ['x'], { depends_on: ['a'], on_failure: onFailure }),
        op('after-bad', ['x'], { depends_on: ['bad'] }),
        op('other', ['x'], { depends_on: ['a'] }),
        op('later', ['x'], { depends_on: ['other'] }),
      ],
    });

    test('continue: the failed branch is skipped, the rest runs, the run fails', async () => {
      const exec = new ScriptedExecutor().on('bad:x', failed()).on('other:x', async () => {
        await new Promise((r) => setTimeout(r, 20));
        return { status: 'succeeded', result: { steps: [] } };
      });
      const driver = await newDriver(store, wf('continue'), exec);
      await driver.start();
      await expectEnds(driver, 'failed');
      expect(exec.executed).toContain('later:x');
      expect(exec.executed).not.toContain('after-bad:x');
      const snap = await store.loadRun(driver.runId);
      const status = Object.fromEntries(snap!.tasks.map((t) => [t.id, t.status]));
      expect(status).toMatchObject({
        'bad:x': 'failed',
        'after-bad:x': 'skipped',
        'later:x': 'succeeded',
      });
      expect(exec.undone).toEqual([]);
    });

    test('fail: nothing new starts, running tasks finish, nothing is undone', async () => {
      const exec = new ScriptedExecutor().hold('other:x').on('bad:x', failed());
      const driver = await newDriver(store, wf('fail'), exec);
      await driver.start();
      await until(() => exec.held.has('other:x') && exec.executed.includes('bad:x'));
      await until(async () =>
        (await store.loadRun(driver.runId))!.tasks.some((t) => t.status === 'failed'),
      );
      exec.held.get('other:x')!.finish({ status: 'succeeded', result: { steps: [] } });
      await expectEnds(driver, 'failed');
      expect(exec.executed).not.toContain('later:x');
      expect(exec.undone).toEqual([]);
      const snap = await store.loadRun(driver.runId);
      expect(snap!.tasks.find((t) => t.id === 'later:x')?.status).toBe('skipped');
      expect(snap!.run.error).toContain('bad');
    });

    test('rollback: compensates in reverse order of completion, the half-done task first', async () => {
      const exec = new ScriptedExecutor().on('bad:x', failed());
      const driver = await newDriver(store, wf('rollback'), exec, { concurrency: 1 });
      await driver.start();
      await expectEnds(driver, 'rolled_back');
      const completion = exec.executed;
      // Everything that finished is undone, last first: the failed half-way task, then the rest.
      expect(exec.undone[0]).toBe('bad:x');
      const succeeded = completion.filter((t) => t !== 'bad:x');
      expect(exec.undone.slice(1)).toEqual([...succeeded].reverse());
      const snap = await store.loadRun(driver.runId);
      expect(
        snap!.tasks
          .filter((t) => t.compensated)
          .map((t) => t.id)
          .sort(),
      ).toEqual([...exec.undone].sort());
    });

    test('preserve_successful: only the task that failed half-way is undone', async () => {
      const exec = new ScriptedExecutor().on('bad:x', failed());
      const driver = await newDriver(
        store,
        wf('rollback', { rollback_strategy: { preserve_successful: true } }),
        exec,
      );
      await driver.start();
      await expectEnds(driver, 'rolled_back');
      expect(exec.undone).toEqual(['bad:x']);
    });

    test('rollback disabled: the run just fails', async () => {
      const exec = new ScriptedExecutor().on('bad:x', failed());
      const driver = await newDriver(
        store,
        wf('rollback', { rollback_strategy: { enabled: false } }),
        exec,
      );
      await driver.start();
      await expectEnds(driver, 'failed');
      expect(exec.undone).toEqual([]);
    });
  });

  describe('barriers (every task of one operation waits for every task of another)', () => {
    const fleet = ['s1', 's2', 's3'];
    const wf = (extra: Record<string, unknown> = {}, aExtra: Record<string, unknown> = {}) => ({
      name: 'barrier',
      retry_policy: noRetry,
      ...extra,
      operations: [
        op('a', fleet, { on_failure: 'continue', ...aExtra }),
        op('b', fleet, { depends_on: ['a'] }),
        op('c', fleet),
      ],
    });

    test('the plan holds one barrier, and b starts only once all of a has finished', async () => {
      expect(planOf(wf()).plan.barriers).toEqual([
        { from: 'a', to: 'b', type: 'hard', reason: 'depends_on' },
      ]);
      const exec = new ScriptedExecutor().hold('a:s3');
      const driver = await newDriver(store, wf(), exec);
      await driver.start();
      await until(() => exec.held.has('a:s3') && exec.executed.includes('c:s3'));
      expect(exec.executed.filter((t) => t.startsWith('b:'))).toEqual([]);
      exec.held.get('a:s3')!.finish({ status: 'succeeded', result: { steps: [] } });
      await expectEnds(driver, 'succeeded');
      expect(exec.executed.slice(-3).sort()).toEqual(['b:s1', 'b:s2', 'b:s3']);
    });

    test('hard: one failed task of a skips every task of b, naming it', async () => {
      const exec = new ScriptedExecutor().on('a:s2', failed());
      const driver = await newDriver(store, wf(), exec);
      await driver.start();
      await expectEnds(driver, 'failed');
      const snap = await store.loadRun(driver.runId);
      const status = Object.fromEntries(snap!.tasks.map((t) => [t.id, t.status]));
      expect(status).toMatchObject({ 'b:s1': 'skipped', 'b:s2': 'skipped', 'b:s3': 'skipped' });
      const skips = (await store.events(driver.runId)).filter((e) => e.type === 'task:skipped');
      expect(skips.map((e) => (e.data as { reason: string }).reason)).toEqual([
        'a:s2 failed',
        'a:s2 failed',
        'a:s2 failed',
      ]);
    });

    test('depends_on on an operation that tolerated a failure (max_failures) runs', async () => {
      const exec = new ScriptedExecutor().on('a:s2', failed());
      const tolerant = { rollout: { strategy: 'parallel', max_failures: 1 } };
      const driver = await newDriver(store, wf({}, tolerant), exec);
      await driver.start();
      await expectEnds(driver, 'succeeded');
      expect(exec.executed.filter((t) => t.startsWith('b:')).sort()).toEqual([
        'b:s1',
        'b:s2',
        'b:s3',
      ]);
    });

    test('an operation that fails with tasks not started lifts its barrier once', async () => {
      // a stops after its first failure (sequential, no failure tolerated) and skips the rest;
      // b must still wait for c.
      const exec = new ScriptedExecutor().on('a:s1', failed()).hold('c:x');
      const input = {
        name: 'lift-once',
        retry_policy: noRetry,
        operations: [
          op('a', fleet, { on_failure: 'continue', rollout: { strategy: 'sequential' } }),
          op('c', ['x']),
          op('b', fleet, { depends_on: ['c'] }),
        ],
        dependencies: [{ source: 'a', target: 'b', type: 'soft' as const }],
      };
      expect(planOf(input).plan.barriers).toHaveLength(1);
      const driver = await newDriver(store, input, exec);
      await driver.start();
      await until(async () =>
        (await store.loadRun(driver.runId))!.tasks.some(
          (t) => t.id === 'a:s3' && t.status === 'skipped',
        ),
      );
      await new Promise((r) => setTimeout(r, 30));
      expect(exec.executed.filter((t) => t.startsWith('b:'))).toEqual([]);
      exec.held.get('c:x')!.finish({ status: 'succeeded', result: { steps: [] } });
      await expectEnds(driver, 'failed');
      expect(exec.executed.filter((t) => t.startsWith('b:')).sort()).toEqual([
        'b:s1',
        'b:s2',
        'b:s3',
      ]);
    });

    test('a soft dependency between operations waits, then runs anyway', async () => {
      const exec = new ScriptedExecutor().on('a:s1', failed());
      const input = {
        ...wf(),
        operations: [op('a', fleet, { on_failure: 'continue' }), op('c', fleet)],
        dependencies: [{ source: 'a', target: 'c', type: 'soft' as const }],
      };
      expect(planOf(input).plan.barriers).toEqual([
        { from: 'a', to: 'c', type: 'soft', reason: 'dependency' },
      ]);
      const driver = await newDriver(store, input, exec);
      await driver.start();
      await expectEnds(driver, 'failed');
      const c = exec.executed.filter((t) => t.startsWith('c:'));
      expect(c.sort()).toEqual(['c:s1', 'c:s2', 'c:s3']);
      expect(exec.executed.indexOf('c:s1')).toBeGreaterThan(exec.executed.indexOf('a:s3'));
    });
  });

  describe('group commit', () => {
    test('tasks that finish a moment apart share commits', async () => {
      let commits = 0;
      const counting: Store = {
        ...store,
        commit: (...args) => {
          commits++;
          return store.commit(...args);
        },
      };
      const items = Array.from({ length: 40 }, (_, i) => `i${i}`);
      const exec = new ScriptedExecutor();
      items.forEach((item, i) =>
        exec.on(`a:${item}`, async () => {
          await new Promise((r) => setTimeout(r, 1 + (i % 5)));
          return { status: 'succeeded', result: { steps: [] } };
        }),
      );
      const driver = await newDriver(
        counting,
        { name: 'group', operations: [op('a', items)] },
        exec,
      );
      await driver.start();
      await expectEnds(driver, 'succeeded');
      // One commit per task (and one to start) without grouping; a handful with it.
      expect(commits).toBeLessThan(items.length / 2);
    });
  });

  describe('a driver that stops', () => {
    test('writes nothing it had not committed when it was abandoned', async () => {
      const exec = new ScriptedExecutor().hold('a:x');
      const driver = await newDriver(
        store,
        { name: 'abandoned', operations: [op('a', ['x'])] },
        exec,
      );
      await driver.start();
      await until(() => exec.held.has('a:x'));
      exec.held.get('a:x')!.finish({ status: 'succeeded', result: { steps: [] } });
      // Let the driver take the result and schedule its commit, then stop it before it writes.
      for (let i = 0; i < 20; i++) await Promise.resolve();
      driver.abandon(new Error('lease lost'));
      await expect(driver.done).rejects.toThrow('lease lost');
      await new Promise((r) => setTimeout(r, 20));
      const snap = await store.loadRun(driver.runId);
      expect(snap!.tasks[0]!.status).toBe('running');
    });
  });

  describe('checkpoints', () => {
    test('are taken every checkpoint_interval operations; rollback to one undoes only what came after', async () => {
      const exec = new ScriptedExecutor();
      const driver = await newDriver(
        store,
        {
          name: 'checkpoints',
          rollback_strategy: { checkpoint_interval: 2 },
          operations: [
            op('o1', ['x']),
            op('o2', ['x'], { depends_on: ['o1'] }),
            op('o3', ['x'], { depends_on: ['o2'] }),
            op('o4', ['x'], { depends_on: ['o3'] }),
            op('o5', ['x'], { depends_on: ['o4'] }),
          ],
        },
        exec,
      );
      await driver.start();
      await expectEnds(driver, 'succeeded');
      const snap = await store.loadRun(driver.runId);
      // Each records what succeeded since the one before, so they do not grow with the run.
      expect(
        snap!.checkpoints.map((c) => [c.number, c.completedOperations, c.completedTasks]),
      ).toEqual([
        [1, ['o1', 'o2'], ['o1:x', 'o2:x']],
        [2, ['o3', 'o4'], ['o3:x', 'o4:x']],
      ]);
      await expect(driver.rollbackRun({ toCheckpoint: 7 })).rejects.toThrow(/no checkpoint 7/);
      await driver.rollbackRun({ toCheckpoint: 1 });
      await expectEnds(driver, 'rolled_back');
      expect(exec.undone).toEqual(['o5:x', 'o4:x', 'o3:x']);
    });
  });

  describe('checkpoints after a crash', () => {
    test('the next checkpoint records what succeeded since the last, across lives', async () => {
      const ops = ['o1', 'o2', 'o3', 'o4', 'o5'].map((id, i, all) =>
        op(id, ['x'], i === 0 ? {} : { depends_on: [all[i - 1]!] }),
      );
      const workflow = {
        name: 'cp-crash',
        rollback_strategy: { checkpoint_interval: 2 },
        operations: ops,
      };
      const exec = new ScriptedExecutor().hold('o4:x');
      const first = await newDriver(store, workflow, exec);
      await first.start();
      await until(() => exec.held.has('o4:x'));
      // Dies with o3 done since checkpoint 1 (o1, o2), and o4 in flight.
      const { RunDriver } = await import('../src/engine/run-driver.ts');
      const exec2 = new ScriptedExecutor();
      const second = await RunDriver.load(first.runId, { store, dispatcher: exec2 });
      await second.start();
      await expectEnds(second, 'succeeded');
      const snap = await store.loadRun(first.runId);
      expect(snap!.checkpoints.map((c) => [c.number, c.completedTasks])).toEqual([
        [1, ['o1:x', 'o2:x']],
        [2, ['o3:x', 'o4:x']],
      ]);
      // Rolling back to checkpoint 2 keeps everything up to it: o1 to o4.
      await second.rollbackRun({ toCheckpoint: 2 });
      await expectEnds(second, 'rolled_back');
      expect(exec2.undone).toEqual(['o5:x']);
    });
  });

  describe('control', () => {
    test('pause stops new tasks while running ones finish; resume goes on', async () => {
      const exec = new ScriptedExecutor().hold('a:x');
      const driver = await newDriver(
        store,
        { name: 'pause', operations: [op('a', ['x']), op('b', ['x'], { depends_on: ['a'] })] },
        exec,
      );
      await driver.start();
      await until(() => exec.held.has('a:x'));
      await driver.pause();
      exec.held.get('a:x')!.finish({ status: 'succeeded', result: { steps: [] } });
      await until(
        async () => (await store.loadRun(driver.runId))!.tasks[0]!.status === 'succeeded',
      );
      await new Promise((r) => setTimeout(r, 30));
      expect(exec.executed).toEqual(['a:x']);
      expect((await store.getRun(driver.runId))!.status).toBe('paused');
      await driver.resume();
      await expectEnds(driver, 'succeeded');
      expect(exec.executed).toEqual(['a:x', 'b:x']);
    });

    test('graceful cancel lets the running task finish, then compensates what was done', async () => {
      const exec = new ScriptedExecutor().hold('b:x');
      const driver = await newDriver(
        store,
        {
          name: 'cancel',
          operations: [
            op('a', ['x']),
            op('b', ['x'], { depends_on: ['a'] }),
            op('c', ['x'], { depends_on: ['b'] }),
          ],
        },
        exec,
      );
      await driver.start();
      await until(() => exec.held.has('b:x'));
      await driver.cancel();
      expect((await store.getRun(driver.runId))!.status).toBe('cancelling');
      exec.held.get('b:x')!.finish({ status: 'succeeded', result: { steps: [] } });
      await expectEnds(driver, 'cancelled');
      expect(exec.executed).toEqual(['a:x', 'b:x']);
      expect(exec.undone).toEqual(['b:x', 'a:x']);
      const snap = await store.loadRun(driver.runId);
      expect(snap!.tasks.find((t) => t.id === 'c:x')?.status).toBe('cancelled');
    });

    test('terminate aborts running tasks at once and compensates nothing', async () => {
      const exec = new ScriptedExecutor().hold('a:x');
      const driver = await newDriver(
        store,
        { name: 'terminate', operations: [op('a', ['x', 'y'])] },
        exec,
      );
      await driver.start();
      await until(() => exec.held.has('a:x'));
      await driver.cancel({ force: true });
      await expectEnds(driver, 'cancelled');
      const snap = await store.loadRun(driver.runId);
      expect(snap!.tasks.find((t) => t.id === 'a:x')?.status).toBe('cancelled');
      expect(exec.undone).toEqual([]);
    });

    test('retry of one operation reruns it and what was skipped behind it, not what succeeded', async () => {
      const exec = new ScriptedExecutor().on('b:x', failed());
      const driver = await newDriver(
        store,
        {
          name: 'retry-op',
          retry_policy: noRetry,
          operations: [
            op('a', ['x']),
            op('b', ['x'], { depends_on: ['a'], on_failure: 'fail' }),
            op('c', ['x'], { depends_on: ['b'] }),
          ],
        },
        exec,
      );
      await driver.start();
      await expectEnds(driver, 'failed');
      await expect(driver.retry({ operation: 'nope' })).rejects.toThrow(/no operation "nope"/);
      await driver.retry({ operation: 'b' });
      await expectEnds(driver, 'succeeded');
      expect(exec.log).toEqual(['a:x#1', 'b:x#1', 'b:x#2', 'c:x#1']);
    });

    test('refuses actions that do not fit the state, with the state in the message', async () => {
      const exec = new ScriptedExecutor();
      const driver = await newDriver(store, { name: 'states', operations: [op('a', ['x'])] }, exec);
      await driver.start();
      await expectEnds(driver, 'succeeded');
      await expect(driver.pause()).rejects.toThrow(/cannot pause run .* while it is succeeded/);
      await expect(driver.retry()).rejects.toThrow(/cannot retry/);
    });
  });

  describe('rollouts', () => {
    const fleet = (rollout: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({
      name: 'fleet',
      retry_policy: noRetry,
      operations: [op('up', ['s1', 's2', 's3', 's4', 's5'], { rollout, ...extra })],
    });

    test('rolling runs batches of batch_size in order, one batch at a time', async () => {
      let running = 0;
      let most = 0;
      const exec = new ScriptedExecutor();
      for (const s of ['s1', 's2', 's3', 's4', 's5']) {
        exec.on(`up:${s}`, async () => {
          most = Math.max(most, ++running);
          await new Promise((r) => setTimeout(r, 5));
          running--;
          return { status: 'succeeded', result: { steps: [] } };
        });
      }
      const driver = await newDriver(store, fleet({ strategy: 'rolling', batch_size: 2 }), exec);
      await driver.start();
      await expectEnds(driver, 'succeeded');
      expect(most).toBe(2);
      expect(exec.executed).toEqual(['up:s1', 'up:s2', 'up:s3', 'up:s4', 'up:s5']);
    });

    test('rolling waits batch_delay between batches', async () => {
      const clock = new _ManualClock();
      const exec = new ScriptedExecutor();
      const driver = await newDriver(
        store,
        fleet({ strategy: 'rolling', batch_size: 2, batch_delay: 60 }),
        exec,
        { clock },
      );
      await driver.start();
      await until(() => exec.executed.length === 2);
      await new Promise((r) => setTimeout(r, 30));
      expect(exec.executed).toHaveLength(2);
      clock.advance(60_000);
      await until(() => exec.executed.length === 4);
      clock.advance(60_000);
      await expectEnds(driver, 'succeeded');
    });

    test('max_failures 0 stops the rollout at the first failed server', async () => {
      const exec = new ScriptedExecutor().on('up:s2', failed());
      const driver = await newDriver(
        store,
        fleet({ strategy: 'sequential', max_failures: 0 }, { on_failure: 'fail' }),
        exec,
      );
      await driver.start();
      await expectEnds(driver, 'failed');
      expect(exec.executed).toEqual(['up:s1', 'up:s2']);
    });

    test('max_failures N goes on until more than N servers fail', async () => {
      const exec = new ScriptedExecutor().on('up:s1', failed()).on('up:s3', failed());
      const tolerated = await newDriver(
        store,
        fleet({ strategy: 'sequential', max_failures: 2 }),
        exec,
      );
      await tolerated.start();
      await expectEnds(tolerated, 'succeeded');
      expect(exec.executed).toEqual(['up:s1', 'up:s2', 'up:s3', 'up:s4', 'up:s5']);

      const exec2 = new ScriptedExecutor().on('up:s1', failed()).on('up:s3', failed());
      const stopped = await newDriver(
        store,
        fleet({ strategy: 'sequential', max_failures: 1 }, { on_failure: 'fail' }),
        exec2,
      );
      await stopped.start();
      await expectEnds(stopped, 'failed');
      expect(exec2.executed).toEqual(['up:s1', 'up:s2', 'up:s3']);
    });

    test('canary runs the canaries, waits for approval, then the rest', async () => {
      const exec = new ScriptedExecutor();
      const driver = await newDriver(
        store,
        fleet({ strategy: 'canary', canary_percentage: 40 }),
        exec,
      );
      await driver.start();
      await until(async () => (await store.getRun(driver.runId))!.status === 'paused');
      expect(exec.executed).toEqual(['up:s1', 'up:s2']);
      const events = await store.events(driver.runId);
      expect(events.some((e) => e.type === 'operation:awaiting_approval')).toBe(true);
      await driver.resume();
      await expectEnds(driver, 'succeeded');
      expect(exec.executed.slice(2).sort()).toEqual(['up:s3', 'up:s4', 'up:s5']);
    });

    test('a failed canary is rolled back and the rest never runs', async () => {
      const exec = new ScriptedExecutor().on('up:s1', failed());
      const driver = await newDriver(
        store,
        fleet({ strategy: 'canary', canary_percentage: 20, canary_promotion: 'auto' }),
        exec,
      );
      await driver.start();
      await expectEnds(driver, 'rolled_back');
      expect(exec.executed).toEqual(['up:s1']);
      expect(exec.undone).toEqual(['up:s1']);
    });
  });

  describe('resume after a crash', () => {
    test('a finished task never runs again; one caught mid-flight is retried as a new attempt', async () => {
      const exec = new ScriptedExecutor().hold('b:x');
      const workflow = {
        name: 'crash',
        retry_policy: { max_attempts: 3, initial_delay: 0 },
        operations: [
          op('a', ['x']),
          op('b', ['x'], { depends_on: ['a'] }),
          op('c', ['x'], { depends_on: ['b'] }),
        ],
      };
      const first = await newDriver(store, workflow, exec);
      await first.start();
      await until(() => exec.held.has('b:x'));
      // The process "dies" here: the first driver is abandoned with b:x in flight.
      const { RunDriver } = await import('../src/engine/run-driver.ts');
      const exec2 = new ScriptedExecutor();
      const second = await RunDriver.load(first.runId, { store, dispatcher: exec2 });
      await second.start();
      await expectEnds(second, 'succeeded');
      expect(exec2.log).toEqual(['b:x#2', 'c:x#1']);
      const attempts = await store.attempts(first.runId, 'b:x');
      expect(attempts.map((a) => [a.attempt, a.status])).toEqual([
        [1, 'interrupted'],
        [2, 'succeeded'],
      ]);
      // Once finished, loading it again runs nothing.
      const exec3 = new ScriptedExecutor();
      const third = await RunDriver.load(first.runId, { store, dispatcher: exec3 });
      await third.start();
      await expectEnds(third, 'succeeded');
      expect(exec3.log).toEqual([]);
    });

    test('a task that was waiting for its retry starts once its delay is over', async () => {
      const workflow = {
        name: 'crash-in-retry-wait',
        retry_policy: { max_attempts: 3, initial_delay: 5 },
        operations: [op('a', ['x'])],
      };
      const first = await newDriver(store, workflow, new ScriptedExecutor().on('a:x', failed()), {
        clock: new _ManualClock(),
      });
      await first.start();
      await until(async () => (await store.loadRun(first.runId))?.tasks[0]?.notBefore !== null);
      // The process "dies" while the task waits: nothing but the resumed driver may start it.
      const { RunDriver } = await import('../src/engine/run-driver.ts');
      const clock = new _ManualClock();
      const exec2 = new ScriptedExecutor();
      const second = await RunDriver.load(first.runId, { store, dispatcher: exec2, clock });
      await second.start();
      clock.advance(4999);
      expect(exec2.log).toEqual([]);
      clock.advance(1);
      await expectEnds(second, 'succeeded');
      expect(exec2.log).toEqual(['a:x#2']);
    });
  });
});
