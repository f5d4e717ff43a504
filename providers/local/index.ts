/**
 * The `local` provider: a server is a sandbox directory under `.muster/servers/NAME` on this
 * machine, so a fresh machine can run a whole fleet. Steps for it run with that directory as
 * their working directory.
 *
 * @module
 */
import { existsSync } from 'node:fs';
import { mkdir, readdir, rm } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { CreateResult, Provider, ProviderServer, ServerStatus } from '../types.ts';

/** Options of the local provider. */
export interface LocalProviderOptions {
  /** The folder holding one sandbox per server. @default `.muster/servers` */
  readonly root: string;
}

/** Creates the local provider. */
export function createLocalProvider(options: LocalProviderOptions): Provider {
  const root = resolve(options.root);
  const dir = (server: ProviderServer) => join(root, server.name);
  return {
    name: 'local',
    workdir: dir,
    async create(server): Promise<CreateResult> {
      const existed = existsSync(dir(server));
      await mkdir(dir(server), { recursive: true });
      return { created: !existed, address: '127.0.0.1' };
    },
    async delete(server) {
      await rm(dir(server), { recursive: true, force: true });
    },
    async status(server): Promise<ServerStatus> {
      return existsSync(dir(server))
        ? { name: server.name, state: 'running', address: '127.0.0.1' }
        : { name: server.name, state: 'absent' };
    },
    async list() {
      if (!existsSync(root)) return [];
      const entries = await readdir(root, { withFileTypes: true });
      return entries
        .filter((e) => e.isDirectory())
        .map((e): ServerStatus => ({ name: e.name, state: 'running', address: '127.0.0.1' }));
    },
  };
}
