import { describe, expect, test } from 'vitest';
import { cueErrorsToProblems, parseCueStderr, type CueErrorLocation } from './cue-errors.ts';

/** Real `cue export` output (CUE v0.4), trimmed: user.cue is the user's, the rest the schema's. */
const V04_STDERR = `doc: field nme not allowed:
    ./user.cue:1:31
    ./user.cue:3:3
    ./workflow.cue:24:12
doc.logging.destinations: 4 errors in empty disjunction:
doc.logging.destinations: incompatible list lengths (1 and 2)
doc.logging.destinations.0: 2 errors in empty disjunction:
doc.logging.destinations.0: conflicting values "file" and "x":
    ./policies.cue:61:43
    ./user.cue:10:27
doc.logging.destinations.0: conflicting values "stdout" and "x":
    ./policies.cue:61:52
    ./user.cue:10:27
doc.operations.0.timeout: 2 errors in empty disjunction:
doc.operations.0.timeout: conflicting values 300 and 0:
    ./operation.cue:55:18
    ./user.cue:9:69
doc.operations.0.type: 2 errors in empty disjunction:
doc.operations.0.type: conflicting values "check" and "crate":
    ./operation.cue:44:49
    ./user.cue:9:33
doc.operations.0.type: conflicting values "create" and "crate":
    ./operation.cue:44:16
    ./user.cue:9:33
doc.servers.0.labels."a.b": conflicting values 1 and string (mismatched types int and string):
    ./server.cue:23:21
    ./user.cue:11:37
doc.operations.0.timeout: invalid value 0 (out of bound >=1):
    ./policies.cue:14:21
    ./user.cue:9:69
doc.name: incomplete value !="":
    ./policies.cue:23:27
doc.operations.0.parallel: 2 errors in empty disjunction:
doc.operations.0.parallel: conflicting values "no" and bool (mismatched types string and bool):
    ./operation.cue:50:12
    ./user.cue:9:80
doc.operations.0.parallel: conflicting values "no" and true (mismatched types string and bool):
    ./operation.cue:50:12
    ./user.cue:9:80
`;

const userOnly = (l: CueErrorLocation) =>
  l.file === './user.cue' && !(l.line === 1 && l.column === 31)
    ? { file: 'w.cue', line: l.line, column: l.column }
    : undefined;

describe('parseCueStderr', () => {
  test('reads paths, messages and every location', () => {
    const errors = parseCueStderr(V04_STDERR);
    expect(errors[0]).toEqual({
      path: ['doc'],
      message: 'field nme not allowed',
      locations: [
        { file: './user.cue', line: 1, column: 31 },
        { file: './user.cue', line: 3, column: 3 },
        { file: './workflow.cue', line: 24, column: 12 },
      ],
    });
    expect(errors.find((e) => e.path.includes('a.b'))?.path).toEqual([
      'doc',
      'servers',
      0,
      'labels',
      'a.b',
    ]);
  });

  test('keeps errors that name no field, and their continuation lines', () => {
    const errors = parseCueStderr(
      `import failed: cannot find package "muster.dev/schemas":\n    ./w.cue:3:8\nexpected '}', found 'EOF':\n    ./w.cue:9:1\n`,
    );
    expect(errors.map((e) => [e.path, e.message, e.locations[0]?.line])).toEqual([
      [[], 'import failed: cannot find package "muster.dev/schemas"', 3],
      [[], "expected '}', found 'EOF'", 9],
    ]);
  });
});

describe('cueErrorsToProblems', () => {
  const problems = cueErrorsToProblems(parseCueStderr(V04_STDERR), {
    resolveLocation: userOnly,
    stripPrefix: ['doc'],
    file: 'w.cue',
  });
  const at = (path: string) => problems.filter((p) => p.path === path);

  test('names an unknown field by its own path, at its own line', () => {
    expect(at('nme')).toEqual([
      {
        code: 'schema',
        path: 'nme',
        message: 'unknown field "nme"',
        file: 'w.cue',
        line: 3,
        column: 3,
      },
    ]);
  });

  test('folds an enum disjunction into one problem listing the allowed values', () => {
    expect(at('operations[0].type')).toEqual([
      expect.objectContaining({
        message: 'not one of the allowed values',
        expected: '"check" | "create"',
        received: '"crate"',
        line: 9,
        column: 33,
      }),
    ]);
    expect(at('logging.destinations[0]')).toEqual([
      expect.objectContaining({ expected: '"file" | "stdout"', received: '"x"' }),
    ]);
  });

  test("drops the default branch's conflict when a better error exists", () => {
    expect(at('operations[0].timeout')).toEqual([
      expect.objectContaining({ message: 'out of range', expected: '>=1', received: '0' }),
    ]);
    expect(at('logging.destinations')).toEqual([]);
  });

  test('says wrong type with the type expected', () => {
    expect(at('servers[0].labels["a.b"]')).toEqual([
      expect.objectContaining({ message: 'wrong type', expected: 'string', received: '1' }),
    ]);
    expect(at('operations[0].parallel')).toEqual([
      expect.objectContaining({ message: 'wrong type', expected: 'bool', received: '"no"' }),
    ]);
  });

  test('reports a missing field without a location but with the file', () => {
    expect(at('name')).toEqual([
      {
        code: 'schema',
        path: 'name',
        message: 'missing required field',
        expected: 'a non-empty string',
        file: 'w.cue',
      },
    ]);
  });

  test('reads the modern "field not allowed" form', () => {
    const [p] = cueErrorsToProblems(
      parseCueStderr('doc.operations.0.depend_on: field not allowed:\n    ./user.cue:4:5\n'),
      { resolveLocation: userOnly, stripPrefix: ['doc'] },
    );
    expect(p).toMatchObject({
      path: 'operations[0].depend_on',
      message: 'unknown field "depend_on"',
      line: 4,
    });
  });

  test('reads an enum written as a pattern of its values as one of the allowed values', () => {
    const problems = cueErrorsToProblems(
      parseCueStderr(
        [
          'doc.operations.0.type: invalid value "crate" (out of bound =~"^(create|update|delete|check)$"):',
          '    ./operation.cue:48:16',
          '    ./user.cue:9:33',
          'doc.operations.0.id: invalid value "-x" (out of bound =~"^[A-Za-z0-9][A-Za-z0-9_-]*$"):',
          '    ./user.cue:9:10',
          '',
        ].join('\n'),
      ),
      { resolveLocation: userOnly, stripPrefix: ['doc'] },
    );
    expect(problems).toEqual([
      expect.objectContaining({
        path: 'operations[0].type',
        message: 'not one of the allowed values',
        expected: '"create" | "update" | "delete" | "check"',
        received: '"crate"',
        line: 9,
        column: 33,
      }),
      expect.objectContaining({
        path: 'operations[0].id',
        message: 'does not match the required pattern',
        received: '"-x"',
      }),
    ]);
  });
});
