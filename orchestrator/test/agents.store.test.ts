/**
 * The agent store on PGlite: epochs per server, and leases whose token grows at every grant and
 * whose reports are accepted once.
 *
 * @module
 */
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createStore, type Store } from '../src/store/index.ts';

let store: Store;

beforeAll(async () => {
  store = await createStore({ pglite: { dataDir: 'memory://' } });
});

afterAll(async () => {
  await store.close();
});

const grant = (taskId: string, agentId: string, attempt = 1) =>
  store.agents.grantLease({
    runId: 'run',
    taskId,
    attempt,
    mode: 'execute',
    agentId,
    server: 'web-1',
  });

describe('agent epochs', () => {
  test('each new agent of a server gets the next epoch; a known one keeps its own', async () => {
    const a = await store.agents.registerAgent({ id: 'a', server: 's1', version: '1' });
    const b = await store.agents.registerAgent({ id: 'b', server: 's1', version: '1' });
    const other = await store.agents.registerAgent({ id: 'c', server: 's2', version: '1' });
    const aAgain = await store.agents.registerAgent({ id: 'a', server: 's1', version: '2' });
    expect([a.epoch, b.epoch, other.epoch]).toEqual([1, 2, 1]);
    expect(aAgain).toEqual({ epoch: 1, newest: 2, server: 's1', known: true });
  });

  test('agents registering at once for one server get different epochs', async () => {
    const regs = await Promise.all(
      Array.from({ length: 8 }, (_, i) =>
        store.agents.registerAgent({ id: `race-${i}`, server: 'race', version: '1' }),
      ),
    );
    expect(regs.map((r) => r.epoch).sort((x, y) => x - y)).toEqual([1, 2, 3, 4, 5, 6, 7, 8]);
  });

  test('an id registered for one server is not taken over by another', async () => {
    await store.agents.registerAgent({ id: 'mine', server: 'home', version: '1' });
    const clash = await store.agents.registerAgent({ id: 'mine', server: 'away', version: '1' });
    expect(clash.server).toBe('home');
  });
});

describe('task leases', () => {
  test('every grant of a task increments its token', async () => {
    expect(await grant('t1', 'a')).toBe(1);
    expect(await grant('t1', 'b', 2)).toBe(2);
    expect(await grant('t2', 'a')).toBe(1);
    expect(await store.agents.getLease('run', 't1')).toMatchObject({
      token: 2,
      attempt: 2,
      agentId: 'b',
      state: 'granted',
    });
  });

  test('a report is accepted once, then seen as a duplicate; an older token is stale', async () => {
    const token = await grant('t3', 'a');
    const key = { runId: 'run', taskId: 't3', token };
    expect(await store.agents.completeLease(key)).toBe('accepted');
    expect(await store.agents.completeLease(key)).toBe('duplicate');
    const next = await grant('t3', 'a', 2);
    expect(await store.agents.completeLease(key)).toBe('stale');
    expect(await store.agents.completeLease({ ...key, token: next })).toBe('accepted');
  });

  test("revoking an agent's leases makes its reports stale and spares other agents' leases", async () => {
    const mine = await grant('t4', 'lost');
    const theirs = await grant('t5', 'alive');
    const revoked = await store.agents.revokeAgentLeases('lost');
    expect(revoked).toEqual([{ runId: 'run', taskId: 't4', token: mine }]);
    expect(await store.agents.completeLease({ runId: 'run', taskId: 't4', token: mine })).toBe(
      'stale',
    );
    expect(await store.agents.completeLease({ runId: 'run', taskId: 't5', token: theirs })).toBe(
      'accepted',
    );
  });
});
