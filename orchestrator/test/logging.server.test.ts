/**
 * Run logs under `muster server`, over a real socket: a submitted workflow's `logging` block is
 * honoured as `muster run` honours it (JSON lines with run id, operation, task and trace id, no
 * secret value, daily files pruned by retention), inside the server's log directory only; a run
 * resumed by the next server appends to the same file; many runs at once share their files and
 * leave no descriptor open; and agents' comings and goings reach the server's log.
 *
 * @module
 */
import { existsSync, readdirSync, readFileSync, readlinkSync, writeFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { startServer, type RunningServer, type ServerOptions } from '../src/api/server.ts';
import { traceIdFor } from '../src/logging/events.ts';
import { startAgent } from '../src/agents/agent.ts';
import { createStepRegistry } from '../src/steps/registry.ts';
import { TOKENS } from './helpers/api.ts';

const AGENT = 'agent-token-for-logs-remote-1';
const SECRET = 'l0g-s3cr3t-n0t-in-any-line';
const SECRET_FORMS = [SECRET, Buffer.from(SECRET).toString('base64').replace(/=+$/, '')];
const SECRET_VAR = 'MUSTER_TEST_SERVER_LOG_SECRET';

let dir: string;
let tokensFile: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'muster-server-logs-'));
  tokensFile = join(dir, 'tokens');
  await writeFile(
    tokensFile,
    `viewer:${TOKENS.viewer}\noperator:${TOKENS.operator}\nagent:${AGENT}:remote-1\n`,
  );
  process.env[SECRET_VAR] = SECRET;
});
afterAll(async () => {
  delete process.env[SECRET_VAR];
  await rm(dir, { recursive: true, force: true });
});

const headers = (role: 'viewer' | 'operator', type?: string) => ({
  Authorization: `Bearer ${TOKENS[role]}`,
  ...(type ? { 'Content-Type': type } : {}),
});

/** A server whose own log and runs' stdout destination are kept for the test. */
async function start(
  stateDir: string,
  extra: Partial<ServerOptions> = {},
): Promise<{ server: RunningServer; said: string[]; stdout: string[] }> {
  const said: string[] = [];
  const stdout: string[] = [];
  const server = await startServer({
    port: 0,
    stateDir,
    tokensFile,
    log: (line) => said.push(line),
    runLogStdout: { write: (text: string) => stdout.push(text) },
    ...extra,
  });
  return { server, said, stdout };
}

async function submit(server: RunningServer, workflow: unknown, query = ''): Promise<Response> {
  return fetch(`${server.url}/workflows/batch${query}`, {
    method: 'POST',
    headers: headers('operator', 'application/json'),
    body: JSON.stringify(workflow),
  });
}

async function submitted(server: RunningServer, workflow: unknown): Promise<string> {
  const res = await submit(server, workflow);
  expect(res.status, await res.clone().text()).toBe(201);
  return ((await res.json()) as { id: string }).id;
}

async function until<T>(what: string, check: () => T | undefined | Promise<T | undefined>) {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 25));
  }
}

async function statusOf(server: RunningServer, id: string): Promise<string> {
  const res = await fetch(`${server.url}/workflows/${id}/status`, { headers: headers('viewer') });
  return ((await res.json()) as { status: string }).status;
}

type Line = Record<string, unknown>;

/** The lines of every daily file in `dir`, parsed. */
function linesIn(logDir: string): Line[] {
  if (!existsSync(logDir)) return [];
  return readdirSync(logDir)
    .sort()
    .flatMap((f) => readFileSync(join(logDir, f), 'utf8').split('\n'))
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Line);
}

/** Waits until the run's logs hold its final event (logs are written as events are committed). */
function ended(logDir: string, id: string): Promise<Line[]> {
  return until(`the end of ${id} in ${logDir}`, () => {
    const lines = linesIn(logDir).filter((l) => l['run_id'] === id);
    return lines.some((l) => l['event'] === 'run:succeeded' || l['event'] === 'run:failed')
      ? lines
      : undefined;
  });
}

const today = () => new Date().toISOString().slice(0, 10);

function chain(
  name: string,
  logging: Record<string, unknown>,
  steps: unknown[][] = [[{ name: 'say', type: 'echo', params: { message: 'hi' } }]],
) {
  return {
    name,
    logging,
    retry_policy: { max_attempts: 2, initial_delay: 0 },
    rollback_strategy: { enabled: false },
    operations: steps.map((s, i) => ({
      id: `op-${i + 1}`,
      type: 'update',
      target: 'cluster',
      items: ['x'],
      ...(i > 0 ? { depends_on: [`op-${i}`] } : {}),
      steps: s,
    })),
  };
}

