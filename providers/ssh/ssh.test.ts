import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { Step } from '../../schemas/src/workflow.ts';
import { createLocalExecutor } from '../../orchestrator/src/executor/local.ts';
import { createOrchestrator, type Orchestrator } from '../../orchestrator/src/orchestrator.ts';
import { createStore } from '../../orchestrator/src/store/index.ts';
import {
  createStepRegistry,
  rollbackStep,
  runStep,
} from '../../orchestrator/src/steps/registry.ts';
import { StepFailure, type StepContext } from '../../orchestrator/src/steps/types.ts';
import { createLocalProvider } from '../local/index.ts';
import { limitProvider } from '../limits.ts';
import type { Provider, ProviderServer } from '../types.ts';
import { createSshProvider, createSshStepRegistry, routeSshServers } from './index.ts';
import { _startSshd, SKIP_SSHD, type TestSshd } from './sshd.fixtures.ts';
import type { SshProvider } from './types.ts';

if (SKIP_SSHD) console.warn(`skipping the ssh provider tests: ${SKIP_SSHD}`);

let sshd: TestSshd;
let dir: string;
let remoteRoot: string;
let ssh: SshProvider;

beforeAll(async () => {
  if (SKIP_SSHD) return;
  sshd = await _startSshd();
  dir = await mkdtemp(join(tmpdir(), 'muster-ssh-test-'));
  // The "remote" host is this machine: its work directories go in the test's directory.
  remoteRoot = join(dir, 'remote');
  ssh = createSshProvider({ stateDir: join(dir, 'state'), remoteRoot, knownHostsFiles: [] });
});

afterAll(async () => {
  if (SKIP_SSHD) return;
  await ssh?.close();
  await sshd?.stop();
  await rm(dir, { recursive: true, force: true });
});

const server = (name: string, extra: Partial<ProviderServer> = {}): ProviderServer => ({
  name,
  address: sshd.host,
  labels: {},
  ssh: { user: sshd.user, port: sshd.port, key_file: sshd.keyFile },
  ...extra,
});

const signal = () => new AbortController().signal;

/** Expects a promise to fail with a StepFailure of `type`, and returns it. */
async function failure(promise: Promise<unknown>, type: string): Promise<StepFailure> {
  const e: unknown = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(e).toBeInstanceOf(StepFailure);
  expect((e as StepFailure).type).toBe(type);
  return e as StepFailure;
}

