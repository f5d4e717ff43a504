import * as v from 'valibot';
import { describe, expect, test } from 'vitest';
import { _compileSchema, fastParse, fastSafeParse } from './fast-validate.ts';
import {
  LoggingSchema,
  RolloutSchema,
  StepSchema,
  TaskservSchema,
  WorkflowSchema,
} from './workflow.ts';

/** Deterministic pseudo-random numbers in [0, 1) (mulberry32). */
function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** A random valid workflow touching every part of the schema, optional fields at random. */
function randomWorkflow(random: () => number): Record<string, Json> {
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]!;
  const maybe = (p = 0.5) => random() < p;
  const int = (lo: number, hi: number) => lo + Math.floor(random() * (hi - lo + 1));
  const some = <T>(n: number, make: (i: number) => T): T[] =>
    Array.from({ length: int(0, n) }, (_, i) => make(i));
  const put = (o: Record<string, Json>, key: string, value: () => Json, p = 0.5) => {
    if (maybe(p)) o[key] = value();
  };
  const step = (i: number): Record<string, Json> => {
    const s: Record<string, Json> = { name: `s${i}`, type: pick(['echo', 'script', 'sleep']) };
    put(s, 'params', () => ({ message: 'hi', n: int(0, 9), list: [1, 'a'] }));
    put(s, 'handler', () => 'h');
    put(s, 'required', () => maybe());
    put(s, 'continue_on_failure', () => maybe());
    put(s, 'timeout', () => int(1, 99));
    put(s, 'rollback', () => ({ type: 'echo', ...(maybe() ? { params: { a: 1 } } : {}) }), 0.3);
    return s;
  };
  const op = (i: number): Record<string, Json> => {
    const o: Record<string, Json> = {
      id: `op-${i}`,
      type: pick(['create', 'update', 'delete', 'check']),
      target: pick(['server', 'taskserv', 'cluster']),
    };
    put(o, 'description', () => 'd');
    put(o, 'providers', () => some(2, () => pick(['local', 'ssh'])));
    put(o, 'items', () => some(3, (k) => `it${k}`));
    put(o, 'depends_on', () => some(2, (k) => `op-${k}`));
    put(o, 'parallel', () => maybe());
    put(o, 'timeout', () => int(1, 600));
    put(o, 'on_failure', () => pick(['fail', 'continue', 'rollback']));
    put(o, 'retry_policy', () => {
      const r: Record<string, Json> = {};
      put(r, 'max_attempts', () => int(1, 5));
      put(r, 'backoff', () => pick(['linear', 'exponential']));
      put(r, 'initial_delay', () => random() * 10);
      put(r, 'non_retryable', () => ['x']);
      return r;
    });
    put(o, 'steps', () => some(3, step));
    put(o, 'rollout', () => {
      const r: Record<string, Json> = {};
      put(r, 'strategy', () => pick(['parallel', 'sequential', 'rolling', 'canary']));
      put(r, 'batch_size', () => int(1, 5));
      put(r, 'max_failures', () => int(0, 3));
      put(r, 'canary_percentage', () => int(2, 100) - 0.5 * int(0, 1));
      return r;
    });
    return o;
  };
  const w: Record<string, Json> = {
    name: 'w',
    operations: Array.from({ length: int(1, 4) }, (_, i) => op(i)),
  };
  put(w, 'type', () => pick(['batch', 'sequential', 'parallel']));
  put(w, 'labels', () => ({ team: 'a' }));
  put(w, 'inputs', () => ({ version: { type: 'string', default: '1', required: maybe() } }));
  put(w, 'environments', () => ({ prod: { inputs: { version: '2' }, labels: { env: 'p' } } }));
  put(w, 'servers', () =>
    some(2, (i) => ({
      name: `web-${i}`,
      provider: pick(['local', 'ssh']),
      taskservs: ['t'],
      ...(maybe() ? { ssh: { port: int(1, 65535) } } : {}),
      ...(maybe() ? { resources: { cpu: int(1, 8) } } : {}),
    })),
  );
  put(w, 'taskservs', () => [
    { name: 't', install: [step(0)], health_check: { command: 'true', retries: int(0, 3) } },
  ]);
  put(w, 'dependencies', () => [{ source: 'op-0', target: 'op-1', type: 'soft' }], 0.3);
  put(w, 'rollback_strategy', () => ({ enabled: maybe() }), 0.3);
  put(w, 'retry_policy', () => ({ max_attempts: int(1, 9) }), 0.3);
  put(w, 'logging', () => ({ level: 'debug', destinations: ['stdout'] }), 0.3);
  put(w, 'secrets', () => ({ provider: 'env', env: ['A'] }), 0.3);
  put(w, 'monitoring', () => ({ telemetry: { enabled: true } }), 0.3);
  put(w, 'templates', () => ['x.cue'], 0.2);
  return w;
}