describe('run logs under muster server', () => {
  let server: RunningServer;
  let said: string[];
  let stdout: string[];
  beforeAll(async () => {
    ({ server, said, stdout } = await start(join(dir, 'state')));
  });
  afterAll(async () => {
    await server.close();
  });

  test('the log directory defaults to <state-dir>/logs', () => {
    expect(server.logDir).toBe(join(dir, 'state', 'logs'));
  });

  test('a submitted run logs JSON lines with run id, operation, task and trace id, and no secret', async () => {
    const workflow = {
      ...chain(
        'logged',
        {
          destinations: ['file', 'stdout'],
          path: 'runs/logged',
          format: 'json',
          level: 'debug',
        },
        [
          [
            {
              name: 'print',
              type: 'script',
              params: {
                command: 'sh',
                args: ['-c', 'echo "plain $S"; printf %s "$S" | base64; echo "quoted \\"$S\\""'],
                env: { S: `{{ secrets.${SECRET_VAR} }}` },
              },
            },
          ],
          [{ name: 'say', type: 'echo', params: { message: 'after' } }],
        ],
      ),
      secrets: { provider: 'env', env: [SECRET_VAR] },
    };
    const id = await submitted(server, workflow);
    const logDir = join(server.logDir, 'runs', 'logged');
    const lines = await ended(logDir, id);
    expect(await statusOf(server, id)).toBe('succeeded');
    expect(readdirSync(logDir)).toEqual([`muster-${today()}.log`]);

    for (const line of lines) {
      expect(line).toMatchObject({ run_id: id, trace_id: traceIdFor(id), workflow: 'logged' });
      expect(typeof line['time']).toBe('string');
    }
    expect(lines[0]).toMatchObject({ event: 'run:started', resumed: false });
    expect(lines.at(-1)).toMatchObject({ event: 'run:succeeded', level: 'info' });
    const printed = lines.find((l) => l['msg'] === 'plain ***');
    expect(printed).toMatchObject({
      event: 'task:output',
      operation: 'op-1',
      task: 'op-1:x',
      stream: 'stdout',
    });
    // debug: step lines are there too.
    expect(lines.some((l) => l['event'] === 'task:step' && l['operation'] === 'op-2')).toBe(true);

    const text = readFileSync(join(logDir, `muster-${today()}.log`), 'utf8');
    const out = stdout.join('');
    for (const form of SECRET_FORMS) {
      expect(text.includes(form), `the log file holds ${form}`).toBe(false);
      expect(out.includes(form), `stdout holds ${form}`).toBe(false);
    }
    // The stdout destination got the same lines, on the server's stdout.
    expect(out.split('\n').filter((l) => l.includes(`"run_id":"${id}"`))).toEqual(
      text.trimEnd().split('\n'),
    );
    expect(said.filter((l) => l.includes(id))).toEqual([]);
  });

  test('a logging.path leaving the log directory is refused at submit, validate and dry run', async () => {
    const before = readdirSync(join(dir, 'state'));
    for (const [path, query, reason] of [
      ['/etc/muster-logs', '', 'is absolute'],
      ['../../escaped', '?validate=1', 'climbs out'],
      ['logs/../../../escaped', '?dry_run=1', 'climbs out'],
    ] as const) {
      const res = await submit(server, chain('escaping', { destinations: ['file'], path }), query);
      expect(res.status, `${path} ${query}`).toBe(422);
      expect(res.headers.get('content-type')).toContain('application/problem+json');
      const body = (await res.json()) as { code: string; problems: Array<Record<string, unknown>> };
      expect(body.code).toBe('MUS2001');
      expect(body.problems).toEqual([
        expect.objectContaining({
          code: 'logging-path',
          path: 'logging.path',
          file: '<request body>',
          received: JSON.stringify(path),
          message: expect.stringContaining(reason) as unknown,
        }),
      ]);
    }
    // YAML too, located on its line.
    const yaml = await fetch(`${server.url}/workflows/batch?validate=1`, {
      method: 'POST',
      headers: headers('operator', 'application/yaml'),
      body: [
        'name: escaping',
        'logging:',
        '  path: ../outside',
        'operations:',
        '  - {id: a, type: update, target: cluster, items: [x], steps: [{name: s, type: echo, params: {message: hi}}]}',
        '',
      ].join('\n'),
    });
    expect(yaml.status).toBe(422);
    expect(((await yaml.json()) as { problems: unknown[] }).problems).toEqual([
      expect.objectContaining({ code: 'logging-path', line: 3 }),
    ]);
    // Nothing was created, and nothing was written outside.
    const list = await fetch(`${server.url}/workflows?name=escaping`, {
      headers: headers('viewer'),
    });
    expect(((await list.json()) as { items: unknown[] }).items).toEqual([]);
    expect(existsSync(join(dir, 'escaped'))).toBe(false);
    expect(existsSync(join(dir, 'outside'))).toBe(false);
    expect(readdirSync(join(dir, 'state'))).toEqual(before);

    // A path that stays inside, `..` and all, is fine; so is one with no file destination.
    const inside = await submit(
      server,
      chain('inside', { destinations: ['file'], path: 'a/../b' }),
      '?validate=1',
    );
    expect(inside.status).toBe(200);
    const noFile = await submit(
      server,
      chain('no-file', { destinations: ['stdout'], path: '/anywhere' }),
      '?validate=1',
    );
    expect(noFile.status).toBe(200);
  });

  test('many runs at once each log their own lines, share the file, and leave nothing open', async () => {
    const logging = { destinations: ['file'], path: 'many', level: 'info' };
    const ids = await Promise.all(
      Array.from({ length: 12 }, (_, i) =>
        submitted(
          server,
          chain(
            `many-${i}`,
            logging,
            [[], []].map(() => echoStep(i)),
          ),
        ),
      ),
    );
    const logDir = join(server.logDir, 'many');
    for (const id of ids) await ended(logDir, id);
    const lines = linesIn(logDir);
    for (const id of ids) {
      const own = lines.filter((l) => l['run_id'] === id);
      expect(own[0]).toMatchObject({ event: 'run:started', trace_id: traceIdFor(id) });
      expect(own.at(-1)).toMatchObject({ event: 'run:succeeded' });
      expect(own.filter((l) => l['event'] === 'task:succeeded').map((l) => l['task'])).toEqual([
        'op-1:x',
        'op-2:x',
      ]);
    }
    await until('every run log closed', () => server.runLogs.open === 0);
    expect(server.runLogs.files).toBe(0);
    if (existsSync('/proc/self/fd')) {
      const held = readdirSync('/proc/self/fd').filter((fd) => {
        try {
          return readlinkSync(`/proc/self/fd/${fd}`).startsWith(server.logDir);
        } catch {
          return false;
        }
      });
      expect(held).toEqual([]);
    }
  }, 60_000);

  test('old files of a run’s log directory are pruned by its retention', async () => {
    const logDir = join(server.logDir, 'kept');
    await mkdir(logDir, { recursive: true });
    const day = (n: number) => new Date(Date.now() - n * 86_400_000).toISOString().slice(0, 10);
    writeFileSync(join(logDir, `muster-${day(10)}.log`), '');
    writeFileSync(join(logDir, `muster-${day(1)}.log`), '');
    writeFileSync(join(logDir, 'notes.txt'), '');
    const id = await submitted(
      server,
      chain('kept', { destinations: ['file'], path: 'kept', retention_days: 3 }),
    );
    await ended(logDir, id);
    expect(readdirSync(logDir).sort()).toEqual(
      [`muster-${day(1)}.log`, `muster-${today()}.log`, 'notes.txt'].sort(),
    );
  });

  test('agents connecting and leaving reach the server’s log', async () => {
    const agent = startAgent({
      server: 'remote-1',
      orchestrator: server.url,
      token: AGENT,
      workdir: join(dir, 'remote-1'),
      registry: createStepRegistry(),
    });
    try {
      await until('the agent connected', () =>
        said.find((l) => /^agents: agent \S+ of server remote-1 connected/.test(l)),
      );
    } finally {
      agent.stop();
      await agent.done;
    }
    await until('the agent gone', () =>
      said.find((l) => /^agents: agent \S+ of server remote-1 (stopped|disconnected)/.test(l)),
    );
  });
});

