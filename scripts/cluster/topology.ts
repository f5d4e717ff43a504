/**
 * The docker-compose topology as local processes: which replicas and agents `docker-compose.yml`
 * declares, and how to start each as a real `muster server` or `muster agent` process. Used by
 * `npm run cluster:demo` and by the cluster tests, so what the tests run is what compose runs.
 *
 * @module
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { musterNodeArgs } from '../muster-entry.ts';

/** The repository root. */
export const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** `node` arguments that start `muster`: compiled when dist/ is current, else from source. */
export const MUSTER_NODE_ARGS: readonly string[] = musterNodeArgs();

/** What docker-compose.yml declares. */
export interface ComposeTopology {
  /** Replica ids (`--replica-id`), in file order. */
  readonly replicas: readonly string[];
  /** Agents: the server each serves, and the replicas it tries, in order. */
  readonly agents: ReadonlyArray<{ readonly server: string; readonly replicas: readonly string[] }>;
}

/** Reads the replicas and agents of a compose file from their commands. */
export async function readComposeTopology(
  file = join(ROOT, 'docker-compose.yml'),
): Promise<ComposeTopology> {
  const doc = parse(await readFile(file, 'utf8'), { merge: true }) as {
    services?: Record<string, { command?: unknown }>;
  };
  const replicas: string[] = [];
  const agents: Array<{ server: string; replicas: string[] }> = [];
  for (const [name, service] of Object.entries(doc.services ?? {})) {
    const command = Array.isArray(service.command) ? service.command.map(String) : [];
    const flag = (f: string) => {
      const i = command.indexOf(f);
      return i >= 0 ? command[i + 1] : undefined;
    };
    if (command[0] === 'server') replicas.push(flag('--replica-id') ?? name);
    if (command[0] === 'agent') {
      const urls = (flag('--orchestrator') ?? '').split(',').filter(Boolean);
      agents.push({
        server: flag('--server') ?? name,
        replicas: urls.map((u) => new URL(u).hostname),
      });
    }
  }
  return { replicas, agents };
}

/** A process started by the topology. */
export interface MusterProcess {
  readonly child: ChildProcess;
  /** Its stdout and stderr so far. */
  output(): string;
  readonly exited: Promise<number | null>;
}

/** A replica process, once it listens. */
export interface ReplicaProcess extends MusterProcess {
  readonly id: string;
  readonly url: string;
}

/** Options of {@link startReplicaProcess}. */
export interface ReplicaProcessOptions {
  readonly id: string;
  readonly databaseUrl: string;
  readonly tokensFile: string;
  readonly stateDir: string;
  /** @default 0, a free port */
  readonly port?: number;
  readonly leaseTtlMs?: number;
  readonly agentHeartbeatMs?: number;
  /** Passes the replica's output on as it comes. */
  readonly echo?: (text: string) => void;
}

function track(child: ChildProcess, echo?: (text: string) => void): MusterProcess {
  let output = '';
  const take = (d: Buffer) => {
    output += d.toString();
    echo?.(d.toString());
  };
  child.stdout?.on('data', take);
  child.stderr?.on('data', take);
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => resolve(code)),
  );
  return { child, output: () => output, exited };
}

/** Starts `muster server` and resolves once it listens. */
export async function startReplicaProcess(options: ReplicaProcessOptions): Promise<ReplicaProcess> {
  const args = [
    ...MUSTER_NODE_ARGS,
    'server',
    '--port',
    String(options.port ?? 0),
    '--database-url',
    options.databaseUrl,
    '--tokens-file',
    options.tokensFile,
    '--state-dir',
    options.stateDir,
    '--replica-id',
    options.id,
    ...(options.leaseTtlMs !== undefined ? ['--lease-ttl', String(options.leaseTtlMs)] : []),
    ...(options.agentHeartbeatMs !== undefined
      ? ['--agent-heartbeat', String(options.agentHeartbeatMs)]
      : []),
  ];
  const child = spawn(process.execPath, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, DATABASE_URL: '' },
  });
  const p = track(child, options.echo);
  const url = await new Promise<string>((resolve, reject) => {
    const check = () => {
      const m = /listening on (http:\/\/\S+)/.exec(p.output());
      if (m) {
        clearInterval(timer);
        resolve(m[1]!);
      }
    };
    const timer = setInterval(check, 20);
    void p.exited.then((code) => {
      clearInterval(timer);
      reject(
        new Error(`replica ${options.id} exited with ${code} before it listened:\n${p.output()}`),
      );
    });
  });
  return { ...p, id: options.id, url };
}

/** Options of {@link startAgentProcess}. */
export interface AgentProcessOptions {
  readonly server: string;
  /** The replicas it tries, in order. */
  readonly urls: readonly string[];
  readonly token: string;
  readonly workdir: string;
  readonly echo?: (text: string) => void;
}

/** Starts `muster agent` for a server, knowing every replica. */
export function startAgentProcess(options: AgentProcessOptions): MusterProcess {
  const child = spawn(
    process.execPath,
    [
      ...musterNodeArgs('agent'),
      'agent',
      '--server',
      options.server,
      '--orchestrator',
      options.urls.join(','),
      '--workdir',
      options.workdir,
    ],
    {
      env: { ...process.env, MUSTER_AGENT_TOKEN: options.token },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  return track(child, options.echo);
}
