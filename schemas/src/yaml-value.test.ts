/**
 * The fast YAML reader against `yaml`, the reference: where it reads a document, it must read the
 * same value; where it could differ, it must step aside.
 */
import { isDeepStrictEqual } from 'node:util';
import { describe, expect, test } from 'vitest';
import { parse, stringify } from 'yaml';
import { readYamlValue } from './yaml-value.ts';

/** Plain scalars where YAML 1.1, js-yaml's stock schema and YAML 1.2 core part ways. */
const SCALARS = [
  ...['0', '7', '-0', '+12', '017', '0o17', '0o8', '0x1F', '0xg', '-0x1F', '+0o7', '0b101'],
  ...['1_000', '123456789012345678901234', '0.', '1.', '.5', '-.5', '1.50', '1e3', '1E+5'],
  ...['1.5e-2', '1e', '0.1e', '._5', '1_0.5', '.inf', '+.inf', '-.Inf', '.INF', '.NaN', '.nan'],
  ...['-.nan', '.Nan', '~', 'null', 'Null', 'NULL', 'nUll', 'true', 'True', 'TRUE', 'tRue'],
  ...['false', 'False', 'yes', 'no', 'on', 'off', 'y', 'n', '2024-01-01', '2024-01-01T10:00:00Z'],
  ...['1:20', '12:30:00', '=', '<<', '0x', '0o', '+', '-1', 'a b', 'é', '"quoted"', "'it''s'"],
];

/** Documents the fast reader must read, and read as `yaml` does. */
const DOCUMENTS: Record<string, string> = {
  'scalars as values': SCALARS.map((s, i) => `k${i}: ${s}`).join('\n'),
  'scalars in a list': SCALARS.map((s) => `- ${s}`).join('\n'),
  'scalars in flow': `[${SCALARS.filter((s) => !s.startsWith("'")).join(', ')}]`,
  'keys that are scalars but not strings': '1: a\ntrue: b\n1.5: d\n0x10: e\n.inf: f\n-0: g\n',
  'empty values': 'a:\nb: ~\nc: []\nd: {}\ne: ""\n',
  'block scalars': [
    'literal: |',
    '  line one',
    '    indented',
    '',
    '  after a blank',
    'strip: |-',
    '  no newline',
    'keep: |+',
    '  kept',
    '',
    '',
    'folded: >',
    '  folded',
    '  together',
    '',
    '  new paragraph',
    '    more indented',
    'indent: |2',
    '    two extra',
    'script: |',
    '  #!/bin/sh',
    '  set -e && echo ok 2>&1 & wait',
    '',
  ].join('\n'),
  'quoted strings': [
    String.raw`double: "tab\there \u00e9 \x41 \" \\ \N \_ \/"`,
    `single: 'it''s # not a comment'`,
    'multi: "first',
    '  second',
    '',
    '  third"',
    'plain: first',
    '  second',
    'folded escape: "a\\',
    '  b"',
  ].join('\n'),
  'comments and markers': '---\n# c\na: 1 # c\nb: [1, 2] # c\n...\n',
  'colons and question marks in values': 'url: http://x:80/a?b=c\ntime: 12:30\nq: what?\nsh: $?\n',
  'nested flow and block':
    'a: {b: [1, {c: d}], e: {f: g}}\nh:\n  - [i, j]\n  - {k: l}\n  -\n    - m\n',
  'a scalar alias': 'a: &x 5\nb: *x\nc: &y text\nd: *y\n',
  'explicit standard tags':
    'a: !!str 5\nb: !!int "7"\nc: !!float "1.5"\nd: !!bool "true"\ne: !!null ""\nf: !!seq [1]\ng: !!map {h: 1}\n',
  'the prototype key': '__proto__: {polluted: true}\nconstructor: x\n',
  'windows line endings': 'a: 1\r\nb:\r\n  - c\r\n  - d\r\n',
  'a byte order mark': '\uFEFFa: 1\n',
  'a top-level scalar': 'just text\n',
  'an empty document': '',
  'only a comment': '# nothing\n',
  'unicode and long lines': `name: "${'ü'.repeat(5000)}"\nlist: [${Array.from({ length: 2000 }, (_, i) => i).join(', ')}]\n`,
};

/** Documents where the fast reader must return `undefined`, so that `yaml` reads them. */
const STEP_ASIDE: Record<string, string> = {
  'a syntax error': 'name: x\noperations:\n  - id: a\n   type: create\n',
  'a duplicate key': 'a: 1\na: 2\n',
  'a list reached through an alias': 'a: &l [1, 2]\nb: *l\n',
  'an object reached through an alias': 'a: &o {x: 1}\nb: [*o]\n',
  'a YAML 1.1 directive': '%YAML 1.1\n---\na: yes\nb: 0b101\n',
  'an unknown tag': 'a: !secret value\n',
  'a tag yaml does not know': 'a: !!binary aGVsbG8=\n',
  'a standard tag on a scalar it does not match': 'a: !!float 1\n',
  'a %TAG directive': '%TAG !e! tag:example.com,2000:\n---\na: !e!x 1\n',
  'two documents': 'a: 1\n---\nb: 2\n',
  'a null key': 'a: 1\n~: c\n',
  'a null key in a list': '- null: c\n',
  'an empty key': 'a: 1\n: c\n',
  'an explicit key': '? a\n: c\n',
  'a list as a key': '[a, b]: c\n',
  'an object as a key': '{a: 1}: c\n',
  'an alias as a key': 'a: &n ~\n*n : c\n',
  'an undefined alias': 'a: *nowhere\n',
};

describe('readYamlValue', () => {
  test.each(Object.entries(DOCUMENTS))('reads %s as yaml does', (_, source) => {
    const fast = readYamlValue(source);
    expect(fast, 'the fast reader stepped aside').toBeDefined();
    const reference: unknown = parse(source, { logLevel: 'silent' }) ?? null;
    // isDeepStrictEqual tells -0 from 0 and NaN from null, which toEqual's printout would hide.
    if (!isDeepStrictEqual(fast!.value, reference)) expect(fast!.value).toEqual(reference);
    expect(isDeepStrictEqual(fast!.value, reference)).toBe(true);
  });

  test.each(Object.entries(STEP_ASIDE))('steps aside for %s', (_, source) => {
    expect(readYamlValue(source)).toBeUndefined();
  });

  test('reads a generated workflow as yaml does', () => {
    const workflow = {
      name: 'fleet',
      operations: Array.from({ length: 300 }, (_, i) => ({
        id: `op-${i}`,
        type: i % 2 ? 'update' : 'check',
        target: 'server',
        items: [`web-${i}`, `db-${i}`],
        depends_on: i > 0 ? [`op-${i - 1}`] : [],
        timeout: i * 1.5,
        parallel: i % 3 === 0,
        steps: [{ name: 'say', type: 'script', params: { script: `echo ${i} && exit 0\n` } }],
      })),
    };
    const source = stringify(workflow);
    expect(readYamlValue(source)?.value).toEqual(workflow);
  });

  test('reads a list of 100k items, flat', () => {
    const source = Array.from({ length: 100_000 }, (_, i) => `- &a${i} ${i}`).join('\n');
    expect((readYamlValue(source)?.value as number[]).length).toBe(100_000);
  });
});
