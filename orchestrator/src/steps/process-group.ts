/**
 * Process groups: signalling a step's whole tree, and telling when it is gone.
 *
 * A script spawned with `detached: true` leads its own process group, so `kill(-pgid)` reaches its
 * background children too. A group counts as gone when only zombies are left: orphans that exit are
 * reparented to PID 1, and some container inits never reap them.
 *
 * @module
 */
import { readdir, readFile } from 'node:fs/promises';

/** Sends `signal` to every process of the group; false when the group no longer exists. */
export function signalProcessGroup(pgid: number, signal: NodeJS.Signals | 0): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch (e: unknown) {
    if ((e as NodeJS.ErrnoException).code === 'ESRCH') return false;
    throw e;
  }
}

/** Whether any process of the group is still running (zombies do not count, on Linux). */
export async function isProcessGroupAlive(pgid: number): Promise<boolean> {
  if (!signalProcessGroup(pgid, 0)) return false;
  if (process.platform !== 'linux') return true;
  return (await livePids(pgid)).length > 0;
}

/** Pids of the group's processes that are not zombies, from `/proc`. */
export async function livePids(pgid: number): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await procStat(Number(entry));
    if (stat && stat.pgrp === pgid && stat.state !== 'Z' && stat.state !== 'X')
      pids.push(Number(entry));
  }
  return pids;
}

/** A process's state letter (`R`, `S`, `Z`, …) and group, or `undefined` when it is gone. */
export async function procStat(pid: number): Promise<{ state: string; pgrp: number } | undefined> {
  let text: string;
  try {
    text = await readFile(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  // `pid (comm) state ppid pgrp …`; comm may itself hold spaces and parentheses.
  const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return { state: fields[0] ?? '?', pgrp: Number(fields[2]) };
}

/**
 * Waits until the group is gone, polling every `intervalMs`; resolves `true` when it is, `false`
 * when `timeoutMs` passed first.
 */
export async function waitForProcessGroupExit(
  pgid: number,
  timeoutMs: number,
  intervalMs = 25,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (!(await isProcessGroupAlive(pgid))) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
