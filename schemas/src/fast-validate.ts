/**
 * A fast path for valibot: compiles a schema, once, into one specialised JS function that either
 * returns exactly what `v.safeParse` would output for a valid document, or says "invalid", and
 * then valibot itself runs to produce the issues (so messages stay valibot's).
 *
 * The compiler walks the valibot schema objects themselves (strict objects, `optional` with or
 * without a default, picklists of strings, arrays, records of strings, `unknown`, strings,
 * numbers, booleans, and pipes of `regex`, `minLength`, `integer`, `minValue`, `maxValue`), so it
 * cannot drift from the schema. Every node's `~run` must be valibot's own (compared by source); a
 * node it does not know, or one with a custom `~run`, makes it refuse the whole schema, and
 * {@link fastSafeParse} then uses valibot alone. The one custom node it accepts is the workflow's
 * list-refusing record (`Dict` in `workflow.ts`, recognised by its `Array.isArray` guard).
 *
 * Why: at 100k operations valibot spends most of its time allocating datasets per node; the
 * compiled function allocates only the output.
 *
 * @module
 */
import * as v from 'valibot';

/** Thrown inside the compiler when a node is not understood; never escapes this module. */
class Unsupported extends Error {}

type AnyNode = { readonly kind: string; readonly type: string; readonly '~run': unknown } & Record<
  string,
  unknown
>;

/** The source of valibot's own `~run` for each node type we compile, from stock instances. */
const STOCK: ReadonlyMap<string, string> = new Map(
  (
    [
      v.string(),
      v.number(),
      v.boolean(),
      v.unknown(),
      v.picklist(['a']),
      v.array(v.string()),
      v.record(v.string(), v.string()),
      v.strictObject({}),
      v.optional(v.string()),
      v.regex(/a/),
      v.minLength(1),
      v.integer(),
      v.minValue(1),
      v.maxValue(1),
    ] as unknown as AnyNode[]
  ).map((node) => [`${node.kind}:${node.type}`, String(node['~run'])]),
);
const STOCK_PIPE = String((v.pipe(v.string(), v.minLength(1)) as unknown as AnyNode)['~run']);

const isStock = (node: AnyNode, run: unknown = node['~run']): boolean =>
  STOCK.get(`${node.kind}:${node.type}`) === String(run);

/**
 * The literal to emit for an `optional(wrapped, default)` whose default is a function returning a
 * new empty list or object on each call (`() => []`, `() => ({})`), and whose wrapped schema is a
 * plain array or record: valibot outputs a new empty copy of it, which the literal is. Undefined
 * otherwise (then the default is called and validated as valibot does).
 */
function freshEmptyDefault(fallback: unknown, wrapped: AnyNode): '[]' | '{}' | undefined {
  if (typeof fallback !== 'function' || fallback.length !== 0 || Array.isArray(wrapped.pipe)) {
    return undefined;
  }
  const [a, b] = [(fallback as () => unknown)(), (fallback as () => unknown)()];
  if (a === b || typeof a !== 'object' || a === null || typeof b !== 'object' || b === null) {
    return undefined;
  }
  const empty = (x: object, proto: object) =>
    Object.getPrototypeOf(x) === proto &&
    Reflect.ownKeys(x).length === (proto === Array.prototype ? 1 : 0);
  if (wrapped.type === 'array' && empty(a, Array.prototype) && empty(b, Array.prototype)) {
    return '[]';
  }
  if (wrapped.type === 'record' && empty(a, Object.prototype) && empty(b, Object.prototype)) {
    return '{}';
  }
  return undefined;
}

/** A default written into the code as a literal: a string, boolean or finite number. */
const isInlinable = (value: unknown): boolean =>
  typeof value === 'string' ||
  typeof value === 'boolean' ||
  (typeof value === 'number' && Number.isFinite(value) && !Object.is(value, -0));

/**
 * Whether a valid value comes out of `node` as it went in (strings, numbers, booleans,
 * picklists, with their checks, and `unknown` where allowed), so a list or record of them can be
 * shared rather than copied.
 *
 * @param node The item or value schema.
 * @param unknownToo Whether `unknown` counts: not for list items, as valibot turns a hole in a
 *   list into an `undefined` item, which a shared list would keep as a hole.
 */
function keepsValue(node: AnyNode, unknownToo: boolean): boolean {
  switch (node.type) {
    case 'string':
    case 'number':
    case 'boolean':
    case 'picklist':
      return true;
    case 'unknown':
      return unknownToo;
    default:
      return false;
  }
}

/** Code generation state: constants the generated code refers to, and fresh variable names. */
class Compiler {
  readonly constants: unknown[] = [];
  private counter = 0;

