import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { WebSocketServer, type WebSocket } from 'ws';
import { createStepRegistry } from '../steps/registry.ts';
import { startAgent, type Agent } from './agent.ts';
import type { AgentMessage } from './protocol.ts';

/** A hub written by hand: it welcomes the agent and lets the test send what it wants. */
interface FakeHub {
  readonly url: string;
  readonly received: AgentMessage[];
  socket(): Promise<WebSocket>;
  send(message: Record<string, unknown>): void;
  next(type: string, from?: number): Promise<AgentMessage>;
  close(): Promise<void>;
}

async function fakeHub(): Promise<FakeHub> {
  const wss = new WebSocketServer({ port: 0, host: '127.0.0.1' });
  await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
  const received: AgentMessage[] = [];
  let current: WebSocket | undefined;
  let waiters: Array<() => void> = [];
  const wake = () => {
    for (const w of waiters.splice(0)) w();
  };
  wss.on('connection', (ws) => {
    current = ws;
    ws.on('message', (d) => {
      const msg = JSON.parse(d.toString()) as AgentMessage;
      received.push(msg);
      if (msg.type === 'agent:hello') {
        ws.send(
          JSON.stringify({
            type: 'hub:welcome',
            agentId: msg.agentId,
            server: msg.server,
            epoch: 1,
            heartbeatMs: 50,
            leaseMs: 60_000,
            revoked: [],
            done: [],
          }),
        );
      }
      wake();
    });
    wake();
  });
  const { port } = wss.address() as { port: number };
  const hub: FakeHub = {
    url: `ws://127.0.0.1:${port}/agents`,
    received,
    async socket() {
      while (!current) await new Promise<void>((r) => waiters.push(r));
      return current;
    },
    send: (m) => current?.send(JSON.stringify(m)),
    async next(type, from = 0) {
      for (;;) {
        const found = received.slice(from).find((m) => m.type === type);
        if (found) return found;
        await new Promise<void>((r) => waiters.push(r));
      }
    },
    async close() {
      waiters = [];
      for (const c of wss.clients) c.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
  return hub;
}

let hub: FakeHub;
let agent: Agent;
let workdir: string;

beforeEach(async () => {
  hub = await fakeHub();
  workdir = await mkdtemp(join(tmpdir(), 'muster-agent-'));
  agent = startAgent({
    server: 'web-1',
    orchestrator: hub.url,
    token: 'unused-by-the-fake-hub',
    workdir,
    registry: createStepRegistry(),
  });
  await hub.next('agent:hello');
});

afterEach(async () => {
  agent.stop();
  await agent.done;
  await hub.close();
  await rm(workdir, { recursive: true, force: true });
});

const lease = (token: number) => ({ runId: 'r', taskId: 't@web-1', token });

function assign(token: number, steps: unknown[]) {
  return {
    type: 'task:assign',
    lease: lease(token),
    assignment: {
      runId: 'r',
      task: {
        id: 't@web-1',
        operation: 'op',
        item: 'web-1',
        server: 'web-1',
        queue: 'server:web-1',
        steps,
        compensation: [],
      },
      attempt: token,
      mode: 'execute',
      timeoutMs: 10_000,
      server: { name: 'web-1', provider: 'local', labels: {} },
    },
  };
}

const step = (name: string, params: Record<string, unknown>, type = 'script') => ({
  name,
  type,
  params,
  required: true,
  continue_on_failure: false,
});

describe('the agent runtime', () => {
  test('runs an assignment once per lease, even when it is sent twice', async () => {
    const message = assign(1, [step('hi', { command: 'sh', args: ['-c', 'echo hi'] })]);
    hub.send(message);
    hub.send(message);
    const report = await hub.next('task:report');
    expect(report).toMatchObject({ lease: lease(1), report: { status: 'succeeded' } });
    const outputs = hub.received.filter((m) => m.type === 'task:output');
    expect(outputs.map((m) => m.type === 'task:output' && m.line)).toEqual(['hi']);
    // Numbered within the lease: output, step record, report.
    const seqs = hub.received.filter((m) => 'seq' in m).map((m) => ('seq' in m ? m.seq : 0));
    expect(seqs).toEqual([1, 2, 3]);
  });

  test('reports an assignment it cannot read as a failure that must not be retried', async () => {
    hub.send(assign(1, [step('odd', {}, 'teleport')]));
    const report = await hub.next('task:report');
    expect(report).toMatchObject({
      lease: lease(1),
      report: {
        status: 'failed',
        failure: {
          type: 'agent-protocol',
          nonRetryable: true,
          message: expect.stringContaining('upgrade the agent'),
        },
      },
    });
  });

  test('draining finishes the running task, refuses new ones, and says goodbye', async () => {
    hub.send(assign(1, [step('nap', { command: 'sleep', args: ['0.3'] })]));
    await new Promise((r) => setTimeout(r, 100));
    agent.drain();
    await hub.next('agent:draining');
    hub.send({ ...assign(2, []), lease: { ...lease(2), taskId: 'other' } });
    expect(await hub.next('task:refused')).toMatchObject({ lease: { taskId: 'other' } });
    const report = await hub.next('task:report');
    expect(report).toMatchObject({ report: { status: 'succeeded' } });
    // The report stays until acknowledged; then the agent leaves.
    if (report.type === 'task:report')
      hub.send({ type: 'task:ack', lease: report.lease, seq: report.seq });
    await hub.next('agent:bye');
    expect(await agent.done).toEqual({ reason: 'drained' });
  });
});
