/**
 * The hub at the protocol level: a real hub on a real loopback socket, a real store, and
 * hand-written agents that send exactly the frames a test needs (stale tokens, resent reports,
 * impostors), which a well-behaved agent never would.
 *
 * @module
 */
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, test, vi } from 'vitest';
import { WebSocket } from 'ws';
import { AgentHub, type AgentHubEvent } from '../src/agents/hub.ts';
import { listenForAgents, type AgentListener } from '../src/agents/ws.ts';
import type { HubMessage } from '../src/agents/protocol.ts';
import type { DispatchHooks, TaskAssignment, TaskReport } from '../src/engine/dispatch.ts';
import type { StepRecord } from '../src/engine/types.ts';
import { createStore, type Store } from '../src/store/index.ts';
import { until } from './helpers/agents.ts';

let store: Store;
let hub: AgentHub;
let listener: AgentListener;
let events: AgentHubEvent[];
const sockets: FakeAgent[] = [];

// One store for the file (each test has its own run and servers); a fresh hub for each test.
beforeAll(async () => {
  store = await createStore({ pglite: { dataDir: 'memory://' } });
});

afterAll(async () => {
  await store.close();
});

let run = 0;
let runId = '';
/** This test's server: servers keep their agents' epochs in the store across tests. */
let W = '';

beforeEach(async () => {
  runId = `run-${++run}`;
  W = `web-${run}`;
  hub = new AgentHub({
    store: store.agents,
    heartbeatMs: 50,
    staleAfterMs: 400,
    agentWaitMs: 5000,
  });
  events = [];
  hub.subscribe((e) => events.push(e));
  listener = await listenForAgents(hub);
});

afterEach(async () => {
  for (const s of sockets.splice(0)) s.ws.terminate();
  await hub.close();
  await listener.close();
});

/** An agent speaking the protocol by hand. */
class FakeAgent {
  readonly received: HubMessage[] = [];
  closed: { code: number; reason: string } | undefined;
  private waiters: Array<() => void> = [];

  constructor(readonly ws: WebSocket) {
    ws.on('message', (d) => {
      this.received.push(JSON.parse(d.toString()) as HubMessage);
      for (const w of this.waiters.splice(0)) w();
    });
    ws.on('close', (code, reason) => {
      this.closed = { code, reason: reason.toString() };
      for (const w of this.waiters.splice(0)) w();
    });
  }

  static async connect(token: string | undefined, url = listener.url): Promise<FakeAgent> {
    const ws = new WebSocket(`${url.replace('http', 'ws')}/agents`, {
      headers: token ? { authorization: `Bearer ${token}` } : {},
    });
    const agent = new FakeAgent(ws);
    sockets.push(agent);
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    return agent;
  }

  send(message: Record<string, unknown>): void {
    this.ws.send(JSON.stringify(message));
  }

  hello(server: string, agentId: string, leases: unknown[] = []): void {
    this.send({
      type: 'agent:hello',
      protocol: 1,
      agentId,
      server,
      version: 'test',
      capabilities: { steps: ['echo'], slots: 1, platform: 'linux', arch: 'x64', hostname: 'h' },
      leases,
      draining: false,
    });
  }

  /** Waits for the first message of a type (after `from`), or for the close. */
  async next<TType extends HubMessage['type']>(
    type: TType,
    from = 0,
  ): Promise<Extract<HubMessage, { type: TType }>> {
    for (;;) {
      const found = this.received.slice(from).find((m) => m.type === type);
      if (found) return found as Extract<HubMessage, { type: TType }>;
      if (this.closed) throw new Error(`closed ${this.closed.code}: ${this.closed.reason}`);
      await new Promise<void>((resolve) => this.waiters.push(resolve));
    }
  }

  async closedWith(): Promise<{ code: number; reason: string }> {
    while (!this.closed) await new Promise<void>((resolve) => this.waiters.push(resolve));
    return this.closed;
  }
}