  /** @param share Whether lists and records validation leaves unchanged are shared, not copied. */
  constructor(private readonly share: boolean) {}

  fresh(prefix: string): string {
    return `${prefix}${this.counter++}`;
  }

  constant(value: unknown): string {
    this.constants.push(value);
    return `K[${this.constants.length - 1}]`;
  }

  /** Code that checks `input` against `node` and assigns the output to `out`, or returns FAIL. */
  emit(node: AnyNode, input: string, out: string): string {
    if (node.kind !== 'schema') throw new Unsupported(node.type);
    if (Array.isArray(node.pipe)) {
      if (String(node['~run']) !== STOCK_PIPE) throw new Unsupported('pipe');
      return this.emitPipe(node.pipe as AnyNode[], input, out);
    }
    const record = node.type === 'record' && !isStock(node);
    if (!record && !isStock(node)) throw new Unsupported(node.type);
    if (node.fallback !== undefined) throw new Unsupported('fallback');
    switch (node.type) {
      case 'string':
        return `if (typeof ${input} !== 'string') return FAIL; ${out} = ${input};`;
      case 'number':
        return `if (typeof ${input} !== 'number' || ${input} !== ${input}) return FAIL; ${out} = ${input};`;
      case 'boolean':
        return `if (typeof ${input} !== 'boolean') return FAIL; ${out} = ${input};`;
      case 'unknown':
        return `${out} = ${input};`;
      case 'picklist':
        return this.emitPicklist(node, input, out);
      case 'optional':
        return this.emitOptional(node, input, out);
      case 'array':
        return this.emitArray(node, input, out);
      case 'record':
        return this.emitRecord(node, input, out);
      case 'strict_object':
        return this.emitStrictObject(node, input, out);
      default:
        throw new Unsupported(node.type);
    }
  }

  private emitPipe(pipe: readonly AnyNode[], input: string, out: string): string {
    const [first, ...actions] = pipe;
    if (first === undefined) throw new Unsupported('empty pipe');
    let code = this.emit(first, input, out);
    for (const action of actions) {
      if (action.kind === 'metadata') continue;
      if (action.kind !== 'validation' || !isStock(action)) throw new Unsupported(action.type);
      const req = action.requirement;
      switch (action.type) {
        case 'regex':
          if (!(req instanceof RegExp) || req.global || req.sticky) throw new Unsupported('regex');
          code += ` if (!${this.constant(req)}.test(${out})) return FAIL;`;
          break;
        case 'min_length':
          if (typeof req !== 'number') throw new Unsupported('min_length');
          code += ` if (${out}.length < ${req}) return FAIL;`;
          break;
        case 'integer':
          if (req !== Number.isInteger) throw new Unsupported('integer');
          code += ` if (!Number.isInteger(${out})) return FAIL;`;
          break;
        case 'min_value':
        case 'max_value':
          if (typeof req !== 'number' || !Number.isFinite(req)) throw new Unsupported(action.type);
          code += ` if (!(${out} ${action.type === 'min_value' ? '>=' : '<='} ${req})) return FAIL;`;
          break;
        default:
          throw new Unsupported(action.type);
      }
    }
    return code;
  }

  private emitPicklist(node: AnyNode, input: string, out: string): string {
    const options = node.options as readonly unknown[];
    if (!options.every((o) => typeof o === 'string')) throw new Unsupported('picklist');
    const cases = options.map((o) => `case ${JSON.stringify(o)}:`).join(' ');
    return `switch (${input}) { ${cases} break; default: return FAIL; } ${out} = ${input};`;
  }

  private emitOptional(node: AnyNode, input: string, out: string): string {
    const wrapped = node.wrapped as AnyNode;
    if (node.default === undefined) {
      return `if (${input} === undefined) ${out} = undefined; else { ${this.emit(wrapped, input, out)} }`;
    }
    const fresh = freshEmptyDefault(node.default, wrapped);
    if (fresh !== undefined) {
      // What valibot would output: the default run through the wrapped schema, a new `[]`/`{}`.
      return `if (${input} === undefined) ${out} = ${fresh}; else { ${this.emit(wrapped, input, out)} }`;
    }
    const value = this.fresh('d');
    const fallback =
      typeof node.default === 'function'
        ? `${this.constant(node.default)}()`
        : isInlinable(node.default)
          ? JSON.stringify(node.default)
          : this.constant(node.default);
    return `let ${value} = ${input}; if (${value} === undefined) ${value} = ${fallback};
      if (${value} === undefined) ${out} = undefined; else { ${this.emit(wrapped, value, out)} }`;
  }

