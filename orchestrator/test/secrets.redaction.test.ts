/**
 * Secrets end to end, as a user runs them: `muster run` as a child process decrypts a real SOPS
 * file (the shared fixture, made by the SOPS tool), hands its values to steps through templates,
 * and then nothing it left behind holds a secret: every row of every table, every event, every
 * log line and everything it printed is scanned for the values and their base64 forms.
 *
 * @module
 */
import { spawn } from 'node:child_process';
import {
  copyFileSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PGlite } from '@electric-sql/pglite';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { MUSTER_NODE_ARGS, ROOT } from './helpers/cli.ts';
import { createOrchestrator } from '../src/orchestrator.ts';
import { createApp } from '../src/api/app.ts';
import { createAuth } from '../src/api/auth.ts';
import { createMetrics } from '../src/api/metrics.ts';

const FIXTURES = join(ROOT, 'orchestrator', 'src', 'secrets', 'sops', 'fixtures');
const SECRETS = [
  't00m4nys3cr3tzupdated', // myapp1
  'c4r1b0u', // app2.db.password
  'MIIBPAIBAAJBAPTMNIyHuZtpLYc7VsHQtwOkWYobkUblmHWRmbXzlAX6K8tMf3Wf', // a line of app2.key
];
const FORMS = SECRETS.flatMap((s) => [s, Buffer.from(s).toString('base64').replace(/=+$/, '')]);

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function runMuster(
  dir: string,
  args: string[],
): Promise<{ code: number | null; out: string; err: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...MUSTER_NODE_ARGS, ...args], {
      cwd: dir,
      stdio: ['ignore', 'pipe', 'pipe'],
      env: {
        ...process.env,
        SOPS_AGE_KEY_FILE: join(FIXTURES, 'keys.txt'),
        XDG_CACHE_HOME: join(ROOT, 'node_modules', '.cache'),
      },
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.on('error', reject);
    child.on('exit', (code) => resolve({ code, out, err }));
  });
}

function workflow(dir: string) {
  const print = [
    'echo "plain $S"',
    'printf %s "$S" | base64',
    'echo "password=$P"',
    'printf "%s\\n" "$K"',
    'echo "out=$S" >> "$MUSTER_OUTPUT"',
    'printf %s "$S" > "$DELIVERED"',
  ].join('; ');
  return {
    name: 'secrets-e2e',
    secrets: { provider: 'sops', files: ['secrets.enc.yaml'] },
    logging: { destinations: ['file', 'stdout'], path: './logs', level: 'debug' },
    retry_policy: { max_attempts: 1 },
    rollback_strategy: { enabled: false },
    operations: [
      {
        id: 'use',
        type: 'update',
        target: 'cluster',
        items: ['x'],
        steps: [
          {
            name: 'print',
            type: 'script',
            params: {
              command: 'sh',
              args: ['-c', print],
              env: {
                S: '{{ secrets.myapp1 }}',
                P: '{{ secrets.app2.db.password }}',
                K: '{{ secrets.app2.key }}',
                DELIVERED: join(dir, 'delivered.txt'),
              },
            },
          },
          {
            name: 'write',
            type: 'file_write',
            params: { path: join(dir, 'f.txt'), content: '{{ secrets.app2.db.password }}' },
          },
          // Its rollback data holds the file's previous content: the password.
          {
            name: 'overwrite',
            type: 'file_write',
            params: { path: join(dir, 'f.txt'), content: 'replaced' },
          },
          {
            name: 'noisy',
            type: 'script',
            required: false,
            params: {
              command: 'sh',
              args: ['-c', 'echo "bad $1" >&2; exit 3', 'sh', '{{ secrets.myapp1 }}'],
            },
          },
        ],
      },
      {
        id: 'fails',
        type: 'update',
        target: 'cluster',
        items: ['y'],
        depends_on: ['use'],
        steps: [
          {
            name: 'boom',
            type: 'script',
            params: {
              command: 'sh',
              args: [
                '-c',
                'echo "$1 / $2" >&2; exit 1',
                'sh',
                '{{ secrets.app2.db.password }}',
                '{{ operations.use.outputs.out }}',
              ],
            },
          },
        ],
      },
    ],
  };
}