function echoStep(i: number) {
  return [{ name: 'say', type: 'echo', params: { message: `run ${i}` } }];
}

describe('a run resumed by the next server', () => {
  test('appends to the file it was writing, with the same run id and trace id', async () => {
    const stateDir = join(dir, 'resume-state');
    const logDir = join(dir, 'resume-logs');
    const workflow = chain('survives', { destinations: ['file'], path: 'r', level: 'info' }, [
      [{ name: 'say', type: 'echo', params: { message: 'first' } }],
      [{ name: 'wait', type: 'sleep', params: { duration: '1500ms' } }],
      [{ name: 'say', type: 'echo', params: { message: 'last' } }],
    ]);
    const first = await start(stateDir, { logDir });
    expect(first.server.logDir).toBe(logDir);
    const id = await submitted(first.server, workflow);
    await until('the sleep under way', () =>
      linesIn(join(logDir, 'r')).some(
        (l) => l['event'] === 'task:started' && l['operation'] === 'op-2',
      ),
    );
    await first.server.close();
    expect(first.server.runLogs.open).toBe(0);

    const second = await start(stateDir, { logDir });
    try {
      expect(second.server.resumed).toEqual([id]);
      const lines = await ended(join(logDir, 'r'), id);
      expect(await statusOf(second.server, id)).toBe('succeeded');
      expect(readdirSync(join(logDir, 'r'))).toEqual([`muster-${today()}.log`]);
      expect(new Set(lines.map((l) => l['trace_id']))).toEqual(new Set([traceIdFor(id)]));
      expect(lines.filter((l) => l['event'] === 'run:started').map((l) => l['resumed'])).toEqual([
        false,
        true,
      ]);
      expect(lines.at(-1)).toMatchObject({ event: 'run:succeeded' });
    } finally {
      await second.server.close();
    }
  }, 90_000);
});