  private emitArray(node: AnyNode, input: string, out: string): string {
    const i = this.fresh('i');
    const n = this.fresh('n');
    const list = this.fresh('a');
    const value = this.fresh('x');
    const item = this.fresh('v');
    if (this.share && keepsValue(node.item as AnyNode, false)) {
      // Checked in place and shared. A list that is not a plain Array goes to valibot (FAIL),
      // whose copy is then the output.
      return `if (!Array.isArray(${input}) || Object.getPrototypeOf(${input}) !== Array.prototype) return FAIL;
        for (let ${i} = 0, ${n} = ${input}.length; ${i} < ${n}; ${i}++) {
          const ${value} = ${input}[${i}];
          let ${item}; ${this.emit(node.item as AnyNode, value, item)}
        }
        ${out} = ${input};`;
    }
    // Lists get their exact size: an empty literal reserves 17 slots on its first push, which at
    // 100k operations made close to half of the output's bytes.
    return `if (!Array.isArray(${input})) return FAIL;
      const ${n} = ${input}.length;
      const ${list} = new Array(${n});
      for (let ${i} = 0; ${i} < ${n}; ${i}++) {
        const ${value} = ${input}[${i}];
        let ${item}; ${this.emit(node.item as AnyNode, value, item)}
        ${list}[${i}] = ${item};
      }
      ${out} = ${list};`;
  }

  private emitRecord(node: AnyNode, input: string, out: string): string {
    // A record whose `~run` is not valibot's own is accepted only as the list-refusing `Dict`.
    const refusesLists = !isStock(node);
    if (refusesLists && !String(node['~run']).includes('Array.isArray(dataset.value)')) {
      throw new Unsupported('custom record');
    }
    const key = node.key as AnyNode;
    if (key.type !== 'string' || Array.isArray(key.pipe) || !isStock(key)) {
      throw new Unsupported('record key');
    }
    const k = this.fresh('k');
    const map = this.fresh('r');
    const value = this.fresh('x');
    const item = this.fresh('v');
    const hasOwn = 'Object.prototype.hasOwnProperty.call';
    const skipped = `!${hasOwn}(${input}, ${k}) || ${k} === '__proto__' || ${k} === 'prototype' || ${k} === 'constructor'`;
    if (this.share && keepsValue(node.value as AnyNode, true)) {
      // Checked in place and shared. A record valibot would not copy key for key (not a plain
      // object, or with a key it skips) goes to valibot (FAIL), whose copy is then the output.
      return `if (!${input} || typeof ${input} !== 'object' || Object.getPrototypeOf(${input}) !== Object.prototype) return FAIL;
        for (const ${k} in ${input}) {
          if (${skipped}) return FAIL;
          const ${value} = ${input}[${k}];
          let ${item}; ${this.emit(node.value as AnyNode, value, item)}
        }
        ${out} = ${input};`;
    }
    return `if (!${input} || typeof ${input} !== 'object'${refusesLists ? ` || Array.isArray(${input})` : ''}) return FAIL;
      const ${map} = {};
      for (const ${k} in ${input}) {
        if (${skipped}) continue;
        const ${value} = ${input}[${k}];
        let ${item}; ${this.emit(node.value as AnyNode, value, item)}
        ${map}[${k}] = ${item};
      }
      ${out} = ${map};`;
  }

  private emitStrictObject(node: AnyNode, input: string, out: string): string {
    const entries = node.entries as Record<string, AnyNode>;
    const k = this.fresh('k');
    const keys = Object.keys(entries);
    let code = `if (!${input} || typeof ${input} !== 'object') return FAIL;`;
    // Keys always present (required, or optional with a default) go into one object literal, so
    // every output object of this schema is created with one shape; keys valibot sets only when
    // present in the input are added after it (key order differs, contents do not).
    const always: string[] = [];
    const sometimes: string[] = [];
    for (const key of keys) {
      const entry = entries[key]!;
      if (key === '__proto__') throw new Unsupported(key);
      if (entry.fallback !== undefined) throw new Unsupported('fallback');
      if (entry.type === 'exact_optional' || entry.type === 'nullish') {
        throw new Unsupported(entry.type);
      }
      const name = JSON.stringify(key);
      const value = this.fresh('v');
      const field = this.fresh('x');
      const run = `const ${field} = ${input}[${name}]; ${this.emit(entry, field, value)}`;
      if (entry.type === 'optional' && entry.default === undefined) {
        const has = this.fresh('h');
        code += `let ${value}; const ${has} = ${name} in ${input}; if (${has}) { ${run} }`;
        sometimes.push(`if (${has}) ${out}[${name}] = ${value};`);
        continue;
      }
      if (entry.type !== 'optional') code += `if (!(${name} in ${input})) return FAIL;`;
      code += `let ${value}; { ${run} }`;
      always.push(`${name}: ${value}`);
    }
    const cases = keys.map((key) => `case ${JSON.stringify(key)}:`).join(' ');
    code += `for (const ${k} in ${input}) { switch (${k}) { ${cases} break; default: return FAIL; } }
      ${out} = { ${always.join(', ')} }; ${sometimes.join(' ')}`;
    return code;
  }
}

