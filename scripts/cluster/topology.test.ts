import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { describe, expect, test } from 'vitest';
import { ROOT, readComposeTopology } from './topology.ts';

const dockerCompose = ['/usr/bin/docker-compose', '/usr/local/bin/docker-compose'].find(existsSync);

describe('docker-compose.yml', () => {
  test('declares PostgreSQL, two replicas and three agents that each know both replicas', async () => {
    const topology = await readComposeTopology();
    expect(topology.replicas).toEqual(['orchestrator-1', 'orchestrator-2']);
    expect(topology.agents.map((a) => a.server)).toEqual(['server-1', 'server-2', 'server-3']);
    for (const agent of topology.agents) {
      expect([...agent.replicas].sort()).toEqual(['orchestrator-1', 'orchestrator-2']);
    }
  });

  // CI installs Debian's docker-compose (.ci/run); there is no Docker engine to run it on.
  test.skipIf(!dockerCompose)('is a valid compose file (docker-compose config -q)', async () => {
    await promisify(execFile)(
      dockerCompose!,
      ['-f', join(ROOT, 'docker-compose.yml'), 'config', '-q'],
      {
        cwd: ROOT,
      },
    );
  });
});
