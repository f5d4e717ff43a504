/**
 * A remote agent against `muster server`: the agent connects to the API server's `/agents` with
 * a token from the tokens file bound to its server, and runs that server's tasks.
 *
 * @module
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startServer, type RunningServer } from '../src/api/server.ts';
import { createOrchestrator } from '../src/orchestrator.ts';
import {
  FAST_AGENTS,
  loggedStep,
  readLog,
  spawnAgent,
  type AgentProcess,
} from './helpers/agents.ts';

const OPERATOR = 'operator-secret-0123456789';
const AGENT = 'agent-secret-for-remote-1';

let dir: string;
let server: RunningServer;
let agent: AgentProcess | undefined;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'muster-agent-server-'));
  const tokensFile = join(dir, 'tokens');
  await writeFile(tokensFile, `operator:${OPERATOR}\nagent:${AGENT}:remote-1\n`);
  // No local agent is started for a server whose agent runs elsewhere: it must come to us.
  const orchestrator = await createOrchestrator(
    { stateDir: join(dir, 'state') },
    { agents: { ...FAST_AGENTS, autoStart: false } },
  );
  server = await startServer({ port: 0, tokensFile, orchestrator, log: () => {} });
});

afterAll(async () => {
  if (agent?.child.exitCode === null) agent.child.kill('SIGKILL');
  await server?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('muster agent against muster server', () => {
  test('connects to /agents with its token from the tokens file and runs its server’s task', async () => {
    agent = spawnAgent({
      server: 'remote-1',
      url: server.url,
      token: AGENT,
      workdir: join(dir, 'remote-1'),
      entry: 'main',
    });
    const log = join(dir, 'steps.log');
    const res = await fetch(`${server.url}/workflows/batch`, {
      method: 'POST',
      headers: { authorization: `Bearer ${OPERATOR}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        name: 'remote',
        servers: [{ name: 'remote-1', provider: 'upcloud' }],
        operations: [
          { id: 'work', type: 'update', target: 'server', steps: [loggedStep(log, { sleep: 0 })] },
        ],
      }),
    });
    expect(res.status, await res.clone().text()).toBe(201);
    const { id } = (await res.json()) as { id: string };
    const deadline = Date.now() + 30_000;
    let status = '';
    while (Date.now() < deadline) {
      const s = await fetch(`${server.url}/workflows/${id}/status`, {
        headers: { authorization: `Bearer ${OPERATOR}` },
      });
      status = ((await s.json()) as { status: string }).status;
      if (status === 'succeeded' || status === 'failed') break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(status).toBe('succeeded');
    const lines = await readLog(log);
    expect(lines.map((l) => [l.what, l.server, l.pid])).toEqual([
      ['start', 'remote-1', agent.pid],
      ['end', 'remote-1', agent.pid],
    ]);
    expect(server.orchestrator.agents!.agents()).toEqual([
      expect.objectContaining({ server: 'remote-1', connected: true, epoch: 1 }),
    ]);
    agent.child.kill('SIGTERM');
    expect(await agent.exited).toBe(0);
  });
});
