/**
 * bench/plan: how fast a workflow is validated and planned, against the `toposort` npm package
 * sorting the same graph.
 *
 * Workloads: random DAG workflows of 1k, 10k and 100k operations (each depends on up to two
 * earlier ones, so about 2 edges per operation; target `cluster`, one item, one echo step), from a
 * seeded generator so every run plans the same graphs. Each size runs in its own process, so its
 * peak RSS is its own: the workflow document, the validated workflow and the plan. Times are
 * medians over several runs after a warm-up; toposort runs after planning.
 *
 * Run: `npm run bench:plan` (or `npx tsx bench/plan.ts 1000 50000`). Targets at 100k operations:
 * validated and planned in under 300 ms, planning no slower than toposort alone, under 500 MB.
 *
 * Figures (2 vCPU AMD EPYC VM shared with other jobs, load average 4-6, Node 20.20; medians).
 * Validation goes through `fastSafeParse` (`schemas/src/fast-validate.ts`): a validator compiled
 * from the valibot schema objects, same output, valibot's issues when invalid.
 *
 *   before (valibot):
 *   operations   validate      plan      total   toposort   plan/topo   peak RSS
 *        1,000     4.7 ms    1.1 ms     5.8 ms     0.8 ms       1.26x      94 MB
 *       10,000    49.1 ms   19.6 ms    68.7 ms    19.7 ms       0.99x     126 MB
 *      100,000   491-633 ms 402-542 ms 893-1176 ms 424-706 ms  0.77-1.06x  331 MB
 *
 *   after (compiled validator):
 *        1,000     0.6 ms    0.6 ms     1.2 ms     0.8 ms       0.75x      99 MB
 *       10,000    12.8 ms   29.3 ms    42.1 ms    17.8 ms       1.64x     116 MB
 *      100,000   221-316 ms 327-414 ms 547-711 ms 387-617 ms  0.66-0.84x  325 MB
 *
 * Same process, same 100k document, alternating, after a forced GC (10 runs each): valibot min
 * 493 ms, compiled min 142 ms (3.5x); medians are dominated by other jobs on the VM. At 10k,
 * planning now measures 1.3-2.2x toposort (valibot: 0.9-1.0x in the same conditions): the
 * scavenges that valibot's slower walk absorbed now land in planning, on the freshly built
 * workflow; validate + plan together take 55-83 ms there against 115-119 ms with valibot.
 *
 * Not reached: the 300 ms total. Planning stays at or below toposort (0.66-0.95x at 100k), and its
 * floor is the same as toposort's: resolving 200k `depends_on` names through a 100k-entry Map
 * (100-130 ms for the lookups alone on fresh strings, measured) plus allocating the plan's 400k
 * objects, with scavenges of the live document, workflow and plan as the largest single cost in
 * CPU profiles. Memory stays under 500 MB (peak RSS includes ~90 MB of Node and tsx).
 *
 * @module
 */
import { execFileSync } from 'node:child_process';
import { fileURLToPath, pathToFileURL } from 'node:url';
import toposort from 'toposort';
import { planWorkflow } from '../orchestrator/src/plan/index.ts';
import { fastParse } from '../schemas/src/fast-validate.ts';
import { WorkflowSchema, type WorkflowInput } from '../schemas/src/workflow.ts';

/** Deterministic pseudo-random numbers in [0, 1) (mulberry32). */
export function seededRandom(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * Generates a random acyclic workflow as a user would write it (before validation).
 *
 * Operation `op-i` depends on up to two distinct earlier operations, so the graph is a DAG of
 * about `2 × size` edges.
 *
 * @param size The number of operations.
 * @param seed The random seed.
 * @returns The workflow document.
 */
export function generateWorkflow(size: number, seed = 42): WorkflowInput {
  const random = seededRandom(seed);
  const operations: WorkflowInput['operations'] = [];
  for (let i = 0; i < size; i++) {
    const depends_on: string[] = [];
    for (let k = 0; k < 2 && i > 0; k++) {
      const dependency = `op-${Math.floor(random() * i)}`;
      if (!depends_on.includes(dependency)) depends_on.push(dependency);
    }
    operations.push({
      id: `op-${i}`,
      type: 'update',
      target: 'cluster',
      items: ['main'],
      depends_on,
      steps: [{ name: 'say', type: 'echo', params: { message: `operation ${i}` } }],
    });
  }
  return { name: `bench-${size}`, operations };
}

/** The `[dependency, operation]` pairs of a generated workflow, as `toposort` takes them. */
export function edgesOf(workflow: WorkflowInput): Array<[string, string]> {
  const edges: Array<[string, string]> = [];
  for (const op of workflow.operations) {
    for (const dependency of op.depends_on ?? []) edges.push([dependency, op.id]);
  }
  return edges;
}

/** What one size measures, in milliseconds and bytes. */
interface Measurement {
  size: number;
  tasks: number;
  edges: number;
  validate: number;
  plan: number;
  toposort: number;
  /** The fastest validate + plan run, the least disturbed by other processes. */
  bestTotal: number;
  /** Peak RSS of the process after the first validate + plan (what one CLI call costs). */
  peakRss: number;
  /** Heap in use with the document, the validated workflow and the plan alive. */
  heap: number;
}

function time<T>(run: () => T): [T, number] {
  const start = performance.now();
  const result = run();
  return [result, performance.now() - start];
}

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)]!;
}

