/**
 * `npm run cluster:demo`: the topology of docker-compose.yml — PostgreSQL, the orchestrator
 * replicas, one agent per server — as local processes, for machines without Docker.
 *
 * PostgreSQL: `DATABASE_URL` when set (its database is used as it is), otherwise a private server
 * started from this machine's PostgreSQL binaries in a temporary directory. Tokens are made up at
 * start and printed. Replicas listen on 7070, 7071, … (or `--port BASE`). Ctrl-C stops it all.
 *
 *   npm run cluster:demo                        # run until Ctrl-C
 *   npm run cluster:demo -- --smoke             # submit examples/compose-fleet.cue, kill the
 *                                               # replica driving it, wait for it to succeed
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import {
  ROOT,
  readComposeTopology,
  startAgentProcess,
  startReplicaProcess,
  type MusterProcess,
  type ReplicaProcess,
} from './topology.ts';
import { startPrivatePostgres, type PrivatePostgres } from './private-postgres.ts';

const { values: flags } = parseArgs({
  options: {
    port: { type: 'string', default: '7070' },
    smoke: { type: 'boolean', default: false },
    quiet: { type: 'boolean', default: false },
  },
});

const say = (line: string) => process.stderr.write(`cluster: ${line}\n`);
const topology = await readComposeTopology();
const dir = await mkdtemp(join(tmpdir(), 'muster-cluster-demo-'));
let pg: PrivatePostgres | undefined;
const processes: MusterProcess[] = [];

const stop = async (code: number) => {
  for (const p of processes) p.child.kill('SIGTERM');
  await Promise.race([
    Promise.all(processes.map((p) => p.exited)),
    new Promise((r) => setTimeout(r, 10_000)),
  ]);
  for (const p of processes) p.child.kill('SIGKILL');
  await pg?.stop();
  await rm(dir, { recursive: true, force: true });
  process.exit(code);
};
process.once('SIGINT', () => void stop(0));
process.once('SIGTERM', () => void stop(0));

try {
  let databaseUrl = process.env['DATABASE_URL'];
  if (!databaseUrl) {
    say('DATABASE_URL is not set: starting a PostgreSQL of its own (initdb + pg_ctl)');
    pg = await startPrivatePostgres();
    databaseUrl = pg.url;
  }
  const token = () => randomBytes(12).toString('hex');
  const operator = token();
  const agentTokens = new Map(topology.agents.map((a) => [a.server, token()]));
  const tokensFile = join(dir, 'tokens');
  await writeFile(
    tokensFile,
    [
      `operator:${operator}:demo-operator`,
      ...[...agentTokens].map(([server, t]) => `agent:${t}:${server}`),
    ].join('\n'),
    { mode: 0o600 },
  );
  const echo = flags.quiet ? undefined : (text: string) => process.stderr.write(text);

  const replicas = new Map<string, ReplicaProcess>();
  let port = Number(flags.port);
  for (const id of topology.replicas) {
    const replica = await startReplicaProcess({
      id,
      databaseUrl,
      tokensFile,
      stateDir: join(dir, id),
      port: port++,
      ...(echo ? { echo } : {}),
    });
    replicas.set(id, replica);
    processes.push(replica);
    say(`replica ${id} on ${replica.url}`);
  }
  for (const agent of topology.agents) {
    const urls = agent.replicas.map((r) => replicas.get(r)?.url).filter((u) => u !== undefined);
    processes.push(
      startAgentProcess({
        server: agent.server,
        urls,
        token: agentTokens.get(agent.server)!,
        workdir: join(dir, 'servers', agent.server),
        ...(echo ? { echo } : {}),
      }),
    );
    say(`agent of ${agent.server} → ${urls.join(', ')}`);
  }
  const first = [...replicas.values()][0]!;
  say(
    `ready. Try:\n\n  export MUSTER_SERVER=${first.url} MUSTER_TOKEN=${operator}\n  npx muster batch submit examples/compose-fleet.cue --watch\n`,
  );

  if (flags.smoke) await stop(await smoke(replicas, operator));
} catch (e: unknown) {
  say(`failed: ${e instanceof Error ? e.message : String(e)}`);
  await stop(1);
}

/** Submits the compose example, kills the replica driving it, and waits for it to succeed. */
async function smoke(replicas: Map<string, ReplicaProcess>, operator: string): Promise<number> {
  const { readFile } = await import('node:fs/promises');
  const list = [...replicas.values()];
  const api = (r: ReplicaProcess, path: string, init: RequestInit = {}) =>
    fetch(`${r.url}${path}`, {
      ...init,
      headers: { authorization: `Bearer ${operator}`, ...(init.headers as object) },
    });
  const source = await readFile(join(ROOT, 'examples', 'compose-fleet.cue'), 'utf8');
  const submitted = await api(list[0]!, '/workflows/batch', {
    method: 'POST',
    headers: { 'content-type': 'application/x-cue' },
    body: source,
  });
  const { id } = (await submitted.json()) as { id: string };
  say(`submitted ${id} to ${list[0]!.id}; killing it in 2 s`);
  await new Promise((r) => setTimeout(r, 2000));
  list[0]!.child.kill('SIGKILL');
  const survivor = list[1] ?? list[0]!;
  for (let i = 0; i < 240; i++) {
    const res = await api(survivor, `/workflows/${id}/status`).catch(() => undefined);
    const status = res?.ok ? ((await res.json()) as { status: string }).status : undefined;
    if (status && ['succeeded', 'failed', 'cancelled', 'rolled_back'].includes(status)) {
      say(`run ${id} ${status} (driven on by ${survivor.id})`);
      return status === 'succeeded' ? 0 : 3;
    }
    await new Promise((r) => setTimeout(r, 500));
  }
  say(`run ${id} did not finish in 2 minutes`);
  return 1;
}
