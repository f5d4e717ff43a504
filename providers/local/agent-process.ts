/**
 * The agent process of a local server: how it is started, found again through its pid file,
 * stopped, and cleaned up after.
 *
 * @module
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, readdir, readlink, rename, rm, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { join, sep } from 'node:path';

/** How to start `muster agent`: a program and the arguments before `agent`. */
export interface AgentCommand {
  readonly command: string;
  readonly args: readonly string[];
}

/** What the pid file of a local agent holds. */
export interface AgentPidFile {
  readonly pid: number;
  /** The orchestrator it was told to connect to. */
  readonly url: string;
  readonly startedAt: string;
}

/**
 * The command that starts this checkout's `muster agent` in a lean process: the compiled
 * JavaScript when built; from source, one bundled file (esbuild, which tsx brings) that starts in
 * a fraction of the time tsx takes to compile the sources, or tsx itself when bundling is not
 * possible or custom handlers are TypeScript.
 */
export async function defaultAgentCommand(
  options: { readonly handlers?: readonly string[] } = {},
): Promise<AgentCommand> {
  const built = new URL('../../cli/src/agent-main.js', import.meta.url);
  if (existsSync(fileURLToPath(built))) {
    return { command: process.execPath, args: [fileURLToPath(built)] };
  }
  const source = fileURLToPath(new URL('../../cli/src/agent-main.ts', import.meta.url));
  const tsx: AgentCommand = {
    command: process.execPath,
    args: ['--import', import.meta.resolve('tsx'), source],
  };
  if (options.handlers?.some((h) => /\.[cm]?tsx?$/.test(h))) return tsx;
  const bundle = await bundleAgent(source).catch(() => undefined);
  return bundle ? { command: process.execPath, args: [bundle] } : tsx;
}

let bundling: Promise<string> | undefined;

/**
 * Bundles the agent's sources once per process into `node_modules/.cache/muster-agent/`, named
 * by the content's hash, so processes built from other sources never share a file.
 */
function bundleAgent(source: string): Promise<string> {
  bundling ??= (async () => {
    const esbuild = await import('esbuild');
    const result = await esbuild.build({
      entryPoints: [source],
      bundle: true,
      platform: 'node',
      format: 'esm',
      target: 'node20',
      packages: 'external',
      write: false,
      logLevel: 'silent',
      outfile: 'agent.mjs',
    });
    const text = result.outputFiles[0]!.text;
    const root = fileURLToPath(new URL('../../', import.meta.url));
    // Inside the checkout, so the bundle's imports resolve to its node_modules.
    const dir = join(root, 'node_modules', '.cache', 'muster-agent');
    const hash = createHash('sha256').update(text).digest('hex').slice(0, 16);
    const file = join(dir, `agent-${hash}.mjs`);
    if (!existsSync(file)) {
      await mkdir(dir, { recursive: true });
      const tmp = `${file}.${process.pid}.tmp`;
      await writeFile(tmp, text);
      await rename(tmp, file);
    }
    return file;
  })();
  bundling.catch(() => (bundling = undefined));
  return bundling;
}

/** Reads a pid file; `undefined` when there is none or it is unreadable. */
export async function readPidFile(file: string): Promise<AgentPidFile | undefined> {
  try {
    const data = JSON.parse(await readFile(file, 'utf8')) as Partial<AgentPidFile>;
    if (typeof data.pid !== 'number' || typeof data.url !== 'string') return undefined;
    return { pid: data.pid, url: data.url, startedAt: String(data.startedAt ?? '') };
  } catch {
    return undefined;
  }
}

/** Writes a pid file. */
export async function writePidFile(file: string, data: AgentPidFile): Promise<void> {
  await writeFile(file, `${JSON.stringify(data)}\n`);
}

/** Removes a pid file, if any. */
export async function removePidFile(file: string): Promise<void> {
  await rm(file, { force: true });
}

/**
 * Whether `pid` is a live agent of `server`: the process exists, is no zombie, and (where `/proc`
 * tells) its command line names the server, so a recycled pid is not mistaken for the agent.
 */
export async function isAgentAlive(pid: number, server: string): Promise<boolean> {
  try {
    process.kill(pid, 0);
  } catch (e: unknown) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
  if (process.platform !== 'linux') return true;
  try {
    const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
    const state = stat.slice(stat.lastIndexOf(')') + 2).split(' ')[0];
    if (state === 'Z' || state === 'X') return false;
    const argv = (await readFile(`/proc/${pid}/cmdline`, 'utf8')).split('\0');
    const i = argv.indexOf('--server');
    return argv.includes('agent') && i >= 0 && argv[i + 1] === server;
  } catch {
    return false;
  }
}

/** Waits until `pid` is gone, polling; true when it is, false after `timeoutMs`. */
export async function waitForExit(
  pid: number,
  server: string,
  timeoutMs: number,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!(await isAgentAlive(pid, server))) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, 25));
  }
}

/** Sends a signal; false when the process is gone. */
export function signal(pid: number, sig: NodeJS.Signals): boolean {
  try {
    process.kill(pid, sig);
    return true;
  } catch {
    return false;
  }
}

/**
 * Kills the processes left working in a sandbox by an agent that died without stopping them (a
 * SIGKILLed agent's scripts lead their own process groups and live on). Linux only: a step's
 * processes are found in `/proc` by their working directory and the `MUSTER_TASK_ID` in their
 * environment.
 *
 * @returns how many processes were killed
 */
export async function killStrays(sandbox: string, except: ReadonlySet<number> = new Set()) {
  if (process.platform !== 'linux') return 0;
  let killed = 0;
  let entries: string[];
  try {
    entries = await readdir('/proc');
  } catch {
    return 0;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid || except.has(pid)) continue;
    let cwd: string;
    try {
      cwd = await readlink(`/proc/${pid}/cwd`);
    } catch {
      continue;
    }
    if (cwd !== sandbox && !cwd.startsWith(sandbox + sep)) continue;
    // Only a step's processes: they carry the task's environment (a user's shell there does not).
    let environ: string;
    try {
      environ = await readFile(`/proc/${pid}/environ`, 'utf8');
    } catch {
      continue;
    }
    if (!environ.split('\0').some((v) => v.startsWith('MUSTER_TASK_ID='))) continue;
    if (signal(pid, 'SIGKILL')) killed++;
  }
  return killed;
}

/** The last lines of a log file, for error messages. */
export async function tailFile(file: string, lines = 10): Promise<string> {
  try {
    const text = await readFile(file, 'utf8');
    return text.trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
}
