/**
 * The loader, end to end on real files: CUE through CUE (WebAssembly or a binary), JSON and YAML
 * through valibot, every problem with its file, line, path and hint.
 *
 * @module
 */
import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  loadTaskservFile,
  loadWorkflowFile,
  loadWorkflowSource,
  validateWorkflowValue,
} from '../src/load.ts';
import { InvalidWorkflowError, MusterError, type Problem } from '../src/problems.ts';

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'muster-load-'));
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function file(name: string, content: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, content);
  return path;
}

/** The problems a load throws; fails the test if it does not throw an InvalidWorkflowError. */
async function problemsOf(load: Promise<unknown>): Promise<readonly Problem[]> {
  const error = await load.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(InvalidWorkflowError);
  return (error as InvalidWorkflowError).problems;
}

/** `line:path: message` for compact assertions. */
const brief = (p: Problem) => `${p.line ?? '?'}:${p.path}: ${p.message}`;

const VALID_CUE = `// A two-step deployment.
name: "deploy"
operations: [
	{id: "base", type: "create", target: "taskserv", items: ["os"]},
	{
		id:     "app"
		type:   "update"
		target: "server"
		depends_on: ["base"]
		steps: [{name: "hello", type: "echo", params: message: "hi"}]
	},
]
`;

describe('loadWorkflowFile', () => {
  describe('CUE', () => {
    test('fills in defaults and locates paths', async () => {
      const path = await file('valid.cue', VALID_CUE);
      const loaded = await loadWorkflowFile(path);
      expect(loaded.format).toBe('cue');
      expect(loaded.file).toBe(path);
      expect(loaded.workflow.type).toBe('batch');
      expect(loaded.workflow.operations[0]?.timeout).toBe(300);
      expect(loaded.workflow.operations[1]?.steps[0]?.required).toBe(true);
      expect(loaded.workflow.retry_policy.max_attempts).toBe(3);
      expect(loaded.locate('operations[1].depends_on[0]')).toEqual({ line: 9, column: 16 });
      expect(loaded.locate('operations[1].steps[0].params.message')).toEqual({
        line: 10,
        column: 49,
      });
      expect(loaded.locate('operations[0]')).toEqual({ line: 4, column: 2 });
      expect(loaded.locate('labels')).toBeUndefined();
    });

    test('reports every problem at once, on the right lines, with hints', async () => {
      const path = await file(
        'many.cue',
        `name: "deploy"
nme: "typo"
operations: [
	{id: "base", type: "crate", target: "taskserv", timeout: 0},
	{
		id:     "app"
		type:   "update"
		target: "server"
		depend_on: ["base"]
		steps: [{name: "s", type: "echo", bogus: true}]
	},
]
servers: [{name: "web", labels: {role: 1}}]
`,
      );
      const problems = await problemsOf(loadWorkflowFile(path));
      expect(problems.map(brief)).toEqual([
        '2:nme: unknown field "nme"',
        '4:operations[0].type: not one of the allowed values',
        '4:operations[0].timeout: out of range',
        '9:operations[1].depend_on: unknown field "depend_on"',
        '10:operations[1].steps[0].bogus: unknown field "bogus"',
        '13:servers[0].labels.role: wrong type',
      ]);
      expect(problems.every((p) => p.file === path && p.code === 'schema')).toBe(true);
      const byPath = new Map(problems.map((p) => [p.path, p]));
      expect(byPath.get('nme')).toMatchObject({ column: 1, hint: 'did you mean "name"?' });
      expect(byPath.get('operations[1].depend_on')?.hint).toBe('did you mean "depends_on"?');
      expect(byPath.get('operations[0].type')).toMatchObject({
        column: 21,
        received: '"crate"',
        hint: 'did you mean "create"?',
      });
      expect(byPath.get('operations[0].type')?.expected?.split(' | ').sort()).toEqual([
        '"check"',
        '"create"',
        '"delete"',
        '"update"',
      ]);
      expect(byPath.get('operations[0].timeout')).toMatchObject({ expected: '>=1', received: '0' });
      expect(byPath.get('servers[0].labels.role')).toMatchObject({
        expected: 'string',
        received: '1',
      });
    });

    test('keeps line numbers with a package clause and a standard-library import', async () => {
      const path = await file(
        'pkg.cue',
        `package deploy

import "strings"

name: strings.ToLower("DEPLOY")
operations: [{id: "a", type: "create", target: "server", parallel: "no"}]
`,
      );
      const problems = await problemsOf(loadWorkflowFile(path));
      expect(problems).toHaveLength(1);
      expect(problems[0]).toMatchObject({
        path: 'operations[0].parallel',
        line: 6,
        message: 'wrong type',
      });
      const ok = await loadWorkflowFile(
        await file(
          'pkg-ok.cue',
          `package deploy\n\nimport "strings"\n\nname: strings.ToLower("DEPLOY")\noperations: [{id: "a", type: "create", target: "server"}]\n`,
        ),
      );
      expect(ok.workflow.name).toBe('deploy');
    });

    test('says a missing operations list is missing, not its first element', async () => {
      const problems = await problemsOf(loadWorkflowFile(await file('no-ops.cue', 'name: "x"\n')));
      expect(problems).toEqual([
        expect.objectContaining({ path: 'operations', message: 'missing required field' }),
      ]);
    });

    test('reports a missing required field at its parent', async () => {
      const problems = await problemsOf(
        loadWorkflowFile(
          await file(
            'no-target.cue',
            'name: "x"\noperations: [\n\t{id: "a", type: "create"},\n]\n',
          ),
        ),
      );
      expect(problems).toEqual([
        expect.objectContaining({
          path: 'operations[0].target',
          message: 'missing required field',
          line: 3,
        }),
      ]);
    });

    test('reports a syntax error with its line and column', async () => {
      const problems = await problemsOf(
        loadWorkflowFile(
          await file('syntax.cue', 'name: "x"\noperations: [{id: "a" type: "create"}]\n'),
        ),
      );
      expect(problems[0]).toMatchObject({ code: 'cue', line: 2, column: 23 });
      expect(problems[0]?.message).toMatch(/missing ','/);
    });
  });

  describe('JSON', () => {
    test('reports problems on their lines, every unknown field of an object', async () => {
      const path = await file(
        'bad.json',
        JSON.stringify(
          {
            name: 'x',
            operations: [{ id: 'a', type: 'create', target: 'server', timout: 5, depend_on: [] }],
            logging: { level: 'verbose' },
          },
          null,
          2,
        ),
      );
      const problems = await problemsOf(loadWorkflowFile(path));
      expect(problems.map(brief)).toEqual([
        '8:operations[0].timout: unknown field "timout"',
        '9:operations[0].depend_on: unknown field "depend_on"',
        '13:logging.level: not one of the allowed values',
      ]);
      expect(problems[0]).toMatchObject({ column: 7, hint: 'did you mean "timeout"?', file: path });
      expect(problems[1]?.hint).toBe('did you mean "depends_on"?');
      expect(problems[2]).toMatchObject({
        received: '"verbose"',
        expected: '"debug" | "info" | "warn" | "error"',
      });
    });

    test('reports a syntax error with its line and column', async () => {
      const path = await file('syntax.json', '{\n  "name": "x",\n  "operations": [,]\n}\n');
      const problems = await problemsOf(loadWorkflowFile(path));
      expect(problems).toEqual([
        expect.objectContaining({ code: 'syntax', line: 3, column: 18, file: path }),
      ]);
    });

    test('locates paths', async () => {
      const path = await file(
        'ok.json',
        '{\n  "name": "x",\n  "operations": [\n    {"id": "a", "type": "check", "target": "server"}\n  ]\n}\n',
      );
      const loaded = await loadWorkflowFile(path);
      expect(loaded.format).toBe('json');
      expect(loaded.locate('operations[0].target')).toEqual({ line: 4, column: 34 });
      expect(loaded.workflow.operations[0]?.on_failure).toBe('rollback');
    });
  });

  describe('YAML', () => {
    test('reports problems on their lines', async () => {
      const path = await file(
        'bad.yaml',
        `name: deploy
operations:
  - id: a
    type: create
    target: server
  - id: b
    target: server
    steps:
      - name: s
        type: echo
        timeout: -1
`,
      );
      const problems = await problemsOf(loadWorkflowFile(path));
      expect(problems.map(brief)).toEqual([
        '6:operations[1].type: missing required field',
        '11:operations[1].steps[0].timeout: out of range',
      ]);
      expect(problems[0]?.expected).toBe('"create" | "update" | "delete" | "check"');
    });

    test('reports syntax errors with lines', async () => {
      const path = await file('syntax.yml', 'name: x\noperations:\n  - id: a\n   type: create\n');
      const problems = await problemsOf(loadWorkflowFile(path));
      expect(problems.length).toBeGreaterThan(0);
      expect(problems[0]).toMatchObject({ code: 'syntax', line: 4 });
    });

    test('says an empty file is empty', async () => {
      const problems = await problemsOf(loadWorkflowFile(await file('empty.yaml', '# nothing\n')));
      expect(problems[0]?.message).toMatch(/the file is empty/);
    });

    test('locates paths and fills defaults', async () => {
      const path = await file(
        'ok.yaml',
        'name: x\noperations:\n  - id: a\n    type: create\n    target: server\n    depends_on: [b]\n',
      );
      const loaded = await loadWorkflowFile(path);
      expect(loaded.locate('operations[0].depends_on[0]')).toEqual({ line: 6, column: 18 });
      expect(loaded.workflow.logging.destinations).toEqual(['file', 'stdout']);
    });
  });

  test('a byte order mark at the start is not part of the document, in any format', async () => {
    const operation = '{id: "a", type: "check", target: "server", timout: 1}';
    const json = `{"name": "x", "operations": [{"id": "a", "type": "check", "target": "server", "timout": 1}]}`;
    const cases = [
      // The file, the misspelt field's line and column (a JSON key's at its opening quote).
      ['bom.json', json, 1, json.indexOf('"timout"') + 1],
      [
        'bom.yaml',
        `name: x\noperations: [${operation}]\n`,
        2,
        'operations: ['.length + operation.indexOf('timout') + 1,
      ],
      [
        'bom.cue',
        `name: "x"\noperations: [${operation}]\n`,
        2,
        'operations: ['.length + operation.indexOf('timout') + 1,
      ],
    ] as const;
    for (const [name, source, line, column] of cases) {
      const problems = await problemsOf(loadWorkflowFile(await file(name, `\ufeff${source}`)));
      // Only the misspelt field: the mark is no problem, and columns count from after it.
      expect(problems.map(brief), name).toEqual([
        `${line}:operations[0].timout: unknown field "timout"`,
      ]);
      expect(problems[0]?.column, name).toBe(column);
    }
  });

  describe('files that cannot be read', () => {
    test('a missing file is a MusterError naming it', async () => {
      const path = join(dir, 'nope.cue');
      await expect(loadWorkflowFile(path)).rejects.toThrow(MusterError);
      await expect(loadWorkflowFile(path)).rejects.toThrow(
        `cannot read workflow file "${path}": no such file`,
      );
    });

    test('a directory is a MusterError', async () => {
      const path = join(dir, 'adir.yaml');
      await mkdir(path, { recursive: true });
      await expect(loadWorkflowFile(path)).rejects.toThrow('it is a directory');
    });

    test('an unknown extension says which ones work', async () => {
      await expect(loadWorkflowFile(await file('w.toml', 'name = 1'))).rejects.toThrow(
        /name it \.cue, \.json, \.yaml or \.yml/,
      );
    });
  });
});

