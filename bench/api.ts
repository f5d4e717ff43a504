/**
 * bench/api: the REST API under 50 concurrent clients on loopback.
 *
 * - submit throughput: `POST /workflows/batch` of a small JSON workflow (load, validate, plan,
 *   create the run, start it), runs driven by a no-op executor so the figure is the API's and the
 *   store's, not the steps';
 * - read latency: `GET /workflows/{id}/status` of random runs, and `GET /workflows?limit=50`,
 *   while nothing else runs.
 *
 * Every loop is bounded (`BENCH_SUBMITS`, `BENCH_READS`; `BENCH_CLIENTS` clients). PGlite in a
 * temporary directory; PostgreSQL when `DATABASE_URL` is set. WebSocket fan-out (1,000
 * subscribers to one busy run) is measured by the streams' own bench (see `phases` below: a
 * phase is one function of the running server).
 *
 * Run: `npm run bench:api`.
 *
 * @module
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createOrchestrator } from '../orchestrator/src/orchestrator.ts';
import type { Dispatcher } from '../orchestrator/src/engine/dispatch.ts';
import { startServer, type RunningServer } from '../orchestrator/src/api/server.ts';

const CLIENTS = Number(process.env['BENCH_CLIENTS'] ?? 50);
const SUBMITS = Number(process.env['BENCH_SUBMITS'] ?? 1000);
const READS = Number(process.env['BENCH_READS'] ?? 2000);
const TOKEN = 'bench-operator-token';

const noop: Dispatcher = {
  dispatch: async () => ({
    status: 'succeeded',
    result: { steps: [{ index: 0, name: 'noop', status: 'succeeded' }] },
  }),
};

function workflow(i: number) {
  return {
    name: `bench-${i % 20}`,
    labels: { bench: 'api' },
    operations: [
      {
        id: 'prepare',
        type: 'update',
        target: 'cluster',
        items: ['a', 'b'],
        steps: [{ name: 'noop', type: 'echo', params: { message: 'x' } }],
      },
      {
        id: 'apply',
        type: 'update',
        target: 'cluster',
        items: ['a', 'b'],
        depends_on: ['prepare'],
        steps: [{ name: 'noop', type: 'echo', params: { message: 'x' } }],
      },
    ],
  };
}

interface Figures {
  readonly requests: number;
  readonly seconds: number;
  readonly latenciesMs: number[];
  readonly errors: number;
}

/** Runs `total` requests from `CLIENTS` concurrent clients, each timing its own. */
async function load(total: number, send: (i: number) => Promise<Response>): Promise<Figures> {
  const latenciesMs: number[] = [];
  let next = 0;
  let errors = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CLIENTS }, async () => {
      for (let i = next++; i < total; i = next++) {
        const t = performance.now();
        const res = await send(i);
        await res.arrayBuffer();
        latenciesMs.push(performance.now() - t);
        if (!res.ok) errors++;
      }
    }),
  );
  return { requests: total, seconds: (performance.now() - started) / 1000, latenciesMs, errors };
}

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? NaN;
}

function report(name: string, f: Figures): void {
  const sorted = [...f.latenciesMs].sort((a, b) => a - b);
  const ms = (x: number) => `${x.toFixed(1)} ms`;
  console.log(
    `${name.padEnd(28)} ${String(f.requests).padStart(6)} req  ${(f.requests / f.seconds)
      .toFixed(0)
      .padStart(6)} req/s  p50 ${ms(percentile(sorted, 50))}  p95 ${ms(
      percentile(sorted, 95),
    )}  p99 ${ms(percentile(sorted, 99))}  max ${ms(sorted.at(-1) ?? NaN)}` +
      (f.errors ? `  ERRORS ${f.errors}` : ''),
  );
}

/** One measurement against the running server. */
type Phase = (server: RunningServer, ids: string[]) => Promise<void>;

const headers = { Authorization: `Bearer ${TOKEN}` };

const phases: Array<[string, Phase]> = [
  [
    'submit',
    async (server, ids) => {
      const f = await load(SUBMITS, (i) =>
        fetch(`${server.url}/workflows/batch`, {
          method: 'POST',
          headers: { ...headers, 'Content-Type': 'application/json' },
          body: JSON.stringify(workflow(i)),
        }).then(async (res) => {
          const clone = res.clone();
          if (res.status === 201) ids.push(((await clone.json()) as { id: string }).id);
          return res;
        }),
      );
      report(`POST /workflows/batch (${CLIENTS} clients)`, f);
    },
  ],
  [
    'drain',
    async (server, ids) => {
      // Let the submitted runs finish, so reads measure reads alone.
      const t = performance.now();
      for (;;) {
        const res = await fetch(`${server.url}/workflows?status=running&limit=1`, { headers });
        const page = (await res.json()) as { items: unknown[] };
        if (page.items.length === 0) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      console.log(
        `${ids.length} runs finished ${((performance.now() - t) / 1000).toFixed(1)} s after the last submit`,
      );
    },
  ],
  [
    'status',
    async (server, ids) => {
      const f = await load(READS, (i) =>
        fetch(`${server.url}/workflows/${ids[(i * 7919) % ids.length]}/status`, { headers }),
      );
      report(`GET /workflows/{id}/status`, f);
    },
  ],
  [
    'list',
    async (server) => {
      const f = await load(READS, () =>
        fetch(`${server.url}/workflows?limit=50&label=bench=api`, { headers }),
      );
      report('GET /workflows?limit=50', f);
    },
  ],
];

async function main(): Promise<void> {
  const stateDir = await mkdtemp(join(tmpdir(), 'muster-bench-api-'));
  const orchestrator = await createOrchestrator(
    {
      stateDir,
      ...(process.env['DATABASE_URL'] ? { databaseUrl: process.env['DATABASE_URL'] } : {}),
    },
    { dispatcher: noop },
  );
  const server = await startServer({
    port: 0,
    orchestrator,
    tokensEnv: `operator:${TOKEN}`,
    log: () => {},
    // Runs' log files are written (their cost is measured); their console lines would bury the
    // figures.
    runLogStdout: { write: () => true },
  });
  console.log(
    `bench/api: ${server.url}, store ${orchestrator.store.driver}, ${CLIENTS} clients, ` +
      `${SUBMITS} submits, ${READS} reads per read route\n`,
  );
  const ids: string[] = [];
  try {
    for (const [, phase] of phases) await phase(server, ids);
    const rss = process.memoryUsage().rss / 1024 / 1024;
    console.log(`\nserver process RSS at the end: ${rss.toFixed(0)} MiB`);
  } finally {
    await server.close();
    await rm(stateDir, { recursive: true, force: true });
  }
}

await main();
