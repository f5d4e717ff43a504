/**
 * Prometheus metrics on a registry of their own, fed by the orchestrator's events.
 *
 * Names start with `muster_`, durations are in seconds, counters end in `_total`. Labels stay
 * bounded: statuses, queue kinds (`server`, `provider`, `orchestrator`), HTTP route patterns —
 * never a run id, a task id or a server name. The process's own metrics (`process_*`,
 * `nodejs_*`) keep their standard names.
 *
 * @module
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Run, RunEvent, RunSnapshot } from '../engine/types.ts';
import { RUN_STATUSES } from '../engine/types.ts';
import { RunTracker, queueKind, type QueueKind } from './run-tracker.ts';

/** Options of {@link createMetrics}. */
export interface MetricsOptions {
  /** Reported by `muster_build_info{version}`. @default the package version */
  readonly version?: string;
  /** Loads a run's snapshot the first time one of its events is seen (queue depth, waits). */
  readonly loadRun?: (runId: string) => Promise<RunSnapshot | undefined>;
  /** Reads a run without its tasks: enough for a run seen from its first event. */
  readonly getRun?: (runId: string) => Promise<Run | undefined>;
  /** Also collect the process's metrics (CPU, memory, event loop). @default true */
  readonly processMetrics?: boolean;
}

/** A gauge another part of the server keeps current. */
export interface GaugeControl {
  set(value: number): void;
  inc(by?: number): void;
  dec(by?: number): void;
}

/** The server's metrics. */
export interface Metrics {
  readonly registry: Registry;
  /** The `Content-Type` of {@link Metrics.render}'s text. */
  readonly contentType: string;
  /** Takes one committed event. */
  observe(event: RunEvent): void;
  /** Feeds the metrics from an orchestrator's events; returns the unsubscribe function. */
  attach(source: { subscribe(listener: (event: RunEvent) => void): () => void }): () => void;
  /** Records an answered HTTP request, by route pattern (`/workflows/:id/status`). */
  observeRequest(method: string, route: string, status: number, seconds: number): void;
  /** WebSocket clients connected now: the WS server keeps it current. */
  readonly wsClients: GaugeControl;
  /** Agents connected now: the agent gateway keeps it current. */
  readonly agents: GaugeControl;
  /** The exposition text. */
  render(): Promise<string>;
  /** Resolves once pending snapshot loads are done (tests, shutdown). */
  settled(): Promise<void>;
}

const TASK_STATUS_OF: Partial<Record<RunEvent['type'], string>> = {
  'task:started': 'running',
  'task:succeeded': 'succeeded',
  'task:skipped': 'skipped',
  'task:cancelled': 'cancelled',
  'task:compensated': 'rolled_back',
};

const RUN_STATUS_OF: Partial<Record<RunEvent['type'], string>> = {
  'run:started': 'running',
  'run:retrying': 'running',
  'run:resumed': 'running',
  'run:paused': 'paused',
  'run:succeeded': 'succeeded',
  'run:failed': 'failed',
  'run:cancelling': 'cancelling',
  'run:cancelled': 'cancelled',
  'run:rolling_back': 'rolling_back',
  'run:rolled_back': 'rolled_back',
};

const QUEUE_KINDS: readonly QueueKind[] = ['server', 'provider', 'orchestrator'];

/**
 * Creates the metrics on a fresh registry.
 *
 * @param options The version to report and how to load a run's snapshot.
 *
 * @returns The metrics; feed them with `attach(orchestrator)`.
 *
 * @example
 * ```ts
 * const { store } = orchestrator;
 * const metrics = createMetrics({ loadRun: (id) => store.loadRun(id), getRun: (id) => store.getRun(id) });
 * metrics.attach(orchestrator);
 * app.get('/metrics', async (c) => c.text(await metrics.render()));
 * ```
 */