async function welcomed(server: string, agentId = `${server}-a`): Promise<FakeAgent> {
  const agent = await FakeAgent.connect(hub.issueToken(server));
  agent.hello(server, agentId);
  await agent.next('hub:welcome');
  return agent;
}

function assignment(server: string, taskId = `t@${server}`, attempt = 1): TaskAssignment {
  return {
    runId,
    task: {
      id: taskId,
      operation: 'op',
      item: server,
      server,
      queue: `server:${server}`,
      steps: [
        { name: 'say', type: 'echo', params: {}, required: true, continue_on_failure: false },
      ],
      compensation: [],
    },
    attempt,
    mode: 'execute',
    timeoutMs: 60_000,
    server: { name: server, provider: 'local', labels: {} },
  };
}

/** Dispatches through the hub, recording what reaches the engine's hooks. */
function dispatch(a: TaskAssignment, controller = new AbortController()) {
  const seen = { outputs: [] as string[], steps: [] as StepRecord[] };
  const hooks: DispatchHooks = {
    signal: controller.signal,
    output: (_stream, line) => seen.outputs.push(line),
    step: (r) => seen.steps.push(r),
  };
  return { report: hub.dispatch(a, hooks), seen };
}

const ok: TaskReport = {
  status: 'succeeded',
  result: { steps: [{ index: 0, name: 'say', status: 'succeeded' }] },
};

describe('leases', () => {
  test('each grant of a task gets a higher token, kept in the store', async () => {
    const agent = await welcomed(W);
    for (const expected of [1, 2, 3]) {
      const from = agent.received.length;
      const { report } = dispatch(assignment(W, `t@${W}`, expected));
      const assign = await agent.next('task:assign', from);
      expect(assign.lease.token).toBe(expected);
      agent.send({ type: 'task:report', lease: assign.lease, seq: 1, report: ok });
      expect(await report).toEqual(ok);
    }
    // Lease writes are batched per turn: the last one lands just after its report is delivered.
    await vi.waitFor(async () =>
      expect(await store.agents.getLease(runId, `t@${W}`)).toMatchObject({
        token: 3,
        state: 'reported',
        agentId: `${W}-a`,
      }),
    );
  });

  test('a report under a stale or unknown token is refused and delivers nothing', async () => {
    const agent = await welcomed(W);
    const { report } = dispatch(assignment(W));
    const assign = await agent.next('task:assign');
    let settled = false;
    void report.then(() => (settled = true));
    const stale = { ...assign.lease, token: assign.lease.token + 5 };
    agent.send({ type: 'task:report', lease: stale, seq: 1, report: ok });
    const revoke = await agent.next('task:revoke');
    expect(revoke.lease).toEqual(stale);
    expect(settled).toBe(false);
    expect(events).toContainEqual(expect.objectContaining({ type: 'lease:refused', lease: stale }));
    agent.send({ type: 'task:report', lease: assign.lease, seq: 1, report: ok });
    expect(await report).toEqual(ok);
  });

  test('resent output, steps and reports are delivered once, and a resent report is acknowledged again', async () => {
    const agent = await welcomed(W);
    const { report, seen } = dispatch(assignment(W));
    const { lease } = await agent.next('task:assign');
    const out = (seq: number, line: string) =>
      agent.send({ type: 'task:output', lease, seq, stream: 'stdout', line });
    const record = { index: 0, name: 'say', status: 'succeeded' };
    out(1, 'one');
    out(2, 'two');
    out(1, 'one'); // sent again after a reconnect
    agent.send({ type: 'task:step', lease, seq: 3, record });
    agent.send({ type: 'task:step', lease, seq: 3, record });
    agent.send({ type: 'task:report', lease, seq: 4, report: ok });
    expect(await report).toEqual(ok);
    const reportAcks = () =>
      agent.received.filter((m) => m.type === 'task:ack' && m.seq === 4).length;
    await until(() => reportAcks() === 1);
    agent.send({ type: 'task:report', lease, seq: 4, report: ok });
    await until(() => reportAcks() === 2);
    expect(seen.outputs).toEqual(['one', 'two']);
    expect(seen.steps).toEqual([record]);
    expect(events.filter((e) => e.type === 'lease:reported')).toEqual([
      expect.objectContaining({ duplicate: false }),
      expect.objectContaining({ duplicate: true }),
    ]);
  });
});

