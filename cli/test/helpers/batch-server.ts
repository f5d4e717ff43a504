/**
 * End-to-end helpers of the `muster batch` and Nushell tests: a real orchestrator server on a
 * free port with its own state directory and tokens, the real CLI in child processes pointed at
 * it, and small workflow files.
 *
 * @module
 */
import { execFile, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer } from '../../../orchestrator/src/api/server.ts';
import type { RunningServer } from '../../../orchestrator/src/api/server.ts';
import type { RunStatus } from '../../../orchestrator/src/engine/types.ts';
import { FINAL_RUN_STATUSES } from '../../../orchestrator/src/engine/types.ts';
import { MUSTER_NODE_ARGS, ROOT } from '../../../orchestrator/test/helpers/cli.ts';
import { createClient } from '../../src/client.ts';
import type { MusterClient } from '../../src/client.ts';

/** The tokens the test server accepts. */
export const TOKENS = { operator: 'op-secret-token', viewer: 'view-secret-token' } as const;

/** A server for one test file, with workflow files beside its state. */
export interface TestServer {
  readonly url: string;
  readonly server: RunningServer;
  /** A client with the operator token, for setting up and checking what the CLI did. */
  readonly client: MusterClient;
  /** Workflow files: `ok` echoes, `fail` exits 3 (then fails), `slow` sleeps 30 s in each of 3 operations, `quick` sleeps 0.3 s in each. */
  readonly files: Readonly<Record<'ok' | 'fail' | 'slow' | 'quick' | 'invalid', string>>;
  /** The temporary directory. */
  readonly dir: string;
  /** The environment for a CLI child: the server, the operator token, no debug output. */
  env(extra?: Record<string, string | undefined>): NodeJS.ProcessEnv;
  /** Waits until a run is in a final state. */
  settle(id: string, timeoutMs?: number): Promise<RunStatus>;
  /** Terminates the runs not yet ended and stops the server. */
  close(): Promise<void>;
}

const sleepStep = (duration: string) => [{ name: 'wait', type: 'sleep', params: { duration } }];

const chain = (name: string, duration: string) => ({
  name,
  operations: ['first', 'second', 'third'].map((id, i, all) => ({
    id,
    type: 'update',
    target: 'cluster',
    items: ['local'],
    ...(i > 0 ? { depends_on: [all[i - 1]] } : {}),
    steps: sleepStep(duration),
  })),
});

const WORKFLOWS = {
  'ok.json': {
    name: 'hello',
    operations: [
      {
        id: 'greet',
        type: 'update',
        target: 'cluster',
        items: ['local'],
        steps: [{ name: 'say', type: 'echo', params: { message: 'hello from the batch tests' } }],
      },
    ],
  },
  'fail.json': {
    name: 'fails',
    retry_policy: { max_attempts: 1 },
    operations: [
      {
        id: 'boom',
        type: 'update',
        target: 'cluster',
        items: ['local'],
        on_failure: 'fail',
        steps: [
          {
            name: 'exit',
            type: 'script',
            params: { command: 'sh', args: ['-c', 'echo going down >&2; exit 3'] },
          },
        ],
      },
    ],
  },
  'slow.json': chain('slow', '30s'),
  'quick.json': chain('quick', '300ms'),
};

const INVALID_YAML = `name: invalid
operations:
  - id: deploy
    type: upgrade
    target: cluster
  - id: check
    type: check
    target: cluster
    depends_on: [deploi]
`;

/**
 * Starts a real orchestrator server on a free port with a fresh state directory.
 *
 * @returns The server, a client, workflow files, and the environment for CLI children.
 */