describe('secrets end to end', () => {
  let dir: string;
  let result: { code: number | null; out: string; err: string };

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'muster-secrets-e2e-'));
    dirs.push(dir);
    copyFileSync(join(FIXTURES, 'example.yaml'), join(dir, 'secrets.enc.yaml'));
    writeFileSync(join(dir, 'wf.json'), JSON.stringify(workflow(dir)));
    result = await runMuster(dir, [
      'run',
      'wf.json',
      '--id',
      'sec-1',
      '--state-dir',
      'state',
      '--no-progress',
      '-o',
      'json',
    ]);
  }, 120_000);

  test('the secrets reached the steps that name them', () => {
    expect(result.code, result.err).toBe(3); // the second operation fails on purpose
    expect(readFileSync(join(dir, 'delivered.txt'), 'utf8')).toBe(SECRETS[0]);
  });

  test('no table, event, log line or CLI output holds a secret value', async () => {
    const db = new PGlite(join(dir, 'state', 'pglite'));
    const haystacks: Array<[string, string]> = [];
    try {
      const tables = await db.query<{ table_name: string }>(
        "select table_name from information_schema.tables where table_schema = 'public' and table_type = 'BASE TABLE'",
      );
      expect(tables.rows.length).toBeGreaterThanOrEqual(5);
      for (const { table_name } of tables.rows) {
        const rows = await db.query(`select * from "${table_name}"`);
        haystacks.push([`table ${table_name}`, JSON.stringify(rows.rows)]);
      }
      const events = await db.query<{ data: unknown }>('select data from events');
      // The scan means something: the secrets' redacted traces are there.
      const text = JSON.stringify(events.rows);
      expect(text).toContain('plain ***');
      expect(text).toContain('password=***');
      expect(text).toContain('bad ***');
      const tasks = JSON.stringify((await db.query('select result, failure from tasks')).rows);
      expect(tasks).toContain('"out":"***"');
      expect(tasks).toContain('*** / ***');
    } finally {
      await db.close();
    }
    const logs = readdirSync(join(dir, 'logs'));
    expect(logs.length).toBe(1);
    const log = readFileSync(join(dir, 'logs', logs[0]!), 'utf8');
    expect(log).toContain('"msg":"plain ***"');
    haystacks.push(['log file', log], ['stdout', result.out], ['stderr', result.err]);
    for (const [where, text] of haystacks) {
      for (const secret of FORMS)
        expect(text.includes(secret), `${where} holds ${secret}`).toBe(false);
    }
  });

  test('no API response about the run holds a secret value', async () => {
    const orchestrator = await createOrchestrator({ stateDir: join(dir, 'state') });
    const token = 'viewer-token-for-the-scan';
    const metrics = createMetrics({
      loadRun: (id) => orchestrator.store.loadRun(id),
      getRun: (id) => orchestrator.store.getRun(id),
    });
    const detach = metrics.attach(orchestrator);
    const app = createApp({
      orchestrator,
      auth: createAuth({ tokens: [{ role: 'viewer', token }] }),
      metrics,
      logError: () => {},
    });
    try {
      const routes = [
        '/workflows',
        '/workflows/sec-1/status',
        '/workflows/sec-1/logs',
        '/workflows/sec-1/plan',
        '/workflows/sec-1/metrics',
        '/metrics',
      ];
      const bodies: Array<[string, string]> = [];
      for (const route of routes) {
        const res = await app.request(route, { headers: { Authorization: `Bearer ${token}` } });
        expect(res.status, route).toBe(200);
        bodies.push([route, await res.text()]);
      }
      const ndjson = await app.request('/workflows/sec-1/logs', {
        headers: { Authorization: `Bearer ${token}`, Accept: 'application/x-ndjson' },
      });
      bodies.push(['logs as NDJSON', await ndjson.text()]);
      // The scan means something: the run's redacted output is in the log the API serves.
      expect(bodies.find(([r]) => r === '/workflows/sec-1/logs')?.[1]).toContain('plain ***');
      for (const [where, text] of bodies) {
        for (const secret of FORMS)
          expect(text.includes(secret), `${where} holds ${secret}`).toBe(false);
      }
    } finally {
      detach();
      await orchestrator.close();
    }
  });

  test('a tampered SOPS file stops muster run before a run is created', async () => {
    const source = readFileSync(join(FIXTURES, 'example.yaml'), 'utf8');
    writeFileSync(
      join(dir, 'secrets.enc.yaml'),
      source.replace('remain in clear text', 'remain in clear text!'),
    );
    const tampered = await runMuster(dir, [
      'run',
      'wf.json',
      '--id',
      'sec-2',
      '--state-dir',
      'state',
      '--no-progress',
    ]);
    expect(tampered.code).toBe(2);
    expect(tampered.err).toContain('failed its integrity check (MAC mismatch)');
    expect(tampered.out).toBe('');
  }, 60_000);
});