export function createMetrics(options: MetricsOptions = {}): Metrics {
  const registry = new Registry();
  if (options.processMetrics ?? true) collectDefaultMetrics({ register: registry });
  const registers = [registry];

  new Gauge({
    name: 'muster_build_info',
    help: 'Muster build information; always 1',
    labelNames: ['version', 'node'],
    registers,
  }).set({ version: options.version ?? '0.1.0', node: process.versions.node }, 1);

  const runs = new Counter({
    name: 'muster_runs_total',
    help: 'Runs entering each status',
    labelNames: ['status'],
    registers,
  });
  const tasks = new Counter({
    name: 'muster_tasks_total',
    help: 'Tasks entering each status (running: each attempt started)',
    labelNames: ['status'],
    registers,
  });
  const retries = new Counter({
    name: 'muster_task_retries_total',
    help: 'Failed task attempts that will be retried',
    registers,
  });
  const rollbacks = new Counter({
    name: 'muster_rollbacks_total',
    help: 'Rollbacks started, automatic or requested',
    registers,
  });
  const taskDuration = new Histogram({
    name: 'muster_task_duration_seconds',
    help: 'Duration of task attempts that finished, by outcome and queue kind',
    labelNames: ['status', 'queue_kind'],
    buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600],
    registers,
  });
  const runDuration = new Histogram({
    name: 'muster_run_duration_seconds',
    help: 'Duration of runs from start to a final status',
    labelNames: ['status'],
    buckets: [0.1, 1, 5, 10, 30, 60, 300, 900, 1800, 3600, 7200, 21600],
    registers,
  });
  const queueWait = new Histogram({
    name: 'muster_queue_wait_seconds',
    help: 'Time tasks waited between becoming startable and starting, by queue kind',
    labelNames: ['queue_kind'],
    buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900],
    registers,
  });
  const httpRequests = new Counter({
    name: 'muster_http_requests_total',
    help: 'HTTP requests answered, by method, route pattern and status',
    labelNames: ['method', 'route', 'status'],
    registers,
  });
  const httpDuration = new Histogram({
    name: 'muster_http_request_duration_seconds',
    help: 'Time to answer HTTP requests (streams: until their headers), by method and route',
    labelNames: ['method', 'route'],
    buckets: [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
    registers,
  });
  const webSocketClients = new Gauge({
    name: 'muster_websocket_clients',
    help: 'WebSocket clients connected now',
    registers,
  });
  const connectedAgents = new Gauge({
    name: 'muster_agents_connected',
    help: 'Agents connected now',
    registers,
  });

  const tracker = new RunTracker(
    options.loadRun ?? (async () => undefined),
    {
      onWait: (kind, seconds) => queueWait.observe({ queue_kind: kind }, seconds),
      onRunEnded: (status, seconds) => runDuration.observe({ status }, seconds),
    },
    options.getRun,
  );
  new Gauge({
    name: 'muster_queue_depth',
    help: 'Tasks of running runs waiting to start, by queue kind',
    labelNames: ['queue_kind'],
    registers,
    collect() {
      const depth = tracker.depth();
      for (const kind of QUEUE_KINDS) this.set({ queue_kind: kind }, depth[kind]);
    },
  });
  new Gauge({
    name: 'muster_runs_active',
    help: 'Runs this server drives that have not ended, by status',
    labelNames: ['status'],
    registers,
    collect() {
      const counts = tracker.statuses();
      for (const status of RUN_STATUSES) this.set({ status }, counts.get(status) ?? 0);
    },
  });

  // Attempts under way, to time failed ones and label them by queue kind; bounded by running tasks.
  const running = new Map<string, Map<string, { at: number; kind: QueueKind }>>();

  const observe = (event: RunEvent): void => {
    tracker.observe(event);
    const runStatus = RUN_STATUS_OF[event.type];
    if (runStatus) {
      runs.inc({ status: runStatus });
      if (event.type === 'run:rolling_back') rollbacks.inc();
      if (
        ['run:succeeded', 'run:failed', 'run:cancelled', 'run:rolled_back'].includes(event.type)
      ) {
        running.delete(event.runId);
      }
      return;
    }
    if (event.taskId === null) return;
    const attempts = running.get(event.runId);
    const attempt = attempts?.get(event.taskId);
    const finished = (status: string, seconds?: number) => {
      attempts?.delete(event.taskId!);
      if (attempts?.size === 0) running.delete(event.runId);
      const elapsed = seconds ?? (attempt ? (event.at.getTime() - attempt.at) / 1000 : undefined);
      if (elapsed !== undefined) {
        taskDuration.observe(
          { status, queue_kind: attempt?.kind ?? 'orchestrator' },
          Math.max(0, elapsed),
        );
      }
    };
    switch (event.type) {
      case 'task:started': {
        const { queue } = (event as RunEvent<'task:started'>).data;
        const map = attempts ?? new Map();
        map.set(event.taskId, { at: event.at.getTime(), kind: queueKind(queue) });
        running.set(event.runId, map);
        break;
      }
      case 'task:succeeded':
        finished('succeeded', (event as RunEvent<'task:succeeded'>).data.durationMs / 1000);
        break;
      case 'task:failed': {
        const data = (event as RunEvent<'task:failed'>).data;
        if (data.final) tasks.inc({ status: 'failed' });
        else retries.inc();
        finished('failed');
        return;
      }
      case 'task:cancelled':
        finished('cancelled');
        break;
      default:
        break;
    }
    const taskStatus = TASK_STATUS_OF[event.type];
    if (taskStatus) tasks.inc({ status: taskStatus });
  };

  const gauge = (g: Gauge): GaugeControl => ({
    set: (value) => g.set(value),
    inc: (by = 1) => g.inc(by),
    dec: (by = 1) => g.dec(by),
  });

  return {
    registry,
    contentType: registry.contentType,
    observe,
    attach: (source) => source.subscribe(observe),
    observeRequest(method, route, status, seconds) {
      httpRequests.inc({ method, route, status: String(status) });
      httpDuration.observe({ method, route }, seconds);
    },
    wsClients: gauge(webSocketClients),
    agents: gauge(connectedAgents),
    render: () => registry.metrics(),
    settled: () => tracker.settled(),
  };
}