/** Every (container, key) of a document, to mutate one of them. */
function slots(value: Json, out: Array<[Json[] | Record<string, Json>, string | number]> = []) {
  if (Array.isArray(value)) {
    value.forEach((x, i) => {
      out.push([value, i]);
      slots(x, out);
    });
  } else if (value !== null && typeof value === 'object') {
    for (const [k, x] of Object.entries(value)) {
      out.push([value, k]);
      slots(x, out);
    }
  }
  return out;
}

const ODD_VALUES: Json[] = [null, -1, 0, 1.5, '', 'nope', 'a b', true, [], ['a'], {}, { zz: 1 }];

/** The document with one value replaced, one key removed, or one unknown key added. */
function mutate(doc: Record<string, Json>, random: () => number): Record<string, Json> {
  const copy = structuredClone(doc);
  const all = slots(copy);
  const [container, key] = all[Math.floor(random() * all.length)]!;
  const what = random();
  if (what < 0.7) {
    (container as Record<string, Json>)[key] =
      ODD_VALUES[Math.floor(random() * ODD_VALUES.length)]!;
  } else if (what < 0.85 && !Array.isArray(container)) {
    delete container[key];
  } else if (!Array.isArray(container)) {
    container.unexpected_field = 1;
  } else {
    container.push(ODD_VALUES[Math.floor(random() * ODD_VALUES.length)]!);
  }
  return copy;
}

function expectSameAsValibot(schema: v.GenericSchema, input: unknown): boolean {
  const slow = v.safeParse(schema, input);
  for (const shareInput of [false, true]) {
    const fast = fastSafeParse(schema, input, { shareInput });
    expect(fast.success).toBe(slow.success);
    if (slow.success) expect(fast.output).toStrictEqual(slow.output);
    else expect(fast.issues).toStrictEqual(slow.issues);
  }
  return slow.success;
}

