import { describe, expect, test } from 'vitest';
import { stringify } from 'yaml';
import { expectSameAnswers, referenceLocator, SAMPLE } from './locate.fixtures.ts';
import { readYamlValue } from './yaml-value.ts';
import { yamlValueLocator } from './yaml-locate.ts';

const documents: Record<string, string> = {
  'as yaml writes it': stringify(SAMPLE),
  'as JSON': JSON.stringify(SAMPLE, null, 2),
  'flow style inside block style': `name: wf
operations: [{id: one, items: [a, b]}, {id: two, depends_on: [one]}]
labels: {a: 1, b: "two"}
`,
  'comments, blank lines, odd indents and CRLF': [
    '# a workflow',
    'name: wf   # its name',
    '',
    'operations:',
    '    # the first',
    '    -   id: one',
    '        steps:',
    '        -  name: s',
    '           # params next',
    '           params:',
    '             message: "hi # not a comment"',
    '    - id: two',
    '',
  ].join('\r\n'),
  'block scalars, quotes and empty values': `name: |
  two
  lines
description: >-
  folded
  text
items:
  - 'single ''quoted'''
  - "double \\"quoted\\""
  -
  - last
empty:
after: 1
`,
  'keys that are not strings': `id: 1
other: {id: 2}
1: one
true: yes
`,
  'a sequence at the top': '- 1\n- [2, 3]\n- x: [4]\n',
  'items on the line after their dash':
    'items:\n  -\n    # the first\n    a: 1\n  -\n\n    [b,\n     c]\n',
  'a scalar at the top': '  just text\n',
  'an anchored scalar': 'a: &v 1\nb: 2\n',
  'anchored lists and maps': 'a: &l [1, {x: 2}]\nb: &m\n  c: [3]\nd:\n  - &i [4]\n',
};

describe('yamlValueLocator', () => {
  for (const [name, source] of Object.entries(documents)) {
    test(`answers as yamlLocator does: ${name}`, () => {
      const read = readYamlValue(source);
      expect(read, 'the fast path reads it').toBeDefined();
      const reference = referenceLocator(source);
      let fellBack = 0;
      const locate = yamlValueLocator(source, (path) => {
        fellBack++;
        return reference(path);
      });
      expectSameAnswers(locate, reference, read!.value);
      // Only a list with an empty item needs the slow locator.
      expect(fellBack > 0).toBe(name === 'block scalars, quotes and empty values');
    });
  }

  test('points an entry at its key and an element at the element, line and column from 1', () => {
    const locate = yamlValueLocator('a:\n  - 10\n  - b: null\n    c: [x]\n', () => {
      throw new Error('no fallback expected');
    });
    expect(locate('a')).toEqual({ line: 1, column: 1 });
    expect(locate('a[0]')).toEqual({ line: 2, column: 5 });
    expect(locate('a[1].c[0]')).toEqual({ line: 4, column: 9 });
    expect(locate('a[1].b.d')).toBeUndefined();
    expect(locate('a[2]')).toBeUndefined();
  });
});
