/**
 * `muster run`'s work (see index.ts): the workflow checked, the embedded or given database
 * opened, the run submitted or resumed, driven to its end with progress and logs, and summed up.
 *
 * @module
 */
import { hostname } from 'node:os';
import { dirname, resolve } from 'node:path';
import * as v from 'valibot';
import { resolveRunWorkflow } from '../../../../schemas/src/inputs.ts';
import { InvalidWorkflowError } from '../../../../schemas/src/problems.ts';
import { LoggingSchema, type Workflow } from '../../../../schemas/src/workflow.ts';
import { createRunEventLog } from '../../../../orchestrator/src/logging/index.ts';
import { loadSecrets, SecretsError } from '../../../../orchestrator/src/secrets/index.ts';
import {
  createOrchestrator,
  RunDrivenElsewhereError,
  type Orchestrator,
} from '../../../../orchestrator/src/orchestrator.ts';
import { loadAndPlanFile } from '../../../../orchestrator/src/plan/load-and-plan.ts';
import { renderSummaryTable, summarizeRun } from '../../../../orchestrator/src/status.ts';
import { FINAL_RUN_STATUSES, type RunStatus } from '../../../../orchestrator/src/engine/types.ts';
import { createProgressReporter } from '../../progress.ts';
import { compileWasmForShortRuns } from '../../wasm-tier.ts';
import { EXIT_INTERRUPTED, EXIT_OK, EXIT_RUN_FAILED, UsageError } from '../../exit.ts';
import type { RunFlags } from './index.ts';

/**
 * Runs `file` as `muster run` does.
 *
 * @returns The exit code: 0 succeeded (or paused for approval), 3 the run did not succeed.
 */
export async function run(file: string, flags: RunFlags): Promise<number> {
  const concurrency = flags.concurrency === undefined ? undefined : Number(flags.concurrency);
  if (concurrency !== undefined && (!Number.isInteger(concurrency) || concurrency < 1)) {
    throw new UsageError(
      `--concurrency takes a whole number of at least 1, not "${flags.concurrency}"`,
    );
  }
  compileWasmForShortRuns();
  // Without --id the run is new: check the file, its inputs and secrets before opening the
  // database, so that a mistake is reported at once.
  const prepared = flags.id === undefined ? await prepareRun(file, flags) : undefined;
  const orchestrator = await createOrchestrator({
    ...(flags.databaseUrl ? { databaseUrl: flags.databaseUrl } : {}),
    ...(flags.stateDir ? { stateDir: flags.stateDir } : {}),
    ...(concurrency ? { concurrency } : {}),
    ...(flags.handlers ? { handlers: flags.handlers.split(',').map((s) => s.trim()) } : {}),
    // On PostgreSQL, `muster run --id ID` started again on this machine is the same lease owner,
    // so it takes its run back at once after a crash instead of waiting for the lease to expire.
    ...(flags.id ? { replicaId: `run:${hostname()}:${flags.id}` } : {}),
  });
  let interrupted = false;
  let closeLog = () => {};
  try {
    const existing = flags.id ? await orchestrator.store.getRun(flags.id) : undefined;
    let runId: string;
    let plan;
    let workflow: unknown;
    if (existing) {
      runId = existing.id;
      plan = existing.plan;
      workflow = existing.workflow;
      if (flags.set.length > 0 || flags.env !== undefined) {
        process.stderr.write(
          `note: run ${runId} keeps the inputs it started with; --set and --env are ignored when resuming\n`,
        );
      }
    } else {
      const ready = prepared ?? (await prepareRun(file, flags));
      plan = ready.plan;
      workflow = ready.workflow;
      const { run } = await orchestrator.submit(ready.workflow, ready.plan, {
        ...(flags.id ? { id: flags.id } : {}),
        labels: ready.labels,
      });
      runId = run.id;
    }
    const logging = v.safeParse(
      LoggingSchema,
      (workflow as { logging?: unknown } | null)?.logging ?? {},
    );
    const eventLog = createRunEventLog(
      runId,
      logging.success ? logging.output : v.parse(LoggingSchema, {}),
      {
        workflow: plan.workflow,
        // Data on stdout, the rest on stderr: console logs must not mix with the summary or the bars.
        stdout: flags.progress ? { write: () => true } : process.stderr,
      },
    );
    closeLog = () => eventLog.close();
    orchestrator.subscribe((e) => {
      if (e.runId === runId) eventLog.log(e);
    });
    process.stderr.write(
      `${existing ? 'resuming' : 'running'} ${runId} (${plan.tasks.length} tasks)\n`,
    );

    const progress = flags.progress ? createProgressReporter(plan) : undefined;
    // With `remote`: also while another replica drives the run (PostgreSQL).
    const unsubscribe = orchestrator.subscribe((e) => progress?.onEvent(e), { remote: true });
    const driver = await leasedDriver(orchestrator, runId);
    if (driver === undefined) {
      // Another replica drove the run to its end while this one waited.
      unsubscribe();
      progress?.stop();
      const summary = await printSummary(orchestrator, runId, flags.output);
      return summary.status === 'succeeded' ? EXIT_OK : EXIT_RUN_FAILED;
    }
    const paused = new Promise<'paused'>((resolve) => {
      orchestrator.subscribe((e) => {
        if (e.runId === runId && e.type === 'run:paused') resolve('paused');
      });
    });
    const onSigint = () => {
      interrupted = true;
      progress?.stop();
      process.stderr.write(`\ninterrupted: resume with \`muster run ${file} --id ${runId}\`\n`);
      process.exit(EXIT_INTERRUPTED);
    };
    process.once('SIGINT', onSigint);
    await driver.start();
    if (flags.approve && driver.runStatus === 'paused') await driver.resume();
    const outcome: RunStatus | 'paused' =
      driver.runStatus === 'paused' ? 'paused' : await Promise.race([driver.done, paused]);
    process.off('SIGINT', onSigint);
    unsubscribe();
    progress?.stop();

    await printSummary(orchestrator, runId, flags.output);
    if (outcome === 'paused') {
      process.stderr.write(
        `run ${runId} is paused (a canary awaits approval); continue with \`muster run ${file} --id ${runId} --approve\`\n`,
      );
      return EXIT_OK;
    }
    return outcome === 'succeeded' ? EXIT_OK : EXIT_RUN_FAILED;
  } finally {
    closeLog();
    if (!interrupted) await orchestrator.close();
  }
}