describe('agents', () => {
  test('a silent agent is lost: its task fails over as agent-lost and its lease is revoked', async () => {
    const agent = await welcomed(W);
    const { report, seen } = dispatch(assignment(W));
    const { lease } = await agent.next('task:assign');
    agent.send({
      type: 'task:step',
      lease,
      seq: 1,
      record: { index: 0, name: 'say', status: 'succeeded' },
    });
    const r = await report; // no heartbeats: lost after 400 ms
    expect(r.status).toBe('failed');
    expect(r.failure).toMatchObject({ type: 'agent-lost' });
    expect(r.result.steps).toEqual(seen.steps);
    expect((await agent.closedWith()).code).toBe(4408);
    expect(await store.agents.getLease(runId, `t@${W}`)).toMatchObject({ state: 'revoked' });
  });

  test('a second agent is refused while the first is live', async () => {
    const first = await welcomed('live-1', 'first');
    const beat = setInterval(() => first.send({ type: 'agent:heartbeat', running: 0 }), 50);
    try {
      const second = await FakeAgent.connect(hub.issueToken('live-1'));
      second.hello('live-1', 'second');
      const closed = await second.closedWith();
      expect(closed.code).toBe(4409);
      expect(second.received[0]).toMatchObject({
        type: 'hub:reject',
        message: expect.stringContaining('served by live agent first'),
      });
      expect(hub.agents().map((a) => a.agentId)).toEqual(['first']);
    } finally {
      clearInterval(beat);
    }
  });

  test('an agent replaced by a newer one is refused when it comes back, by epoch', async () => {
    const old = await welcomed('epoch-1', 'old');
    old.ws.terminate();
    // Lost after 400 ms of silence; a newer agent registers, then leaves cleanly.
    await new Promise((r) => setTimeout(r, 500));
    const newer = await welcomed('epoch-1', 'newer');
    newer.send({ type: 'agent:bye' });
    newer.ws.close();
    await newer.closedWith();
    const back = await FakeAgent.connect(hub.issueToken('epoch-1'));
    back.hello('epoch-1', 'old', [{ runId, taskId: 't', token: 1, attempt: 1, state: 'done' }]);
    expect((await back.closedWith()).code).toBe(4409);
    expect(back.received[0]).toMatchObject({
      type: 'hub:reject',
      message: expect.stringContaining('replaced by a newer agent of server epoch-1 (epoch 2 > 1)'),
    });
    expect((await store.agents.listAgents('epoch-1')).map((a) => [a.id, a.epoch])).toEqual([
      ['newer', 2],
      ['old', 1],
    ]);
  });

  test('an agent that reconnects gets the assignment it missed, under the same lease', async () => {
    const agent = await welcomed(W, 'a');
    const { report } = dispatch(assignment(W));
    const { lease } = await agent.next('task:assign');
    agent.ws.terminate();
    const again = await FakeAgent.connect(hub.issueToken(W));
    again.hello(W, 'a'); // it holds nothing: the assignment was lost on the way
    const resent = await again.next('task:assign');
    expect(resent.lease).toEqual(lease);
    again.send({ type: 'task:report', lease, seq: 1, report: ok });
    expect(await report).toEqual(ok);
  });

  test('a draining agent is sent nothing; the task waits for another agent', async () => {
    const agent = await welcomed(W, 'drainer');
    agent.send({ type: 'agent:draining' });
    await new Promise((r) => setTimeout(r, 50));
    const { report } = dispatch(assignment(W));
    await new Promise((r) => setTimeout(r, 100));
    expect(agent.received.some((m) => m.type === 'task:assign')).toBe(false);
    expect(hub.queued(W)).toBe(1);
    agent.send({ type: 'agent:bye' });
    agent.ws.close();
    const next = await welcomed(W, 'successor');
    const { lease } = await next.next('task:assign');
    next.send({ type: 'task:report', lease, seq: 1, report: ok });
    expect(await report).toEqual(ok);
  });

  test('a task waiting for a server with no agent fails as agent-unavailable, naming the fix', async () => {
    const quick = new AgentHub({ store: store.agents, heartbeatMs: 50, agentWaitMs: 100 });
    try {
      const r = await quick.dispatch(assignment('web-9'), {
        signal: new AbortController().signal,
        output: () => {},
        step: () => {},
      });
      expect(r.failure).toMatchObject({
        type: 'agent-unavailable',
        message: expect.stringContaining('muster agent --server web-9'),
      });
    } finally {
      await quick.close();
    }
  });

  test('a cancelled task is cancelled on its agent, whose report still counts', async () => {
    const agent = await welcomed(W);
    const controller = new AbortController();
    const { report } = dispatch(assignment(W), controller);
    const { lease } = await agent.next('task:assign');
    controller.abort(new Error('terminated'));
    const cancel = await agent.next('task:cancel');
    expect(cancel).toMatchObject({ lease, reason: 'terminated' });
    const cancelled: TaskReport = {
      status: 'failed',
      result: { steps: [] },
      failure: { type: 'cancelled', message: 'aborted' },
    };
    agent.send({ type: 'task:report', lease, seq: 1, report: cancelled });
    expect(await report).toEqual(cancelled);
  });
});