describe.skipIf(SKIP_SSHD !== undefined)('ssh provider against a real sshd', () => {
  describe('create, status, list, delete', () => {
    test('create makes the work directory once, and delete removes it', async () => {
      const web = server('prov-1');
      const workdir = join(remoteRoot, 'prov-1');
      expect(await ssh.create(web, signal())).toEqual({ created: true, address: '127.0.0.1' });
      expect((await stat(workdir)).isDirectory()).toBe(true);
      // Idempotent: the second create finds it and says so, so a rollback would keep it.
      expect(await ssh.create(web, signal())).toEqual({ created: false, address: '127.0.0.1' });
      expect(await ssh.status(web, signal())).toEqual({
        name: 'prov-1',
        state: 'running',
        address: '127.0.0.1',
      });
      expect(await ssh.list()).toContainEqual({
        name: 'prov-1',
        state: 'running',
        address: '127.0.0.1',
      });
      await ssh.delete(web, signal());
      expect(existsSync(workdir)).toBe(false);
      expect((await ssh.list()).map((s) => s.name)).not.toContain('prov-1');
    });

    test('records the host key on first use, in Muster’s own known_hosts', async () => {
      await ssh.status(server('prov-2'), signal());
      const known = await readFile(join(dir, 'state', 'ssh', 'known_hosts'), 'utf8');
      expect(known).toContain(`[127.0.0.1]:${sshd.port} ${sshd.hostPublicKey}`);
    });

    test('a host that is down is stopped, and create fails with a retryable ssh-unreachable', async () => {
      const down = server('down-1', {
        ssh: { user: sshd.user, port: 1, key_file: sshd.keyFile },
      });
      expect(await ssh.status(down, signal())).toMatchObject({ state: 'stopped' });
      const e = await failure(ssh.create(down, signal()), 'ssh-unreachable');
      expect(e.nonRetryable).toBe(false);
      expect(e.message).toContain('server down-1: cannot reach');
      expect(e.message).toContain('connection refused');
    });

    test('a server without an address fails with ssh-config, naming the fix', async () => {
      const { address: _, ...noAddress } = server('no-address');
      const e = await failure(ssh.create(noAddress, signal()), 'ssh-config');
      expect(e.message).toBe(
        'server no-address uses provider "ssh" but has no address; set its address (a host name or IP)',
      );
    });
  });

  describe('refuses what it should', () => {
    test('a host key that differs from the one on record', async () => {
      const state = join(dir, 'state-changed');
      const knownHosts = join(dir, 'known_hosts_changed');
      const other = join(dir, 'other_host_key');
      execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', other]);
      const otherPub = (await readFile(`${other}.pub`, 'utf8')).split(' ').slice(0, 2).join(' ');
      await writeFile(knownHosts, `[127.0.0.1]:${sshd.port} ${otherPub}\n`);
      const strict = createSshProvider({
        stateDir: state,
        remoteRoot,
        knownHostsFiles: [knownHosts],
      });
      try {
        const e = await failure(strict.create(server('hk-1'), signal()), 'ssh-host-key');
        expect(e.nonRetryable).toBe(true);
        expect(e.message).toContain('differs from the one on record');
        expect(e.message).toContain(`${knownHosts}:1`);
        // Nothing was done on the host.
        expect(existsSync(join(remoteRoot, 'hk-1'))).toBe(false);
      } finally {
        await strict.close();
      }
    });

    test('a new host when new hosts are not accepted', async () => {
      const strict = createSshProvider({
        stateDir: join(dir, 'state-strict'),
        remoteRoot,
        knownHostsFiles: [],
        acceptNewHosts: false,
      });
      try {
        const e = await failure(strict.create(server('hk-2'), signal()), 'ssh-host-key');
        expect(e.message).toContain('ssh-keyscan');
      } finally {
        await strict.close();
      }
    });

    test('a key the host does not accept, and a key file that does not exist', async () => {
      const stranger = join(dir, 'stranger_key');
      execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', '', '-f', stranger]);
      const refused = server('auth-1', {
        ssh: { user: sshd.user, port: sshd.port, key_file: stranger },
      });
      const e = await failure(ssh.create(refused, signal()), 'ssh-auth');
      expect(e.nonRetryable).toBe(true);
      expect(e.message).toContain(`refused the key ${stranger} for user "${sshd.user}"`);

      const missing = server('auth-2', {
        ssh: { user: sshd.user, port: sshd.port, key_file: join(dir, 'nope') },
      });
      const m = await failure(ssh.create(missing, signal()), 'ssh-key');
      expect(m.message).toContain('does not exist; fix ssh.key_file');
    });

    test('a passphrase-protected key, with advice', async () => {
      const locked = join(dir, 'locked_key');
      execFileSync('ssh-keygen', ['-q', '-t', 'ed25519', '-N', 'secret', '-f', locked]);
      const e = await failure(
        ssh.create(
          server('auth-3', { ssh: { user: sshd.user, port: sshd.port, key_file: locked } }),
          signal(),
        ),
        'ssh-key',
      );
      expect(e.message).toContain('protected by a passphrase');
    });
  });

  describe('steps on the host', () => {
    let workdir: string;
    const logs: Array<[string, string]> = [];
    const web = () => server('steps-1');
    const registry = () =>
      createSshStepRegistry({
        server: 'steps-1',
        connection: () => ssh.connect(web()),
        base: createStepRegistry(),
        killGraceMs: 500,
      });
    const ctx = (over: Partial<StepContext> = {}): StepContext => ({
      runId: 'run-1',
      taskId: 'deploy:steps-1@steps-1',
      attempt: 1,
      server: { name: 'steps-1', labels: {}, address: '127.0.0.1' },
      workdir,
      signal: signal(),
      env: { MUSTER_OPERATION: 'deploy' },
      log: (stream, line) => logs.push([stream, line]),
      ...over,
    });
    const step = (s: Partial<Step> & Pick<Step, 'type' | 'params'>): Step => ({
      name: 's',
      required: true,
      continue_on_failure: false,
      ...s,
    });

    beforeAll(async () => {
      await ssh.create(web(), signal());
      workdir = await ssh.remoteWorkdir(web());
    });

    test('script passes argv with spaces, quotes and $ through unchanged', async () => {
      logs.length = 0;
      const args = ["it's", 'two words', '"double"', '$HOME `id` $(id)', '*', '', 'a\\b'];
      await runStep(
        registry(),
        step({ type: 'script', params: { command: 'printf', args: ['%s|\\n', ...args] } }),
        ctx(),
      );
      expect(logs.filter(([s]) => s === 'stdout').map(([, l]) => l)).toEqual(
        args.map((a) => `${a}|`),
      );
    });

    test('script runs in the work directory with the MUSTER_* environment, input and outputs', async () => {
      logs.length = 0;
      const result = await runStep(
        registry(),
        step({
          type: 'script',
          params: {
            command:
              'pwd; echo "$MUSTER_SERVER $MUSTER_OPERATION $GREETING"; cat; echo "answer=42" >> "$MUSTER_OUTPUT"',
            shell: true,
            env: { GREETING: 'hello there' },
            input: 'from stdin\n',
          },
        }),
        ctx(),
      );
      expect(logs.filter(([s]) => s === 'stdout').map(([, l]) => l)).toEqual([
        workdir,
        'steps-1 deploy hello there',
        'from stdin',
      ]);
      expect(result.outputs).toEqual({ answer: '42' });
      // The output file was removed.
      expect(
        execFileSync('sh', ['-c', 'ls /tmp | grep -c muster-output- || true']).toString().trim(),
      ).toBe('0');
    });

    test('a failing script reports its exit code and last stderr line; a missing command is not retried', async () => {
      const e = await failure(
        runStep(
          registry(),
          step({ type: 'script', params: { command: 'echo oops >&2; exit 3', shell: true } }),
          ctx(),
        ),
        'exit-code',
      );
      expect(e.message).toBe('step "s": the shell script exited with code 3: oops');
      expect(e.details).toMatchObject({ exitCode: 3, stderr: ['oops'] });
      const nf = await failure(
        runStep(
          registry(),
          step({ type: 'script', params: { command: 'no-such-command-xyz' } }),
          ctx(),
        ),
        'command-not-found',
      );
      expect(nf.nonRetryable).toBe(true);
    });

    test('an aborted script has its whole remote process group killed', async () => {
      const abort = new AbortController();
      const pidFile = join(workdir, 'bg.pid');
      const running = runStep(
        registry(),
        step({
          type: 'script',
          params: { command: 'sleep 60 & echo $! > bg.pid; echo started; wait', shell: true },
        }),
        ctx({
          signal: abort.signal,
          log: (stream, line) => {
            if (line === 'started') abort.abort();
          },
        }),
      );
      await failure(running, 'cancelled');
      const bg = Number((await readFile(pidFile, 'utf8')).trim());
      // The remote host is this machine: the background sleep must be gone.
      const alive = () => {
        try {
          process.kill(bg, 0);
          return true;
        } catch {
          return false;
        }
      };
      for (let i = 0; i < 50 && alive(); i++) await new Promise((r) => setTimeout(r, 50));
      expect(alive()).toBe(false);
    });

    test('file_write writes over SFTP, and its rollback removes what it created', async () => {
      const s = step({
        type: 'file_write',
        params: { path: 'etc/app/config.json', content: '{"v": 2}\n', mode: '0640' },
      });
      const result = await runStep(registry(), s, ctx());
      const file = join(workdir, 'etc/app/config.json');
      expect(await readFile(file, 'utf8')).toBe('{"v": 2}\n');
      expect((await stat(file)).mode & 0o777).toBe(0o640);
      await rollbackStep(registry(), s, result, ctx());
      expect(existsSync(file)).toBe(false);
      expect(existsSync(join(workdir, 'etc'))).toBe(false);
    });

    test('file_write keeps what was there, and its rollback puts it back', async () => {
      await mkdir(join(workdir, 'conf'), { recursive: true });
      const file = join(workdir, 'conf', 'app.ini');
      await writeFile(file, 'old\n', { mode: 0o600 });
      const s = step({ type: 'file_write', params: { path: 'conf/app.ini', content: 'new\n' } });
      const result = await runStep(registry(), s, ctx());
      expect(await readFile(file, 'utf8')).toBe('new\n');
      expect((await stat(file)).mode & 0o777).toBe(0o600);
      await rollbackStep(registry(), s, result, ctx());
      expect(await readFile(file, 'utf8')).toBe('old\n');
    });

    test('step types that cannot run over SSH fail by name, with what to do instead', async () => {
      const e = await failure(
        runStep(registry(), step({ type: 'http', params: { url: 'http://127.0.0.1/' } }), ctx()),
        'ssh-unsupported-step',
      );
      expect(e.message).toContain('a "http" step cannot run on ssh server steps-1');
      expect(e.message).toContain('script step (e.g. curl for http)');
    });
  });

  describe('a workflow on ssh servers', () => {
    // One orchestrator, on an in-memory database, whose ssh servers' work directories are in the
    // test's directory.
    let orch: Orchestrator;
    beforeAll(async () => {
      const stateDir = join(dir, 'orchestrator');
      const registry = createStepRegistry();
      const local = createLocalProvider({ root: join(stateDir, 'servers') });
      const providers = new Map<string, Provider>([
        ['local', local],
        ['ssh', limitProvider(ssh, { api_rate_limit: 20, batch_size: 2 })],
      ]);
      const dispatcher = routeSshServers(
        createLocalExecutor({ registry, providers, workRoot: stateDir }),
        { ssh, providers, registry },
      );
      const store = await createStore({ pglite: { dataDir: 'memory://' } });
      orch = await createOrchestrator({ stateDir }, { registry, dispatcher, store });
    });
    afterAll(async () => {
      await orch?.close();
    });

    const workflow = (name: string, servers: string[], operations: unknown[]) => ({
      name,
      servers: servers.map((n) => ({
        name: n,
        provider: 'ssh',
        address: '127.0.0.1',
        ssh: { user: sshd.user, port: sshd.port, key_file: sshd.keyFile },
      })),
      retry_policy: { max_attempts: 1 },
      operations,
    });

    const deploy = {
      id: 'deploy',
      type: 'update',
      target: 'server',
      depends_on: ['create'],
      steps: [
        { name: 'config', type: 'file_write', params: { path: 'app/config', content: 'v2\n' } },
        {
          name: 'args',
          type: 'script',
          params: {
            command: 'sh',
            args: [
              '-c',
              'printf "%s\\n" "$@" > app/args.txt',
              'sh',
              "it's",
              'a "quoted" arg',
              'two  spaces',
            ],
          },
        },
      ],
    };

    async function runToEnd(source: unknown) {
      const { loaded, plan } = await orch.prepare(JSON.stringify(source), { format: 'json' });
      const { run } = await orch.submit(loaded.workflow, plan);
      const status = await (await orch.drive(run.id)).done;
      return { status, snapshot: (await orch.store.loadRun(run.id))! };
    }

    test('create, steps and delete run on the hosts', async () => {
      const names = ['wf-a', 'wf-b'];
      const paths = names.map((n) => join(remoteRoot, n));
      const seen: string[] = [];
      const { status } = await runToEnd(
        workflow('ssh-fleet', names, [
          { id: 'create', type: 'create', target: 'server' },
          deploy,
          {
            id: 'inspect',
            type: 'update',
            target: 'server',
            depends_on: ['deploy'],
            steps: [
              {
                name: 'check',
                type: 'script',
                params: { command: 'cat', args: ['app/args.txt', 'app/config'] },
              },
            ],
          },
          { id: 'check', type: 'check', target: 'server', depends_on: ['inspect'] },
        ]),
      );
      expect(status).toBe('succeeded');
      for (const p of paths) {
        expect(await readFile(join(p, 'app/args.txt'), 'utf8')).toBe(
          `it's\na "quoted" arg\ntwo  spaces\n`,
        );
        expect(await readFile(join(p, 'app/config'), 'utf8')).toBe('v2\n');
        seen.push(p);
      }
      expect(seen).toHaveLength(2);

      const { status: deleted } = await runToEnd(
        workflow('ssh-fleet-delete', names, [{ id: 'remove', type: 'delete', target: 'server' }]),
      );
      expect(deleted).toBe('succeeded');
      for (const p of paths) expect(existsSync(p)).toBe(false);
    });

    test('a failed step rolls the run back: steps undone, created servers deleted', async () => {
      const { status, snapshot } = await runToEnd(
        workflow(
          'ssh-fleet-rollback',
          ['rb-a', 'rb-b'],
          [
            { id: 'create', type: 'create', target: 'server' },
            deploy,
            {
              id: 'break',
              type: 'update',
              target: 'server',
              depends_on: ['deploy'],
              on_failure: 'rollback',
              steps: [
                {
                  name: 'fail-on-b',
                  type: 'script',
                  params: { command: 'test "$MUSTER_SERVER" != rb-b', shell: true },
                },
              ],
            },
          ],
        ),
      );
      expect(status).toBe('rolled_back');
      const byId = new Map(snapshot.tasks.map((t) => [t.id, t.status]));
      expect(byId.get('break:rb-b@rb-b')).toBe('failed');
      expect(byId.get('create:rb-a@rb-a')).toBe('rolled_back');
      expect(byId.get('deploy:rb-b@rb-b')).toBe('rolled_back');
      // The servers this run created are gone from the hosts, files and all.
      for (const n of ['rb-a', 'rb-b']) expect(existsSync(join(remoteRoot, n))).toBe(false);
    });
  });
});
