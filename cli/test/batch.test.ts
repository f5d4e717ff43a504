/**
 * `muster batch …` end to end: the real CLI in child processes against a real `muster server`
 * (in this process, on a free port, with its own PGlite state and tokens). Each child costs about
 * 2 s of CPU to start, so this file keeps to what only a real process shows: arguments, stdout
 * and stderr, exit codes, the environment, signals. The commands' logic against the same server
 * is covered in process by `batch-commands.test.ts`.
 */
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { parse as parseYaml } from 'yaml';
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import { lines, muster, spawnMuster, startTestServer, TOKENS } from './helpers/batch-server.ts';
import type { TestServer } from './helpers/batch-server.ts';

// A busy machine needs room: every test starts CLI children.
vi.setConfig({ testTimeout: 180_000 });

let t: TestServer;

beforeAll(async () => {
  t = await startTestServer();
});

afterAll(async () => {
  await t?.close();
});

describe('muster batch submit', () => {
  test('prints the run id; status, list and logs then show the run', async () => {
    const submitted = await muster(
      ['batch', 'submit', t.files.ok, '--label', 'suite=e2e'],
      t.env(),
    );
    expect(submitted.stderr).toMatch(/^submitted run hello-\S+ \(hello\), (pending|running)\n$/);
    expect(submitted.code).toBe(0);
    const id = submitted.stdout.trim();
    expect(id).toMatch(/^hello-\S+$/);
    expect(await t.settle(id)).toBe('succeeded');

    const [status, list, logs] = await Promise.all([
      muster(['batch', 'status', id, '-o', 'json'], t.env()),
      muster(['batch', '-o', 'yaml', 'list', '--label', 'suite=e2e'], t.env()),
      muster(['batch', 'logs', id, '-o', 'json'], t.env()),
    ]);
    expect(JSON.parse(status.stdout)).toMatchObject({
      id,
      name: 'hello',
      status: 'succeeded',
      tasks: { total: 1, succeeded: 1 },
      operations: [{ id: 'greet', status: 'succeeded' }],
    });
    expect(parseYaml(list.stdout)).toEqual([
      expect.objectContaining({ id, name: 'hello', status: 'succeeded', labels: { suite: 'e2e' } }),
    ]);
    const events = JSON.parse(logs.stdout) as Array<{ seq: number; type: string; data: unknown }>;
    expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 1));
    expect(events.at(-1)?.type).toBe('run:succeeded');
    expect(events).toContainEqual(
      expect.objectContaining({
        type: 'task:output',
        data: expect.objectContaining({ line: 'hello from the batch tests' }),
      }),
    );
  });

  test('--validate prints problems in the file and exits 2; --dry-run prints the plan', async () => {
    const before = (await t.client.listAll()).length;
    const [invalid, dryRun] = await Promise.all([
      muster(['batch', 'submit', t.files.invalid, '--validate'], t.env()),
      muster(
        ['batch', 'submit', '-', '--format', 'json', '--dry-run'],
        t.env(),
        await read(t.files.quick),
      ),
    ]);
    // Problems one per line, located in the user's file, like `muster validate`; then a summary.
    expect(invalid.code).toBe(2);
    expect(invalid.stdout).toBe('');
    const problems = lines(invalid.stderr);
    expect(problems.at(-1)).toMatch(
      new RegExp(`^muster: \\[MUS2001\\] ${t.files.invalid} has \\d problems?$`),
    );
    expect(problems[0]).toMatch(
      new RegExp(`^${t.files.invalid}:4:5: operations\\[0\\]\\.type: .*found "upgrade"`),
    );

    expect(dryRun.code).toBe(0);
    expect(dryRun.stdout).toMatch(/^Plan for "quick" \(batch\): 3 operations in 3 levels, 3 tasks/);
    expect(dryRun.stdout).toMatch(/^ {2}second +update +cluster +1 task +after first$/m);
    expect((await t.client.listAll()).length).toBe(before);
  });

  test('--watch exits 0 when the run succeeds and 3 when it does not', async () => {
    const [ok, failed] = await Promise.all([
      muster(['batch', 'submit', t.files.quick, '--watch', '-o', 'json'], t.env()),
      muster(['batch', 'submit', t.files.fail, '--watch'], t.env()),
    ]);
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout)).toMatchObject({
      name: 'quick',
      status: 'succeeded',
      tasks: { succeeded: 3 },
    });
    // Progress went to stderr, a line per operation event (no terminal here, so no bars).
    expect(ok.stderr).toMatch(/^operation:started +first$/m);
    expect(ok.stderr).toMatch(/^operation:succeeded +third$/m);

    expect(failed.code).toBe(3);
    expect(failed.stdout).toMatch(/^run fails-\S+ failed in \S+: 0\/1 tasks succeeded, 1 failed/m);
    expect(failed.stderr).toMatch(/^task:failed +boom:local: .*exited with code 3/m);
  });

  test('Ctrl-C stops watching with exit 130 and the run keeps going', async () => {
    const child = spawnMuster(['batch', 'submit', t.files.slow, '--watch'], t.env());
    let stderr = '';
    const following = new Promise<string>((resolve) => {
      child.stderr!.on('data', (chunk: Buffer) => {
        stderr += chunk.toString();
        const m = /^following run (\S+);/m.exec(stderr);
        if (m && /operation:started +first/.test(stderr)) resolve(m[1]!);
      });
    });
    const exited = new Promise<number | null>((resolve) =>
      child.on('exit', (code) => resolve(code)),
    );
    const id = await following;
    child.kill('SIGINT');
    expect(await exited).toBe(130);
    expect(stderr).toContain(`interrupted: run ${id} keeps running on the orchestrator`);
    expect((await t.client.status(id)).status).toBe('running');
    await t.client.control(id, 'terminate');
  });
});