/** Prints the run's summary on stdout, as a table or JSON, and returns it. */
async function printSummary(orchestrator: Orchestrator, runId: string, output: RunFlags['output']) {
  const summary = summarizeRun((await orchestrator.store.loadRun(runId))!);
  process.stdout.write(
    output === 'json' ? `${JSON.stringify(summary, null, 2)}\n` : renderSummaryTable(summary),
  );
  return summary;
}

/**
 * A new run's workflow and plan: the file loaded and planned, inputs resolved from `--env` and
 * `--set`, secrets read once.
 *
 * @throws {InvalidWorkflowError} With every problem in the file, its inputs or its secrets.
 */
async function prepareRun(file: string, flags: RunFlags) {
  const loaded = await loadAndPlanFile(file);
  const resolved = resolveRunWorkflow(loaded.loaded.workflow, {
    set: flags.set,
    ...(flags.env !== undefined ? { environment: flags.env } : {}),
    baseDir: dirname(resolve(file)),
    file,
  });
  await checkSecrets(resolved.workflow, file);
  return { plan: loaded.plan, workflow: resolved.workflow, labels: resolved.labels };
}

/**
 * Reads the workflow's secrets once before the run is created, so that a missing key or a
 * tampered file is an input error (exit 2) rather than every task failing.
 */
async function checkSecrets(workflow: Workflow, file: string): Promise<void> {
  if (!workflow.secrets) return;
  try {
    await loadSecrets(workflow.secrets, { env: process.env });
  } catch (e: unknown) {
    if (!(e instanceof SecretsError)) throw e;
    throw new InvalidWorkflowError(
      [{ code: 'secrets', path: 'secrets', message: e.message, file }],
      file,
    );
  }
}

/**
 * The run's driver; on PostgreSQL, once this process holds the run's lease. While another
 * process drives it (a server replica that took it over, or a `muster run` still alive), waits
 * — its events still show here — until the run ends there (`undefined`) or its lease is free.
 */
async function leasedDriver(orchestrator: Orchestrator, runId: string) {
  let told = false;
  for (;;) {
    try {
      return await orchestrator.driver(runId);
    } catch (e: unknown) {
      if (!(e instanceof RunDrivenElsewhereError)) throw e;
      const run = await orchestrator.store.getRun(runId);
      if (run && FINAL_RUN_STATUSES.has(run.status)) return undefined;
      if (!told) {
        process.stderr.write(
          `run ${runId} is driven by ${e.owner}; following it until it ends or is let go\n`,
        );
        told = true;
      }
      await new Promise((r) => setTimeout(r, 500));
    }
  }
}
