import { describe, expect, test } from 'vitest';
import { locateInCue, parseCueHeader, wrapCueSource } from './cue-source.ts';

describe('parseCueHeader', () => {
  test('reads the package clause and both import forms', () => {
    const src = `// doc\npackage deploy // trailing\n\nimport "strings"\nimport (\n\tm "muster.dev/schemas:muster"\n\t"list"\n)\n\nname: "x"\n`;
    const header = parseCueHeader(src);
    expect(header.packageName).toBe('deploy');
    expect(header.imports).toEqual(['strings', 'muster.dev/schemas:muster', 'list']);
    expect(src.slice(0, header.end).endsWith(')')).toBe(true);
  });

  test('is empty for a file of declarations', () => {
    expect(parseCueHeader('name: "package"\n')).toEqual({ imports: [], end: 0 });
  });
});

describe('wrapCueSource', () => {
  const options = { field: 'doc__', definition: '#Workflow', defaultPackage: 'muster' };

  test('keeps every line where it was when there is a package clause', () => {
    const src = 'package p\n\nname: "x"\n';
    const wrapped = wrapCueSource(src, options);
    expect(wrapped.source).toBe('package p, doc__: #Workflow & {\n\nname: "x"\n\n}\n');
    expect(wrapped.mapPosition(3, 7)).toEqual({ line: 3, column: 7 });
    // Inside the text we added: dropped.
    expect(wrapped.mapPosition(1, 15)).toBeUndefined();
    // The closing brace we appended: dropped.
    expect(wrapped.mapPosition(5, 1)).toBeUndefined();
  });

  test('shifts columns back on line 1 when it adds the package clause there', () => {
    const src = 'name: "x"\n';
    const wrapped = wrapCueSource(src, options);
    const added = 'package muster, doc__: #Workflow & {'.length;
    expect(wrapped.source.startsWith('package muster, doc__: #Workflow & {name')).toBe(true);
    expect(wrapped.mapPosition(1, added + 7)).toEqual({ line: 1, column: 7 });
    expect(wrapped.mapPosition(1, 3)).toBeUndefined();
  });

  test('puts the package clause before imports and the wrapper after them', () => {
    const wrapped = wrapCueSource('import "strings"\nname: strings.ToLower("X")\n', options);
    expect(wrapped.source).toBe(
      'package muster, import "strings", doc__: #Workflow & {\nname: strings.ToLower("X")\n\n}\n',
    );
    expect(wrapped.mapPosition(2, 7)).toEqual({ line: 2, column: 7 });
    expect(wrapped.mapPosition(1, 'package muster, '.length + 1)).toEqual({ line: 1, column: 1 });
  });
});

describe('locateInCue', () => {
  const src = `package p

import "muster.dev/schemas:muster"

// name: "not this one"
muster.#Workflow & {
	name: "deploy"
	labels: "app.io/name": "x"
	operations: [
		{id: "a", type: "create", target: "server"},
		{
			id: "b" // the second
			steps: [
				{name: "s1", type: "script", params: {command: """
					echo "{ ]"
					"""}}
				{name: "s2", type: "echo"}
			]
			depends_on: ["a",
				"c"]
		},
	]
	retry_policy: max_attempts: 2
}
`;
  const at = (...segments: Array<string | number>) => locateInCue(src, segments);

  test('finds keys inside an embedded definition, skipping comments', () => {
    expect(at('name')).toEqual({ line: 7, column: 2 });
    expect(at('operations')).toEqual({ line: 9, column: 2 });
  });

  test('finds list elements, with commas or line breaks between them', () => {
    expect(at('operations', 0)).toEqual({ line: 10, column: 3 });
    expect(at('operations', 1, 'id')).toEqual({ line: 12, column: 4 });
    expect(at('operations', 1, 'steps', 1)).toEqual({ line: 17, column: 5 });
    expect(at('operations', 1, 'steps', 1, 'type')).toEqual({ line: 17, column: 18 });
    expect(at('operations', 1, 'depends_on', 1)).toEqual({ line: 20, column: 5 });
  });

  test('follows shorthand fields and quoted keys', () => {
    expect(at('retry_policy', 'max_attempts')).toEqual({ line: 23, column: 16 });
    expect(at('labels', 'app.io/name')).toEqual({ line: 8, column: 10 });
  });

  test('gives up on what is not written', () => {
    expect(at('operations', 5)).toBeUndefined();
    expect(at('servers')).toBeUndefined();
    expect(at('operations', 1, 'steps', 0, 'params', 'missing')).toBeUndefined();
  });
});