export async function startTestServer(): Promise<TestServer> {
  const dir = await mkdtemp(join(tmpdir(), 'muster-batch-'));
  const server = await startServer({
    port: 0,
    stateDir: join(dir, 'state'),
    tokensEnv: `operator:${TOKENS.operator},viewer:${TOKENS.viewer}`,
    shutdownGraceMs: 500,
    log: () => {},
    // Runs' console log lines would fill the test output; their files stay in the state dir.
    runLogStdout: { write: () => true },
  });
  const files: Record<string, string> = {};
  for (const [name, workflow] of Object.entries(WORKFLOWS)) {
    files[name.replace('.json', '')] = join(dir, name);
    await writeFile(join(dir, name), JSON.stringify(workflow, null, 2));
  }
  files['invalid'] = join(dir, 'invalid.yaml');
  await writeFile(files['invalid'], INVALID_YAML);
  const client = createClient({ server: server.url, token: TOKENS.operator });

  return {
    url: server.url,
    server,
    client,
    files: files as TestServer['files'],
    dir,
    env: (extra = {}) => {
      const env: NodeJS.ProcessEnv = {
        ...process.env,
        MUSTER_SERVER: server.url,
        MUSTER_TOKEN: TOKENS.operator,
        MUSTER_DEBUG: '',
        FORCE_COLOR: '0',
      };
      for (const [key, value] of Object.entries(extra)) {
        if (value === undefined) delete env[key];
        else env[key] = value;
      }
      return env;
    },
    async settle(id, timeoutMs = 60_000) {
      const until = Date.now() + timeoutMs;
      for (;;) {
        const { status } = await client.status(id);
        if (FINAL_RUN_STATUSES.has(status)) return status;
        if (Date.now() > until) throw new Error(`run ${id} is still ${status}`);
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    },
    async close() {
      const runs = await client.listAll().catch(() => []);
      const live = runs.filter((r) => !FINAL_RUN_STATUSES.has(r.status));
      await Promise.all(live.map((r) => client.control(r.id, 'terminate').catch(() => {})));
      await server.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** What a CLI run left behind. */
export interface CliResult {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Runs the real `muster` CLI from source in a child process.
 *
 * @param args The arguments after `muster`.
 * @param env The child's environment (see `TestServer.env`).
 * @param input What the child reads on standard input.
 *
 * @returns The exit code, stdout and stderr.
 */
export function muster(
  args: readonly string[],
  env: NodeJS.ProcessEnv,
  input = '',
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = execFile(
      process.execPath,
      [...MUSTER_NODE_ARGS, ...args],
      { cwd: ROOT, env, timeout: 120_000, maxBuffer: 16 * 1024 * 1024 },
      (error, stdout, stderr) => {
        if (error && typeof error.code !== 'number') {
          reject(Object.assign(error, { stdout, stderr }));
          return;
        }
        resolve({ code: typeof error?.code === 'number' ? error.code : 0, stdout, stderr });
      },
    );
    // Standard input is closed at once (after `input`), so `-` never waits for a terminal.
    child.stdin?.end(input);
  });
}

/**
 * Starts the CLI without waiting for it, for tests that signal it.
 *
 * @param args The arguments after `muster`.
 * @param env The child's environment.
 *
 * @returns The child process, its stdout and stderr piped.
 */
export function spawnMuster(args: readonly string[], env: NodeJS.ProcessEnv): ChildProcess {
  return spawn(process.execPath, [...MUSTER_NODE_ARGS, ...args], { cwd: ROOT, env });
}

/**
 * Writes a `muster` executable that runs the CLI from source, for `$env.MUSTER_BIN`.
 *
 * @param dir Where to write it.
 *
 * @returns Its path.
 */
export async function writeMusterBin(dir: string): Promise<string> {
  const path = join(dir, 'muster');
  const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  await writeFile(
    path,
    `#!/bin/sh\nexec ${[process.execPath, ...MUSTER_NODE_ARGS].map(quote).join(' ')} "$@"\n`,
  );
  await chmod(path, 0o755);
  return path;
}

/** The non-empty lines of a text. */
export function lines(text: string): string[] {
  return text.split('\n').filter((l) => l !== '');
}
