/**
 * Network cuts, fencing and tokens, with real `muster agent` processes that the tests start
 * themselves and connect through a TCP proxy they control.
 *
 * @module
 */
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import { listenForAgents, type AgentListener } from '../src/agents/ws.ts';
import type { RunEvent } from '../src/engine/types.ts';
import {
  FAST_AGENTS,
  TcpProxy,
  loggedStep,
  readLog,
  spawnAgent,
  startFleet,
  until,
  type AgentProcess,
  type Fleet,
} from './helpers/agents.ts';

interface Setup {
  fleet: Fleet;
  listener: AgentListener;
  proxy: TcpProxy;
}

async function setup(staleAfterMs: number): Promise<Setup> {
  const fleet = await startFleet({
    ...FAST_AGENTS,
    hub: { heartbeatMs: 100, staleAfterMs, agentWaitMs: 30_000 },
    autoStart: false,
  });
  const listener = await listenForAgents(fleet.hub);
  const proxy = await TcpProxy.start(listener.url);
  return { fleet, listener, proxy };
}

async function teardown(s: Setup | undefined): Promise<void> {
  await s?.proxy.close();
  await s?.fleet.close();
  await s?.listener.close();
}

const agents: AgentProcess[] = [];
afterEach(() => {
  for (const a of agents.splice(0)) if (a.child.exitCode === null) a.child.kill('SIGKILL');
});

function startAgent(s: Setup, server: string, options: { direct?: boolean } = {}): AgentProcess {
  const agent = spawnAgent({
    server,
    url: options.direct ? s.listener.url : s.proxy.url,
    token: s.fleet.hub.issueToken(server),
    workdir: join(s.fleet.dir, 'servers', server),
  });
  agents.push(agent);
  return agent;
}

/** A workflow of one task on `server`: five output lines, a pause, the logged step. */
function chatty(server: string, log: string, sleep: number) {
  return {
    name: `chatty-${server}`,
    servers: [{ name: server, provider: 'local' as const }],
    retry_policy: { max_attempts: 3, initial_delay: 0, max_delay: 0 },
    operations: [
      {
        id: 'work',
        type: 'update' as const,
        target: 'server' as const,
        steps: [
          {
            name: 'chat',
            type: 'script' as const,
            params: { command: 'sh', args: ['-c', 'for i in 1 2 3 4 5; do echo line $i; done'] },
          },
          loggedStep(log, { sleep }),
        ],
      },
    ],
  };
}

function count(events: RunEvent[], type: string, match: (data: never) => boolean = () => true) {
  return events.filter((e) => e.type === type && match(e.data as never)).length;
}

describe('a network cut between an agent and the orchestrator', () => {
  let s: Setup;
  beforeAll(async () => {
    s = await setup(4000);
  });
  afterAll(() => teardown(s));

  test('a report produced while disconnected is sent again on reconnect and counted once', async () => {
    const log = join(s.fleet.dir, 'cut.log');
    startAgent(s, 'net-1');
    const runId = await s.fleet.start(chatty('net-1', log, 0.3));
    await until(async () => (await readLog(log)).some((l) => l.what === 'start'));
    // Nothing gets through while the task finishes: its step record and report wait in the agent.
    s.proxy.blackhole();
    await until(async () => (await readLog(log)).some((l) => l.what === 'end'));
    await new Promise((r) => setTimeout(r, 300));
    s.proxy.cut();
    await new Promise((r) => setTimeout(r, 300));
    s.proxy.restore();

    expect(await s.fleet.settled(runId)).toBe('succeeded');
    const events = await s.fleet.orchestrator.store.events(runId);
    for (let i = 1; i <= 5; i++) {
      expect(count(events, 'task:output', (d: { line: string }) => d.line === `line ${i}`)).toBe(1);
    }
    expect(count(events, 'task:step')).toBe(2);
    expect(count(events, 'task:succeeded')).toBe(1);
    const attempts = await s.fleet.orchestrator.store.attempts(runId);
    expect(attempts.map((a) => a.status)).toEqual(['succeeded']);
    expect((await readLog(log)).map((l) => l.what)).toEqual(['start', 'end']);
    expect(s.fleet.events).toContainEqual(
      expect.objectContaining({ type: 'agent:connected', server: 'net-1', resumed: true }),
    );
  });

  test('a report whose acknowledgement was lost is not delivered twice', async () => {
    const log = join(s.fleet.dir, 'ack.log');
    startAgent(s, 'net-2');
    const runId = await s.fleet.start(chatty('net-2', log, 0.3));
    await until(async () => (await readLog(log)).some((l) => l.what === 'start'));
    // The orchestrator hears the agent, but the agent hears nothing back: no ack arrives.
    s.proxy.blackhole('down');
    expect(await s.fleet.settled(runId)).toBe('succeeded');
    s.proxy.cut();
    await new Promise((r) => setTimeout(r, 200));
    s.proxy.restore();
    // The agent comes back still holding the report; the hub tells it the report is in.
    await until(() =>
      s.fleet.events.some((e) => e.type === 'agent:connected' && e.server === 'net-2' && e.resumed),
    );
    await until(() => agents.at(-1)!.output().includes('report already accepted'));
    const events = await s.fleet.orchestrator.store.events(runId);
    expect(count(events, 'task:succeeded')).toBe(1);
    expect(count(events, 'task:step')).toBe(2);
    expect((await s.fleet.orchestrator.store.attempts(runId)).map((a) => a.status)).toEqual([
      'succeeded',
    ]);
  });
});

