import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { lines, runCli } from './helpers/run-cli.ts';

describe.concurrent('muster plan', () => {
  test('prints a table by default, naming every operation', async () => {
    const { code, stdout, stderr } = await runCli(['plan', 'examples/four-phase.cue']);
    expect(stderr).toBe('');
    for (const id of ['create-servers', 'install-base', 'install-k8s', 'install-cluster']) {
      expect(stdout).toContain(id);
    }
    expect(code).toBe(0);
  });

  test('-o json prints the plan: operations with levels, tasks and edges', async () => {
    const { code, stdout } = await runCli(['plan', 'examples/quickstart.cue', '-o', 'json']);
    const plan = JSON.parse(stdout) as {
      operations: Array<{ id: string; level: number; depends_on: string[] }>;
      tasks: Array<{ id: string }>;
      edges: Array<{ from: string; to: string }>;
    };
    expect(plan.operations.map((o) => [o.id, o.level])).toEqual([
      ['create-servers', 0],
      ['install-tools', 1],
      ['install-apps', 2],
      ['hello', 3],
      ['health', 4],
    ]);
    expect(plan.tasks).toHaveLength(20);
    const ids = new Set(plan.tasks.map((t) => t.id));
    for (const e of plan.edges) expect(ids.has(e.from) && ids.has(e.to)).toBe(true);
    expect(code).toBe(0);
  });

  test('-o dot prints a Graphviz digraph', async () => {
    const { code, stdout } = await runCli(['plan', 'examples/four-phase.yaml', '-o', 'dot']);
    expect(stdout).toMatch(/^\s*(strict\s+)?digraph\b/);
    expect(stdout.split('{').length).toBe(stdout.split('}').length);
    expect(stdout).toContain('install-k8s');
    expect(code).toBe(0);
  });

  test('-o mermaid prints a flowchart', async () => {
    const { code, stdout } = await runCli(['plan', 'examples/rolling-update.cue', '-o', 'mermaid']);
    expect(lines(stdout)[0]).toBe('flowchart TD');
    expect(stdout).toContain('deploy');
    expect(code).toBe(0);
  });

  test('an invalid file prints its problems on stderr, nothing on stdout, and exits 2', async () => {
    const { code, stdout, stderr } = await runCli(['plan', 'cli/test/fixtures/cycle.json']);
    expect(stdout).toBe('');
    expect(lines(stderr)).toEqual([
      expect.stringMatching(/^cli\/test\/fixtures\/cycle\.json:\d+(:\d+)?: operations\[\d\].*→/),
    ]);
    expect(code).toBe(2);
  });

  test('- plans standard input', async () => {
    const input = readFileSync(new URL('./fixtures/valid.json', import.meta.url), 'utf8');
    const { code, stdout } = await runCli(['plan', '-', '-o', 'json'], { input });
    expect(code).toBe(0);
    expect(JSON.parse(stdout)).toMatchObject({ workflow: 'valid', tasks: [{ id: 'hello:local' }] });
  });

  test('a missing file exits 2 and names it', async () => {
    const { code, stdout, stderr } = await runCli(['plan', 'cli/test/fixtures/nope.yaml']);
    expect(stdout).toBe('');
    expect(stderr).toMatch(/nope\.yaml/);
    expect(code).toBe(2);
  });

  test('an unknown format exits 2 and names the choices', async () => {
    const { code, stderr } = await runCli(['plan', 'examples/quickstart.cue', '-o', 'svg']);
    expect(stderr).toMatch(/svg/);
    expect(stderr).toMatch(/table, json, dot, mermaid/);
    expect(code).toBe(2);
  });
});