/** Measures one size in this process. */
function measure(size: number, runs: number): Measurement {
  // Warm-up, so the first run is not charged for JIT compilation.
  for (let r = 0; r < 10; r++) planWorkflow(fastParse(WorkflowSchema, generateWorkflow(1000, r)));

  const input = generateWorkflow(size);
  const validate: number[] = [];
  const plan: number[] = [];
  let peakRss = 0;
  for (let r = 0; r < runs; r++) {
    const [workflow, validated] = time(() => fastParse(WorkflowSchema, input));
    const [, planned] = time(() => planWorkflow(workflow));
    validate.push(validated);
    plan.push(planned);
    if (r === 0) peakRss = process.resourceUsage().maxRSS * 1024;
  }
  // The heap with one document, its validated workflow and its plan alive, after a full GC.
  const workflow = fastParse(WorkflowSchema, input);
  const result = planWorkflow(workflow);
  globalThis.gc?.();
  const heap = process.memoryUsage().heapUsed;
  if (result.workflow !== workflow.name) throw new Error('planned another workflow');

  const pairs = edgesOf(input);
  const topo: number[] = [];
  for (let r = 0; r < runs; r++) topo.push(time(() => toposort(pairs))[1]);
  return {
    size,
    tasks: result.tasks.length,
    edges: result.edges.length,
    validate: median(validate),
    plan: median(plan),
    toposort: median(topo),
    bestTotal: Math.min(...validate.map((t, r) => t + plan[r]!)),
    peakRss,
    heap,
  };
}

/** Runs each size in a fresh process (for its own peak RSS) and prints a table. */
function main(sizes: readonly number[]): void {
  const script = fileURLToPath(import.meta.url);
  const ms = (n: number) => `${n.toFixed(1)} ms`.padStart(10);
  const mb = (bytes: number) => `${Math.round(bytes / 2 ** 20)} MB`.padStart(8);
  console.log(
    [
      'operations'.padStart(10),
      'tasks'.padStart(7),
      'edges'.padStart(7),
      'validate'.padStart(10),
      'plan'.padStart(10),
      'total'.padStart(10),
      'best tot.'.padStart(10),
      'toposort'.padStart(10),
      'plan/topo',
      'total/topo',
      'peak RSS',
      '    heap',
    ].join('  '),
  );
  for (const size of sizes) {
    const output = execFileSync(
      process.execPath,
      [...process.execArgv, '--expose-gc', script, '--child', String(size)],
      { encoding: 'utf8', maxBuffer: 1 << 20 },
    );
    const m = JSON.parse(output) as Measurement;
    const total = m.validate + m.plan;
    console.log(
      [
        String(m.size).padStart(10),
        String(m.tasks).padStart(7),
        String(m.edges).padStart(7),
        ms(m.validate),
        ms(m.plan),
        ms(total),
        ms(m.bestTotal),
        ms(m.toposort),
        `${(m.plan / m.toposort).toFixed(2)}x`.padStart(9),
        `${(total / m.toposort).toFixed(2)}x`.padStart(10),
        mb(m.peakRss),
        mb(m.heap),
      ].join('  '),
    );
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const args = process.argv.slice(2);
  if (args[0] === '--child') {
    const size = Number(args[1]);
    // Small sizes are noisy: more runs, so the median means something.
    const runs = size <= 1_000 ? 50 : size <= 10_000 ? 15 : 5;
    process.stdout.write(JSON.stringify(measure(size, runs)));
  } else {
    const sizes = args.map(Number).filter((n) => Number.isInteger(n) && n > 0);
    main(sizes.length > 0 ? sizes : [1_000, 10_000, 100_000]);
  }
}