describe('loadWorkflowSource', () => {
  test('checks JSON with CUE too when asked, and agrees with valibot', async () => {
    const good = await loadWorkflowSource(
      '{"name": "x", "operations": [{"id": "a", "type": "create", "target": "server"}]}',
      {
        format: 'json',
        cueCheck: true,
      },
    );
    expect(good.workflow.operations[0]?.parallel).toBe(true);
    const problems = await problemsOf(
      loadWorkflowSource('name: x\noperations: []\n', {
        format: 'yaml',
        file: 'inline.yaml',
        cueCheck: true,
      }),
    );
    expect(problems.map((p) => [p.path, p.file, p.line])).toEqual([
      ['operations', 'inline.yaml', 2],
    ]);
    expect(problems[0]?.message).toBe('a workflow needs at least one operation');
  });

  test('gives each place a YAML alias fills its own list', async () => {
    const loaded = await loadWorkflowSource(
      [
        'name: x',
        'operations:',
        '  - {id: a, type: check, target: cluster, items: &names [one, two]}',
        '  - {id: b, type: check, target: cluster, items: *names}',
        '',
      ].join('\n'),
      { format: 'yaml' },
    );
    const [a, b] = loaded.workflow.operations;
    expect(a!.items).toEqual(['one', 'two']);
    expect(b!.items).toEqual(['one', 'two']);
    expect(a!.items).not.toBe(b!.items);
  });

  test('names the source when no file is given', async () => {
    const problems = await problemsOf(
      loadWorkflowSource('name: ""\noperations: [{id: "a", type: "create", target: "server"}]\n', {
        format: 'cue',
      }),
    );
    expect(problems[0]).toMatchObject({ path: 'name', file: '<cue source>', line: 1 });
  });
});

