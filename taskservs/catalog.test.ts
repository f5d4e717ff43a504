import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as v from 'valibot';
import { describe, expect, test } from 'vitest';
import { TaskservSchema } from '../schemas/src/workflow.ts';
import type { Taskserv } from '../schemas/src/workflow.ts';
import { checkCatalog, compileCatalog, listTaskservSources } from './compile.ts';
import { CATALOG_URL, CatalogError, loadCatalog, parseCatalog } from './index.ts';

const raw = JSON.parse(await readFile(CATALOG_URL, 'utf8')) as { taskservs: unknown[] };

/** A taskserv with every default filled, for unit tests of `checkCatalog`. */
function taskserv(input: v.InferInput<typeof TaskservSchema>): Taskserv {
  return v.parse(TaskservSchema, input);
}

describe('catalog.json', () => {
  test('is in sync with the taskserv.cue sources', async () => {
    const compiled = await compileCatalog();
    expect(raw).toEqual(JSON.parse(JSON.stringify(compiled)));
  });

  test('has one entry per taskserv folder, sorted by name', async () => {
    const folders = (await listTaskservSources()).map((f) => f.split(/[\\/]/).at(-2));
    const names = raw.taskservs.map((t) => (t as { name: string }).name);
    expect(names).toEqual(folders);
    expect(names).toEqual([...names].sort());
  });

  test('every entry validates with TaskservSchema and already has its defaults', () => {
    for (const entry of raw.taskservs) {
      const result = v.safeParse(TaskservSchema, entry);
      expect(result.issues?.map((i) => `${v.getDotPath(i)}: ${i.message}`)).toBeUndefined();
      expect(result.output).toEqual(entry);
    }
  });

  test('requires and conflicts_with name taskservs of the catalog, without cycles', async () => {
    const catalog = await loadCatalog();
    expect(checkCatalog([...catalog.values()].map((t) => ({ taskserv: t })))).toEqual([]);
  });
});

describe('loadCatalog', () => {
  test('holds the reference plan taskservs and the local ones', async () => {
    const catalog = await loadCatalog();
    for (const name of ['os', 'resolv', 'containerd', 'docker', 'kubernetes', 'cilium']) {
      expect(catalog.has(name), name).toBe(true);
    }
    for (const name of ['rook-ceph', 'external-nfs', 'base-tools', 'motd', 'demo-app']) {
      expect(catalog.has(name), name).toBe(true);
    }
  });

  test('kubernetes matches the reference plan', async () => {
    const k8s = (await loadCatalog()).get('kubernetes');
    expect(k8s?.requires).toEqual(['containerd', 'resolv']);
    expect(k8s?.conflicts_with).toEqual(['docker']);
    expect(k8s?.minimum_resources).toEqual({ cpu: 2, memory: 4096, disk: 20 });
    expect(k8s?.health_check).toMatchObject({ command: 'kubectl', timeout: 60, retries: 5 });
    expect(k8s?.health_check?.args).toContain('get');
    expect(k8s?.health_check?.args).toContain('nodes');
  });

  test('uses a shell only for script steps that need one', async () => {
    for (const t of (await loadCatalog()).values()) {
      for (const step of [...t.install, ...t.uninstall]) {
        if (step.type !== 'script') continue;
        const { command, args, shell } = step.params as {
          command: string;
          args?: string[];
          shell?: boolean;
        };
        if (shell) {
          expect(args ?? [], `${t.name}/${step.name}`).toEqual([]);
          expect(command, `${t.name}/${step.name}`).toMatch(/[|>&;$\n]/);
        } else {
          expect(command, `${t.name}/${step.name}`).toMatch(/^[\w./-]+$/);
        }
      }
    }
  });

  test('local taskservs stay inside the working directory', async () => {
    const catalog = await loadCatalog();
    for (const name of ['base-tools', 'motd', 'demo-app']) {
      const t = catalog.get(name);
      for (const step of [...(t?.install ?? []), ...(t?.uninstall ?? [])]) {
        const text = JSON.stringify(step.params);
        expect(text, `${name}/${step.name}`).not.toMatch(/"\/|sudo|curl|https?:/);
      }
    }
  });

  test('returns a new map on each call', async () => {
    const a = await loadCatalog();
    a.delete('kubernetes');
    expect((await loadCatalog()).has('kubernetes')).toBe(true);
  });

  test('names the file and the fix when the catalog is missing', async () => {
    const url = pathToFileURL(join(tmpdir(), 'no-such-muster-catalog.json'));
    await expect(loadCatalog(url)).rejects.toThrow(/no-such-muster-catalog\.json.*build:catalog/);
  });
});

describe('parseCatalog', () => {
  test('rejects text that is not JSON', () => {
    expect(() => parseCatalog('{', 'c.json')).toThrow(CatalogError);
    expect(() => parseCatalog('{', 'c.json')).toThrow(/c\.json is not valid JSON/);
  });

  test('names the first field that does not match the schema', () => {
    const text = JSON.stringify({
      taskservs: [{ name: 'x', install: [{ name: 's', type: 'nope' }] }],
    });
    expect(() => parseCatalog(text, 'c.json')).toThrow(
      /c\.json .* at taskservs\.0\.install\.0\.type/,
    );
  });

  test('reads a catalog from another file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'muster-catalog-'));
    try {
      const file = join(dir, 'catalog.json');
      await writeFile(file, JSON.stringify({ taskservs: [{ name: 'solo' }] }));
      const catalog = await loadCatalog(pathToFileURL(file));
      expect([...catalog.keys()]).toEqual(['solo']);
      expect(catalog.get('solo')?.version).toBe('latest');
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('checkCatalog', () => {
  test('reports a requires naming no taskserv, with a suggestion', () => {
    const problems = checkCatalog([
      { taskserv: taskserv({ name: 'containerd' }) },
      { taskserv: taskserv({ name: 'kubernetes', requires: ['containerdd'] }), file: 'k.cue' },
    ]);
    expect(problems).toEqual([
      expect.objectContaining({
        code: 'unknown-taskserv',
        path: 'requires[0]',
        file: 'k.cue',
        hint: 'did you mean "containerd"?',
      }),
    ]);
  });

  test('reports a folder that does not match the name, and duplicates', () => {
    const problems = checkCatalog([
      { folder: 'a', taskserv: taskserv({ name: 'b' }) },
      { folder: 'b', taskserv: taskserv({ name: 'b' }) },
    ]);
    expect(problems.map((p) => p.code)).toEqual(['catalog-name', 'duplicate-id']);
  });

  test('reports self references, requires that conflict, and requires cycles', () => {
    const problems = checkCatalog([
      { taskserv: taskserv({ name: 'a', requires: ['b'] }) },
      { taskserv: taskserv({ name: 'b', requires: ['c'] }) },
      { taskserv: taskserv({ name: 'c', requires: ['a'], conflicts_with: ['c'] }) },
      { taskserv: taskserv({ name: 'd', requires: ['a'], conflicts_with: ['a'] }) },
    ]);
    expect(problems.map((p) => p.code)).toEqual(['self-reference', 'conflict', 'cycle']);
    expect(problems.at(-1)?.message).toContain('a → b → c → a');
  });
});
