/**
 * bench/fleet: a no-op rolling update over 200 agents, each on its own WebSocket connection to
 * the orchestrator (several agents per process: 4 worker processes of 50 by default), against
 * the ideal time of the rollout, `batches × batch_delay`.
 *
 * Printed: the time to connect the fleet, the rollout's total time, the ideal, and the overhead
 * per server, `(total − ideal) / servers`. Target: total ≤ 1.1 × ideal + 5 ms × servers.
 *
 * Run: `npm run bench:fleet`. Knobs (environment): BENCH_SERVERS (200), BENCH_BATCH (20),
 * BENCH_DELAY seconds (0.5), BENCH_PROCS (4).
 *
 * @module
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as v from 'valibot';
import { WorkflowSchema, type WorkflowInput } from '../schemas/src/workflow.ts';
import { planWorkflow } from '../orchestrator/src/plan/index.ts';
import { createOrchestrator } from '../orchestrator/src/orchestrator.ts';
import { listenForAgents } from '../orchestrator/src/agents/ws.ts';
import { startAgent, type Agent } from '../orchestrator/src/agents/agent.ts';
import { createStepRegistry } from '../orchestrator/src/steps/registry.ts';

interface WorkerConfig {
  readonly url: string;
  readonly root: string;
  readonly agents: ReadonlyArray<{ readonly server: string; readonly token: string }>;
}

const env = (name: string, fallback: number) => Number(process.env[name] ?? fallback);

if (process.argv.includes('--worker')) {
  await worker();
} else {
  await main();
}

/** Runs a share of the fleet's agents in this process until stdin closes. */
async function worker(): Promise<void> {
  // The config is the first line; the pipe stays open until the bench is over.
  const line = await new Promise<string>((resolve) => {
    let input = '';
    const onData = (chunk: Buffer) => {
      input += chunk.toString();
      const end = input.indexOf('\n');
      if (end < 0) return;
      process.stdin.off('data', onData);
      resolve(input.slice(0, end));
    };
    process.stdin.on('data', onData);
  });
  const config = JSON.parse(line) as WorkerConfig;
  const registry = createStepRegistry();
  const agents: Agent[] = config.agents.map(({ server, token }) =>
    startAgent({
      server,
      token,
      orchestrator: config.url,
      workdir: join(config.root, server),
      registry,
      reconnectMaxMs: 1000,
    }),
  );
  process.stdin.once('end', () => {
    for (const a of agents) a.stop('the bench is over');
  });
  process.stdin.resume();
  await Promise.all(agents.map((a) => a.done));
}

