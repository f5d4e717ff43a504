import { readFileSync } from 'node:fs';
import { describe, expect, test } from 'vitest';
import { lines, runCli } from './helpers/run-cli.ts';

const FIX = 'cli/test/fixtures';

/** Broken fixtures, each checked by a test below. */
const BROKEN = [
  'unknown-depends-on.yaml',
  'cycle.json',
  'conflict.cue',
  'missing-requirement.yaml',
  'many-problems.yaml',
  'bad-enum.yaml',
  'wrong-type.json',
  'many-problems.cue',
  'bad-step-params.yaml',
];

/**
 * One `muster validate` over every broken fixture, shared by the tests (each CLI start costs about
 * two seconds). Since validate checks each file and prints its problems prefixed by the file, each
 * test reads the lines of its own file.
 */
const broken = runCli(['validate', ...BROKEN.map((f) => `${FIX}/${f}`)]);

/** The lines about one fixture, from the shared run. */
async function problemsOf(fixture: string): Promise<string[]> {
  const { stdout } = await broken;
  return lines(stdout).filter((l) => l.startsWith(`${FIX}/${fixture}:`));
}

describe.concurrent('muster validate', () => {
  test('- reads standard input: JSON or YAML by its first character, CUE with --format', async () => {
    const operation = (id: string) =>
      `{id: "${id}", type: "update", target: "cluster", items: ["c"], steps: [{name: "s", type: "echo", params: {message: "m"}}]}`;
    const [json, yaml, cue, named] = await Promise.all([
      runCli(['validate', '-'], {
        input: readFileSync(new URL('./fixtures/valid.json', import.meta.url), 'utf8'),
      }),
      runCli(['validate', '-'], {
        input: `name: piped\noperations:\n  - ${operation('a')}\n  - {id: b, type: update, target: cluster, depends_on: [aa]}\n`,
      }),
      runCli(['validate', '--format', 'cue', '-'], {
        input: `package muster\n\nname: "piped"\noperations: [${operation('a')}]\n`,
      }),
      runCli(['validate', '--format', 'yaml', 'cli/test/fixtures/yaml-named.txt']),
    ]);
    expect(json).toMatchObject({ code: 0, stdout: 'ok <stdin> (1 operation, 1 task)\n' });
    expect(yaml.code).toBe(2);
    expect(lines(yaml.stdout)).toContainEqual(
      expect.stringMatching(
        /^<stdin>:4:\d+: operations\[1\]\.depends_on\[0\]: .*did you mean "a"\?$/,
      ),
    );
    expect(cue).toMatchObject({ code: 0, stdout: 'ok <stdin> (1 operation, 1 task)\n' });
    expect(named).toMatchObject({
      code: 0,
      stdout: 'ok cli/test/fixtures/yaml-named.txt (1 operation, 1 task)\n',
    });
  });

  describe('valid files', () => {
    test('prints ok with the plan size for each example and exits 0', async () => {
      const files = [
        'examples/four-phase.cue',
        'examples/four-phase.yaml',
        'examples/quickstart.cue',
        'examples/rolling-update.cue',
      ];
      const { code, stdout, stderr } = await runCli(['validate', ...files]);
      expect(stderr).toBe('');
      expect(lines(stdout)).toEqual([
        'ok examples/four-phase.cue (4 operations, 18 tasks)',
        'ok examples/four-phase.yaml (4 operations, 18 tasks)',
        'ok examples/quickstart.cue (5 operations, 20 tasks)',
        'ok examples/rolling-update.cue (3 operations, 15 tasks)',
      ]);
      expect(code).toBe(0);
    });
  });

  describe('planning problems', () => {
    test('an unknown depends_on names its line and suggests the right id (YAML)', async () => {
      const out = await problemsOf('unknown-depends-on.yaml');
      expect(out).toEqual([
        expect.stringMatching(
          /^cli\/test\/fixtures\/unknown-depends-on\.yaml:14(:\d+)?: operations\[1\]\.depends_on\[0\]: .*"instal-base".*; did you mean "install-base"\?$/,
        ),
      ]);
    });

    test('a 3-node cycle prints its whole path, on the line of one link (JSON)', async () => {
      const out = await problemsOf('cycle.json');
      expect(out).toEqual([
        expect.stringMatching(
          /^cli\/test\/fixtures\/cycle\.json:9:\d+: operations\[0\]\.depends_on\[0\]: .*a → b → c → a/,
        ),
      ]);
      // The operation outside the cycle is not blamed.
      expect(out[0]).not.toMatch(/\bd\b/);
    });

    test('kubernetes and docker on one server conflict (CUE)', async () => {
      const out = await problemsOf('conflict.cue');
      expect(out).toEqual([
        expect.stringMatching(
          /^cli\/test\/fixtures\/conflict\.cue:6:\d+: servers\[0\]\.taskservs\[4\]: .*docker and kubernetes conflict.*node-1/,
        ),
      ]);
    });

    test('a missing requirement names the server and what to add', async () => {
      const out = (await problemsOf('missing-requirement.yaml')).sort();
      expect(out).toEqual([
        expect.stringMatching(
          /^cli\/test\/fixtures\/missing-requirement\.yaml:10:\d+: operations\[0\]\.items\[1\]: kubernetes on node-1 requires containerd/,
        ),
        expect.stringMatching(
          /^cli\/test\/fixtures\/missing-requirement\.yaml:10:\d+: operations\[0\]\.items\[1\]: kubernetes on node-1 requires resolv/,
        ),
      ]);
    });

    test('reports every planning problem at once, each with its line (YAML)', async () => {
      const out = await problemsOf('many-problems.yaml');
      expect(out).toEqual(
        expect.arrayContaining([
          expect.stringMatching(
            /^cli\/test\/fixtures\/many-problems\.yaml:5(:\d+)?: servers\[0\]\.taskservs\[1\]: .*"demo-ap".*did you mean "demo-app"\?$/,
          ),
          expect.stringMatching(
            /^cli\/test\/fixtures\/many-problems\.yaml:10(:\d+)?: operations\[0\]\.items\[1\]: .*"web-9"/,
          ),
          expect.stringMatching(
            /^cli\/test\/fixtures\/many-problems\.yaml:15(:\d+)?: operations\[1\]\.depends_on\[0\]: .*"creat".*did you mean "create"\?$/,
          ),
        ]),
      );
    });
  });

  describe('schema problems', () => {
    test('a bad enum value names the allowed values and what was found (YAML)', async () => {
      const out = await problemsOf('bad-enum.yaml');
      expect(out).toEqual([
        expect.stringMatching(
          /^cli\/test\/fixtures\/bad-enum\.yaml:4(:\d+)?: operations\[0\]\.type: .*\(expected .*"create".*, found "crate"\)/,
        ),
      ]);
    });

    test('a wrong type names the expected type and what was found (JSON)', async () => {
      const out = await problemsOf('wrong-type.json');
      expect(out).toEqual([
        expect.stringMatching(
          /^cli\/test\/fixtures\/wrong-type\.json:9(:\d+)?: operations\[0\]\.timeout: .*\(expected number, found "300"\)/,
        ),
      ]);
    });

    test('reports several problems at once, each on its line (CUE)', async () => {
      const out = await problemsOf('many-problems.cue');
      expect(out).toEqual(
        expect.arrayContaining([
          expect.stringMatching(
            /^cli\/test\/fixtures\/many-problems\.cue:7(:\d+)?: operations\[0\]\.target: /,
          ),
          expect.stringMatching(
            /^cli\/test\/fixtures\/many-problems\.cue:15(:\d+)?: operations\[1\]\.timeout: /,
          ),
          expect.stringMatching(
            /^cli\/test\/fixtures\/many-problems\.cue:22(:\d+)?: operations\[2\]\.depend_on: .*did you mean "depends_on"\?/,
          ),
        ]),
      );
    });
  });

  describe('step params', () => {
    test('are checked against the built-in handlers; custom ones are left to run time', async () => {
      const out = await problemsOf('bad-step-params.yaml');
      expect(out).toEqual([
        expect.stringMatching(
          /^cli\/test\/fixtures\/bad-step-params\.yaml:11:\d+: operations\[0\]\.steps\[0\]\.params\.command: /,
        ),
        expect.stringMatching(
          /^cli\/test\/fixtures\/bad-step-params\.yaml:14:\d+: operations\[0\]\.steps\[1\]\.params\.duration: .*"soon"/,
        ),
      ]);
    });
  });

  describe('several files', () => {
    test('prints problems of every broken file in one run, and exits 2', async () => {
      const { code, stdout, stderr } = await broken;
      expect(stderr).toBe('');
      const files = new Set(lines(stdout).map((l) => l.slice(0, l.indexOf(':'))));
      expect([...files]).toEqual(BROKEN.map((f) => `${FIX}/${f}`));
      expect(code).toBe(2);
    });

    test('checks every file and exits 2 when one is invalid', async () => {
      const { code, stdout } = await runCli([
        'validate',
        `${FIX}/valid.json`,
        `${FIX}/bad-enum.yaml`,
        `${FIX}/valid.json`,
      ]);
      const out = lines(stdout);
      expect(out[0]).toBe(`ok ${FIX}/valid.json (1 operation, 1 task)`);
      expect(out[1]).toMatch(/^cli\/test\/fixtures\/bad-enum\.yaml:4/);
      expect(out[2]).toBe(`ok ${FIX}/valid.json (1 operation, 1 task)`);
      expect(code).toBe(2);
    });

    test('a missing file is a problem of that file, and the others are still checked', async () => {
      const { code, stdout } = await runCli(['validate', `${FIX}/nope.cue`, `${FIX}/valid.json`]);
      const out = lines(stdout);
      expect(out[0]).toMatch(/^cli\/test\/fixtures\/nope\.cue: .*nope\.cue/);
      expect(out[1]).toBe(`ok ${FIX}/valid.json (1 operation, 1 task)`);
      expect(code).toBe(2);
    });
  });

  describe('-o json', () => {
    test('prints one verdict per file with located problems', async () => {
      const { code, stdout } = await runCli([
        'validate',
        '-o',
        'json',
        `${FIX}/valid.json`,
        `${FIX}/unknown-depends-on.yaml`,
      ]);
      const results = JSON.parse(stdout) as Array<{
        file: string;
        valid: boolean;
        problems: Array<Record<string, unknown>>;
      }>;
      expect(results).toEqual([
        { file: `${FIX}/valid.json`, valid: true, problems: [], operations: 1, tasks: 1 },
        {
          file: `${FIX}/unknown-depends-on.yaml`,
          valid: false,
          problems: [
            expect.objectContaining({
              code: 'unknown-operation',
              path: 'operations[1].depends_on[0]',
              file: `${FIX}/unknown-depends-on.yaml`,
              line: 14,
              hint: 'did you mean "install-base"?',
            }),
          ],
        },
      ]);
      expect(code).toBe(2);
    });
  });

  describe('usage', () => {
    test('an unknown output format exits 2 and names the choices', async () => {
      const { code, stderr } = await runCli(['validate', '-o', 'xml', `${FIX}/valid.json`]);
      expect(stderr).toMatch(/xml/);
      expect(stderr).toMatch(/text, json/);
      expect(code).toBe(2);
    });

    test('no file exits 2', async () => {
      const { code, stderr } = await runCli(['validate']);
      expect(stderr).toMatch(/missing required argument/);
      expect(code).toBe(2);
    });
  });
});