/** A compiled validator: the output valibot would give, or {@link FAIL} when valibot would reject. */
type Compiled = (input: unknown) => unknown;

const FAIL: unique symbol = Symbol('invalid');

/**
 * Compiles a valibot schema into a fast validator.
 *
 * @param schema A sync valibot schema.
 * @param share Whether the output may share the input's unchanged lists and records.
 * @returns A function giving valibot's output or {@link FAIL}; undefined when the schema holds a
 *   node the compiler does not understand.
 * @internal
 */
export function _compileSchema(schema: v.GenericSchema, share = false): Compiled | undefined {
  const compiler = new Compiler(share);
  let body: string;
  try {
    body = compiler.emit(schema as unknown as AnyNode, 'input', 'output');
  } catch (e: unknown) {
    if (e instanceof Unsupported) return undefined;
    throw e;
  }
  const factory = new Function(
    'K',
    'FAIL',
    `return function validate(input) { let output; ${body} return output; };`,
  ) as (constants: unknown[], fail: symbol) => Compiled;
  return factory(compiler.constants, FAIL);
}

/** Validators by schema: copying ones, and sharing ones. */
const compiled = [new WeakMap<object, Compiled | null>(), new WeakMap<object, Compiled | null>()];

function compiledFor(schema: v.GenericSchema, share: boolean): Compiled | null {
  const cache = compiled[share ? 1 : 0]!;
  let validator = cache.get(schema);
  if (validator === undefined) {
    validator = _compileSchema(schema, share) ?? null;
    cache.set(schema, validator);
  }
  return validator;
}

/** How {@link fastSafeParse} builds its output. */
export interface FastParseConfig {
  /**
   * Lets the output share the input's lists of strings, numbers or booleans and its records of
   * such values or of `unknown` ones, where validation leaves them as they are, instead of
   * copying them as valibot does. The output then holds the same values as valibot's, and parts
   * of it are the input's own arrays and objects: pass it for a document that nothing else will
   * use or change, as the loader's fresh `JSON.parse`, YAML or CUE result. At 100k operations it
   * halves the time validation takes (the copy was 40% of the output's bytes).
   *
   * @default false
   */
  readonly shareInput?: boolean;
}

/**
 * `v.safeParse` through the compiled fast path = same result, valibot's issues when invalid.
 *
 * Valid input returns what the compiled function built (valibot's output, deep-equal); invalid
 * input, or a schema the compiler refuses, runs `v.safeParse` itself.
 *
 * @param schema A sync valibot schema, e.g. `WorkflowSchema`.
 * @param input The untrusted value.
 * @param config Whether the output may share parts of `input`.
 * @returns The same result `v.safeParse(schema, input)` gives.
 * @example
 * ```ts
 * const result = fastSafeParse(WorkflowSchema, JSON.parse(text), { shareInput: true });
 * if (!result.success) report(result.issues);
 * ```
 */
export function fastSafeParse<TSchema extends v.GenericSchema>(
  schema: TSchema,
  input: unknown,
  config?: FastParseConfig,
): v.SafeParseResult<TSchema> {
  const validator = compiledFor(schema, config?.shareInput === true);
  if (validator !== null) {
    const output = validator(input);
    if (output !== FAIL) {
      return {
        typed: true,
        success: true,
        output,
        issues: undefined,
      } as v.SafeParseResult<TSchema>;
    }
  }
  return v.safeParse(schema, input);
}

/**
 * `v.parse` through the compiled fast path = valibot's output, or valibot's `ValiError`.
 *
 * @param schema A sync valibot schema.
 * @param input The value.
 * @param config Whether the output may share parts of `input`.
 * @returns The validated output.
 * @throws {v.ValiError} With valibot's issues when the input is invalid.
 */
export function fastParse<TSchema extends v.GenericSchema>(
  schema: TSchema,
  input: unknown,
  config?: FastParseConfig,
): v.InferOutput<TSchema> {
  const result = fastSafeParse(schema, input, config);
  if (result.success) return result.output;
  return v.parse(schema, input);
}