async function main(): Promise<void> {
  const servers = env('BENCH_SERVERS', 200);
  const batch = env('BENCH_BATCH', 20);
  const delay = env('BENCH_DELAY', 0.5);
  const procs = Math.min(env('BENCH_PROCS', 4), servers);
  const dir = await mkdtemp(join(tmpdir(), 'muster-bench-fleet-'));
  const orchestrator = await createOrchestrator(
    { stateDir: join(dir, 'state'), concurrency: Math.max(64, batch) },
    // The bench starts its own agents; none is started for a server that lacks one.
    { agents: { autoStart: false, hub: { heartbeatMs: 2000, agentWaitMs: 120_000 } } },
  );
  const hub = orchestrator.agents!;
  const listener = await listenForAgents(hub);
  const names = Array.from({ length: servers }, (_, i) => `bench-${i + 1}`);
  const workers: ChildProcess[] = [];
  try {
    const connectStart = performance.now();
    for (let p = 0; p < procs; p++) {
      const share = names.filter((_, i) => i % procs === p);
      const child = spawn(
        process.execPath,
        ['--import', import.meta.resolve('tsx'), fileURLToPath(import.meta.url), '--worker'],
        { stdio: ['pipe', 'inherit', 'inherit'] },
      );
      const config: WorkerConfig = {
        url: listener.url,
        root: join(dir, 'servers'),
        agents: share.map((server) => ({ server, token: hub.issueToken(server) })),
      };
      child.stdin!.write(`${JSON.stringify(config)}\n`);
      workers.push(child);
    }
    process.stderr.write(`connecting ${servers} agents in ${procs} processes…\n`);
    await within(120_000, 'the fleet did not connect', async () => {
      while (hub.agents().filter((a) => a.connected).length < servers) {
        await new Promise((r) => setTimeout(r, 20));
      }
    });
    const connectMs = performance.now() - connectStart;

    const input: WorkflowInput = {
      name: 'bench-fleet',
      servers: names.map((name) => ({ name, provider: 'local' })),
      retry_policy: { max_attempts: 1 },
      operations: [
        {
          id: 'noop-update',
          type: 'update',
          target: 'server',
          rollout: { strategy: 'rolling', batch_size: batch, batch_delay: delay },
          steps: [{ name: 'noop', type: 'echo', params: { message: 'ok' } }],
        },
      ],
    };
    const workflow = v.parse(WorkflowSchema, input);
    const plan = planWorkflow(workflow);
    const { run } = await orchestrator.submit(workflow, plan);
    const batches = Math.ceil(servers / batch);
    const idealMs = batches * delay * 1000;
    process.stderr.write(`rolling out over ${servers} servers…\n`);
    const start = performance.now();
    const driver = await orchestrator.drive(run.id);
    const status = await within(
      10 * idealMs + 30_000,
      'the rollout did not finish',
      () => driver.done,
    ).catch(async (e: unknown) => {
      const busy = hub.agents().filter((a) => a.running > 0 || !a.connected);
      const queued = names.filter((n) => hub.queued(n) > 0);
      const snap = await orchestrator.store.loadRun(run.id);
      const running = snap?.tasks.filter((t) => t.status === 'running').map((t) => t.id);
      const counts: Record<string, number> = {};
      for (const t of snap?.tasks ?? []) counts[t.status] = (counts[t.status] ?? 0) + 1;
      process.stderr.write(
        `run ${snap?.run.status}, driver ${driver.runStatus}, tasks ${JSON.stringify(counts)}, ops ${JSON.stringify(snap?.operations)}\n`,
      );
      process.stderr.write(
        `${String(e)}\nbusy or gone agents: ${JSON.stringify(busy)}\nqueued: ${queued.join(' ')}\nrunning tasks: ${running?.join(' ')}\n`,
      );
      throw e;
    });
    const totalMs = performance.now() - start;
    const targetMs = 1.1 * idealMs + 5 * servers;
    const perServer = (totalMs - idealMs) / servers;
    const row = (label: string, value: string) => console.log(`${label.padEnd(28)} ${value}`);
    console.log(
      `bench/fleet: ${servers} agents in ${procs} processes, rolling batch_size ${batch}, batch_delay ${delay}s`,
    );
    row('fleet connected in', `${connectMs.toFixed(0)} ms`);
    row('run status', status);
    row('total', `${totalMs.toFixed(0)} ms`);
    row('ideal (batches × delay)', `${idealMs.toFixed(0)} ms (${batches} × ${delay * 1000} ms)`);
    row('overhead per server', `${perServer.toFixed(2)} ms`);
    // The rollout waits between batches only: against (batches − 1) × delay, nothing is hidden.
    const strictMs = (batches - 1) * delay * 1000;
    row(
      'overhead vs (batches−1)×delay',
      `${((totalMs - strictMs) / servers).toFixed(2)} ms per server (${(totalMs - strictMs).toFixed(0)} ms)`,
    );
    row(
      'target (1.1 × ideal + 5 ms/srv)',
      `${targetMs.toFixed(0)} ms: ${totalMs <= targetMs ? 'met' : 'MISSED'}`,
    );
    if (status !== 'succeeded' || totalMs > targetMs) process.exitCode = 1;
  } finally {
    for (const w of workers) w.stdin?.end();
    await Promise.all(
      workers.map((w) => (w.exitCode !== null ? undefined : new Promise((r) => w.once('exit', r)))),
    );
    await orchestrator.close();
    await listener.close();
    await rm(dir, { recursive: true, force: true });
  }
}

/** Runs `fn`, failing with the hub's state when it takes longer than `ms`. */
async function within<T>(ms: number, what: string, fn: () => Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} within ${ms} ms`)), ms);
  });
  try {
    return await Promise.race([fn(), timeout]);
  } finally {
    clearTimeout(timer);
  }
}