describe('tokens and messages', () => {
  test('connections without a valid token, or for another server, are refused', async () => {
    const none = await FakeAgent.connect(undefined);
    expect((await none.closedWith()).code).toBe(4401);
    const wrong = await FakeAgent.connect(hub.issueToken(W));
    wrong.hello('web-2', 'x');
    expect(await wrong.closedWith()).toMatchObject({ code: 4403 });
    expect(wrong.received[0]).toMatchObject({
      message: expect.stringContaining(`serves server "${W}" only, not "web-2"`),
    });
  });

  test('API tokens: role agent binds to the server in its name; other roles are forbidden', async () => {
    const viaApi = await listenWith((token) =>
      token === 'agent-secret'
        ? { role: 'agent', name: 'web-3' }
        : token === 'viewer-secret'
          ? { role: 'viewer', name: 'viewer-1' }
          : undefined,
    );
    try {
      const viewer = await FakeAgent.connect('viewer-secret', viaApi.url);
      expect((await viewer.closedWith()).code).toBe(4403);
      const agent = await FakeAgent.connect('agent-secret', viaApi.url);
      agent.hello('web-3', 'api-agent');
      expect((await agent.next('hub:welcome')).server).toBe('web-3');
    } finally {
      await viaApi.close();
    }
  });

  test('a malformed message closes the connection with a protocol error that says what is wrong', async () => {
    const agent = await FakeAgent.connect(hub.issueToken(W));
    agent.send({ type: 'agent:hello', protocol: 1, agentId: 'x', server: 'web 1' });
    const closed = await agent.closedWith();
    expect(closed.code).toBe(4400);
    expect(closed.reason).toMatch(/agent:hello/);
  });
});

interface ApiListener {
  readonly url: string;
  close(): Promise<void>;
}

/** A listener whose tokens are checked by an API-style `verify`. */
async function listenWith(
  verify: (token: string | undefined) => { role: string; name: string } | undefined,
): Promise<ApiListener> {
  const { createServer } = await import('node:http');
  const { attachAgentSocket } = await import('../src/agents/ws.ts');
  const server = createServer();
  const endpoint = attachAgentSocket(server, { hub, verify });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    url: `ws://127.0.0.1:${port}`,
    async close() {
      await endpoint.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