describe('fastSafeParse', () => {
  test('compiles the workflow language schemas (no silent fallback to valibot)', () => {
    for (const schema of [
      WorkflowSchema,
      TaskservSchema,
      StepSchema,
      RolloutSchema,
      LoggingSchema,
    ]) {
      expect(_compileSchema(schema)).toBeTypeOf('function');
    }
  });

  test('refuses schemas it does not understand, and then gives valibot results', () => {
    const Transformed = v.pipe(
      v.string(),
      v.transform((s) => s.length),
    );
    expect(_compileSchema(Transformed)).toBeUndefined();
    expect(_compileSchema(v.strictObject({ a: v.nullish(v.string()) }))).toBeUndefined();
    expect(fastParse(Transformed, 'abc')).toBe(3);
    expect(() => fastParse(Transformed, 1)).toThrow(v.ValiError);
  });

  test('gives valibot output with defaults for a minimal workflow', () => {
    const input = { name: 'w', operations: [{ id: 'a', type: 'check', target: 'cluster' }] };
    const output = fastParse(WorkflowSchema, input);
    expect(output).toStrictEqual(v.parse(WorkflowSchema, input));
    expect(output.retry_policy.max_attempts).toBe(3);
    expect(output.operations[0]!.steps).toEqual([]);
  });

  test('gives every defaulted list and record its own new value', () => {
    const input = {
      name: 'w',
      operations: [
        { id: 'a', type: 'check', target: 'cluster' },
        { id: 'b', type: 'check', target: 'cluster' },
      ],
    };
    const [first, second] = [fastParse(WorkflowSchema, input), fastParse(WorkflowSchema, input)];
    expect(first.operations[0]!.providers).toEqual([]);
    expect(first.operations[0]!.providers).not.toBe(first.operations[1]!.providers);
    expect(first.operations[0]!.providers).not.toBe(second.operations[0]!.providers);
    expect(first.labels).toEqual({});
    expect(first.labels).not.toBe(second.labels);

    // A default that is not a new empty value each time is called and copied, as valibot does.
    const shared = ['x'];
    const Schema = v.strictObject({
      list: v.optional(v.array(v.string()), () => shared),
      fixed: v.optional(v.array(v.string()), ['y']),
    });
    const output = fastParse(Schema, {});
    expect(output).toStrictEqual(v.parse(Schema, {}));
    expect(output.list).not.toBe(shared);
  });

  test('shares unchanged lists and records with the input only when asked to', () => {
    const step = { name: 's', type: 'echo', params: { message: 'hi', n: [1] } };
    const op = {
      id: 'a',
      type: 'check',
      target: 'cluster',
      items: ['x'],
      depends_on: [],
      steps: [step],
    };
    const input = { name: 'w', labels: { team: 'a' }, operations: [op] };

    const shared = fastParse(WorkflowSchema, input, { shareInput: true });
    expect(shared).toStrictEqual(v.parse(WorkflowSchema, input));
    expect(shared.operations[0]!.items).toBe(op.items);
    expect(shared.operations[0]!.depends_on).toBe(op.depends_on);
    expect(shared.operations[0]!.steps[0]!.params).toBe(step.params);
    expect(shared.labels).toBe(input.labels);
    // What validation changes is new: objects that get defaults, lists of them.
    expect(shared.operations[0]).not.toBe(op);
    expect(shared.operations[0]!.steps).not.toBe(op.steps);

    const copied = fastParse(WorkflowSchema, input);
    expect(copied.operations[0]!.items).not.toBe(op.items);
    expect(copied.operations[0]!.steps[0]!.params).not.toBe(step.params);
    expect(copied.labels).not.toBe(input.labels);
  });

  test('copies what valibot would not give back key for key, even when sharing', () => {
    class Names extends Array<string> {}
    const odd = [
      { name: 'w', labels: JSON.parse('{"__proto__": "x", "a": "b"}') as unknown },
      { name: 'w', labels: Object.assign(Object.create({ inherited: 'x' }) as object, { a: 'b' }) },
      { name: 'w', labels: { constructor: 'x' } },
      { name: 'w', templates: Names.from(['a.cue']) },
    ];
    for (const extra of odd) {
      const input = { operations: [{ id: 'a', type: 'check', target: 'cluster' }], ...extra };
      const shared = fastSafeParse(WorkflowSchema, input, { shareInput: true });
      expect(shared).toStrictEqual(v.safeParse(WorkflowSchema, input));
      if (shared.success) {
        expect(shared.output.labels).not.toBe(input.labels);
        expect(shared.output.templates).not.toBe(extra.templates);
      }
    }
  });

  test('matches valibot on edge cases of objects, records, numbers and keys', () => {
    const base = { name: 'w', operations: [{ id: 'a', type: 'check', target: 'cluster' }] };
    const cases: unknown[] = [
      null,
      [],
      'w',
      { ...base, labels: ['a'] },
      { ...base, labels: { a: 1 } },
      { ...base, inputs: { x: { type: 'int', default: undefined } } },
      { ...base, operations: [] },
      { ...base, operations: [{ ...base.operations[0], timeout: Number.NaN }] },
      { ...base, operations: [{ ...base.operations[0], timeout: Infinity }] },
      { ...base, operations: [{ ...base.operations[0], rollout: [] }] },
      { ...base, operations: [{ ...base.operations[0], description: undefined }] },
      { ...base, operations: [{ ...base.operations[0], id: 'bad id' }] },
      { ...base, operations: [{ ...base.operations[0], id: '-a' }] },
      { ...base, name: '' },
      { ...base, type: undefined },
      { ...base, constructor: 1 },
      JSON.parse(
        '{"name":"w","operations":[{"id":"a","type":"check","target":"cluster"}],"labels":{"__proto__":"x"}}',
      ),
      JSON.parse(
        '{"name":"w","operations":[{"id":"a","type":"check","target":"cluster"}],"__proto__":{}}',
      ),
    ];
    for (const input of cases) expectSameAsValibot(WorkflowSchema, input);
  });

  test('matches valibot on 400 random valid workflows and 2,000 mutations of them', () => {
    const random = seeded(7);
    let valid = 0;
    let invalid = 0;
    for (let n = 0; n < 400; n++) {
      const doc = randomWorkflow(random);
      expect(expectSameAsValibot(WorkflowSchema, doc)).toBe(true);
      for (let m = 0; m < 5; m++) {
        if (expectSameAsValibot(WorkflowSchema, mutate(doc, random))) valid++;
        else invalid++;
      }
    }
    // The mutations hit both sides of the line, so both verdicts are compared.
    expect(invalid).toBeGreaterThan(1000);
    expect(valid).toBeGreaterThan(50);
  });
});