describe('validateWorkflowValue', () => {
  test('returns the workflow with defaults', () => {
    const w = validateWorkflowValue({
      name: 'x',
      operations: [{ id: 'a', type: 'create', target: 'server' }],
    });
    expect(w.rollback_strategy).toEqual({
      enabled: true,
      on_partial_failure: true,
      checkpoint_interval: 5,
      preserve_successful: false,
    });
  });

  test('throws every problem, with paths and the file', () => {
    let error: unknown;
    try {
      validateWorkflowValue(
        { nam: 'x', operations: [{ id: 'a', type: 'create', target: 'server', itmes: [] }] },
        'body.json',
      );
    } catch (e: unknown) {
      error = e;
    }
    expect(error).toBeInstanceOf(InvalidWorkflowError);
    const problems = (error as InvalidWorkflowError).problems;
    expect(problems.map((p) => [p.path, p.message, p.hint])).toEqual([
      ['name', 'missing required field', undefined],
      ['operations[0].itmes', 'unknown field "itmes"', 'did you mean "items"?'],
      ['nam', 'unknown field "nam"', 'did you mean "name"?'],
    ]);
    expect(problems.every((p) => p.file === 'body.json' && p.line === undefined)).toBe(true);
  });
});

describe('loadTaskservFile', () => {
  test('loads a CUE file whose top level is a taskserv', async () => {
    const path = await file(
      'ts.cue',
      'name: "motd"\ninstall: [{name: "write", type: "file_write", params: {path: "etc/motd"}}]\n',
    );
    const ts = await loadTaskservFile(path);
    expect(ts).toMatchObject({ name: 'motd', version: 'latest', requires: [], uninstall: [] });
    expect(ts.install[0]?.continue_on_failure).toBe(false);
  });

  test('reports a taskserv problem with its line', async () => {
    const path = await file('ts-bad.yaml', 'name: motd\nrequire: [os]\n');
    const problems = await problemsOf(loadTaskservFile(path));
    expect(problems).toEqual([
      expect.objectContaining({ path: 'require', line: 2, hint: 'did you mean "requires"?' }),
    ]);
  });
});
