import { parse as parseYaml, parseAllDocuments } from 'yaml';
import { describe, expect, test } from 'vitest';
import { renderData, renderStreamItem } from './format.ts';
import { renderTable, truncate } from './table.ts';

const runs = [
  { id: 'r-2', name: 'deploy', status: 'failed', labels: { env: 'prod' }, error: 'boom\nline 2' },
  { id: 'r-1', name: 'quickstart', status: 'succeeded', labels: {}, error: null },
];

describe('renderData', () => {
  test("table: uses the command's own renderer and ends in a newline", () => {
    expect(renderData(runs, 'table', () => 'two runs')).toBe('two runs\n');
  });

  test('json: the data as indented JSON', () => {
    expect(JSON.parse(renderData(runs, 'json', () => ''))).toEqual(runs);
  });

  test('yaml: the data as YAML that reads back the same, long strings unfolded', () => {
    const long = { message: 'x'.repeat(200) };
    expect(parseYaml(renderData(runs, 'yaml', () => ''))).toEqual(runs);
    expect(
      renderData(long, 'yaml', () => '')
        .trim()
        .split('\n'),
    ).toHaveLength(1);
  });

  test('nuon: the data as indented NUON', () => {
    expect(renderData({ id: 'r-1', n: 2 }, 'nuon', () => '')).toBe('{\n  id: "r-1",\n  n: 2\n}\n');
  });
});

describe('renderStreamItem', () => {
  test('json: one compact object a line (NDJSON)', () => {
    const text = runs.map((r) => renderStreamItem(r, 'json', () => '')).join('');
    expect(
      text
        .trimEnd()
        .split('\n')
        .map((l) => JSON.parse(l)),
    ).toEqual(runs);
  });

  test('yaml: one document per item', () => {
    const text = runs.map((r) => renderStreamItem(r, 'yaml', () => '')).join('');
    expect(parseAllDocuments(text).map((d) => d.toJS())).toEqual(runs);
  });

  test('nuon and table: one line per item', () => {
    expect(renderStreamItem({ a: [1] }, 'nuon', () => '')).toBe('{a: [1]}\n');
    expect(renderStreamItem({}, 'table', () => 'a line')).toBe('a line\n');
  });
});

describe('renderTable', () => {
  test('pads columns to the widest cell and trims trailing blanks', () => {
    const text = renderTable(runs, [
      { header: 'ID', cell: (r) => r.id },
      { header: 'NAME', cell: (r) => r.name },
      { header: 'ERROR', cell: (r) => r.error ?? '' },
    ]);
    expect(text).toBe(
      ['ID   NAME        ERROR', 'r-2  deploy      boom ⏎ line 2', 'r-1  quickstart', ''].join(
        '\n',
      ),
    );
  });

  test('prints only the header without rows', () => {
    expect(renderTable([], [{ header: 'ID', cell: () => 'x' }])).toBe('ID\n');
  });

  test('truncate marks the cut', () => {
    expect(truncate('abcdef', 4)).toBe('abc…');
    expect(truncate('abc', 4)).toBe('abc');
  });
});