describe('fencing and tokens', () => {
  let s: Setup;
  beforeAll(async () => {
    s = await setup(1200);
  });
  afterAll(() => teardown(s));

  test('an agent cut off mid-task stops it, the task runs under a new token on a new agent, and the old agent is refused when it comes back', async () => {
    const log = join(s.fleet.dir, 'fence.log');
    const old = startAgent(s, 'fence-1');
    const runId = await s.fleet.start(chatty('fence-1', log, 3));
    await until(async () => (await readLog(log)).some((l) => l.what === 'start'));
    s.proxy.blackhole();
    // The hub loses the silent agent and fails the attempt over; a new agent takes the retry.
    await until(() =>
      s.fleet.events.some((e) => e.type === 'agent:lost' && e.server === 'fence-1'),
    );
    const fresh = startAgent(s, 'fence-1', { direct: true });
    expect(await s.fleet.settled(runId)).toBe('succeeded');
    // The new agent leaves; the old one comes back, with an older epoch: refused for good.
    fresh.child.kill('SIGTERM');
    expect(await fresh.exited).toBe(0);
    s.proxy.cut(); // ends the old agent's hanging handshakes at once
    s.proxy.restore();
    expect(await old.exited).toBe(1);
    expect(old.output()).toMatch(/ORC1504.*replaced by a newer agent of server fence-1/);

    const lines = await readLog(log);
    // The old agent stopped its own attempt when its lease ran out: attempt 1 never ended.
    expect(lines.map((l) => `${l.what} ${l.attempt}`)).toEqual(['start 1', 'start 2', 'end 2']);
    expect(lines[0]!.pid).not.toBe(lines[1]!.pid);
    expect(old.output()).toContain('stopping it, as it is about to run elsewhere');
    const attempts = await s.fleet.orchestrator.store.attempts(runId);
    expect(attempts.map((a) => [a.status, a.failure?.type ?? null])).toEqual([
      ['failed', 'agent-lost'],
      ['succeeded', null],
    ]);
    const lease = await s.fleet.orchestrator.store.agents.getLease(runId, 'work:fence-1@fence-1');
    expect(lease).toMatchObject({ token: 2, state: 'reported' });
    const reported = s.fleet.events.filter((e) => e.type === 'lease:reported');
    expect(reported.map((e) => e.type === 'lease:reported' && e.lease.token)).toEqual([2]);
  }, 60_000);

  test("a token bound to one server cannot take another server's queue", async () => {
    const agent = spawnAgent({
      server: 'tok-2',
      url: s.listener.url,
      token: s.fleet.hub.issueToken('tok-1'),
      workdir: join(s.fleet.dir, 'servers', 'tok-2'),
      entry: 'main',
    });
    agents.push(agent);
    const unknown = spawnAgent({
      server: 'tok-1',
      url: s.listener.url,
      token: 'not-a-token',
      workdir: join(s.fleet.dir, 'servers', 'tok-1'),
      entry: 'main',
    });
    agents.push(unknown);
    expect(await agent.exited).toBe(2);
    expect(agent.output()).toMatch(/ORC1503.*serves server "tok-1" only, not "tok-2"/);
    expect(await unknown.exited).toBe(2);
    expect(unknown.output()).toMatch(/ORC1502.*the token is unknown/);
    expect(s.fleet.hub.agents().filter((a) => a.server.startsWith('tok-'))).toEqual([]);
  });
});