describe('muster batch controls and logs', () => {
  test('pause prints the new state; a control the state forbids exits 1', async () => {
    const source = await read(t.files.slow);
    const [a, b] = await Promise.all([1, 2].map(() => t.client.submit({ source, format: 'json' })));
    await t.client.control(b!.id, 'pause');
    const [pause, again] = await Promise.all([
      muster(['batch', 'pause', a!.id], t.env()),
      muster(['batch', 'pause', b!.id, '-o', 'nuon'], t.env()),
    ]);
    expect(pause).toMatchObject({
      code: 0,
      stdout: `run ${a!.id}: pause accepted, status paused\n`,
    });
    expect(again.code).toBe(1);
    expect(again.stdout).toBe('');
    expect(again.stderr).toBe(`muster: [ORC1002] cannot pause run "${b!.id}" while it is paused\n`);
  });

  test('logs --follow streams NDJSON after --after as events happen, until the run ends', async () => {
    const { id } = await t.client.submit({ source: await read(t.files.quick), format: 'json' });
    const follow = await muster(['batch', 'logs', id, '-f', '--after', '2', '-o', 'json'], t.env());
    expect(follow.code).toBe(0);
    const events = lines(follow.stdout).map((l) => JSON.parse(l) as { seq: number; type: string });
    expect(events.map((e) => e.seq)).toEqual(events.map((_, i) => i + 3));
    expect(events.at(-1)?.type).toBe('run:succeeded');
    expect(events.filter((e) => e.type === 'task:succeeded')).toHaveLength(3);
  });
});

describe('errors', () => {
  test('a missing or weak token and a bad flag say what to do', async () => {
    const [noToken, viewer, badFlag] = await Promise.all([
      muster(['batch', 'list'], t.env({ MUSTER_TOKEN: undefined })),
      muster(['batch', 'submit', t.files.ok, '--token', TOKENS.viewer], t.env()),
      muster(['batch', 'submit', t.files.ok, '--set', 'novalue'], t.env()),
    ]);
    expect(noToken.code).toBe(1);
    expect(noToken.stderr).toMatch(
      /^muster: \[API4010\] .*pass a token with --token or MUSTER_TOKEN\n$/,
    );
    expect(viewer.code).toBe(1);
    expect(viewer.stderr).toMatch(
      /^muster: \[API4030\] this needs the operator role; the token's role is viewer/,
    );
    expect(viewer.stderr).not.toContain(TOKENS.viewer);
    expect(badFlag.code).toBe(2);
    expect(badFlag.stderr).toContain('--set takes key=value, not "novalue"');
  });

  test('an unreachable server names the address and how to start it', async () => {
    const port = await freePort();
    const result = await muster(['batch', 'list', '--server', `127.0.0.1:${port}`], t.env());
    expect(result.code).toBe(1);
    expect(result.stderr).toBe(
      `muster: [CLI3001] cannot reach the orchestrator at http://127.0.0.1:${port}: connect ` +
        `ECONNREFUSED 127.0.0.1:${port} — is \`muster server\` running? (set the address with ` +
        '--server or MUSTER_SERVER)\n',
    );
  });
});

async function read(file: string): Promise<string> {
  const { readFile } = await import('node:fs/promises');
  return readFile(file, 'utf8');
}

async function freePort(): Promise<number> {
  const probe = createServer();
  await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
  const { port } = probe.address() as AddressInfo;
  await new Promise((resolve) => probe.close(resolve));
  return port;
}
