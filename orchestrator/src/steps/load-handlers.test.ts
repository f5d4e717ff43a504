import { writeFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, test } from 'vitest';
import { HandlerModuleError } from './errors.ts';
import { _makeWorkdir, _removeWorkdir, _step, _testContext } from './fixtures/context.ts';
import {
  createStepRegistry,
  loadHandlerModules,
  parseHandlerList,
  rollbackStep,
  runStep,
} from './registry.ts';

const fixtures = join(dirname(fileURLToPath(import.meta.url)), 'fixtures');

let dir: string;
beforeEach(async () => {
  dir = await _makeWorkdir();
});
afterEach(async () => {
  await _removeWorkdir(dir);
});

async function loadError(paths: string[], cwd = fixtures): Promise<HandlerModuleError> {
  const e: unknown = await loadHandlerModules(createStepRegistry(), paths, { cwd }).then(
    () => undefined,
    (error: unknown) => error,
  );
  if (!(e instanceof HandlerModuleError))
    throw new Error(`expected a HandlerModuleError, got ${String(e)}`);
  return e;
}

describe('loadHandlerModules', () => {
  test('registers every handler of an array default export, relative to cwd', async () => {
    const registry = createStepRegistry();
    await loadHandlerModules(registry, ['./greet-handlers.ts'], { cwd: fixtures });
    expect(registry.types()).toEqual([
      'echo',
      'file_write',
      'greet',
      'http',
      'script',
      'shout',
      'sleep',
    ]);

    const ctx = _testContext(dir);
    const step = _step({
      name: 'hi',
      type: 'custom',
      handler: 'greet',
      params: { name: 'Ada', times: 2 },
    });
    const result = await runStep(registry, step, ctx);
    expect(result.outputs).toEqual({ greeted: 'Ada' });
    await rollbackStep(registry, step, result, ctx);
    expect(ctx.linesOf('info')).toEqual(['hello Ada', 'hello Ada', 'goodbye Ada']);
  });

  test('resolves paths against process.cwd() by default', async () => {
    const registry = createStepRegistry();
    await loadHandlerModules(registry, [
      relative(process.cwd(), join(fixtures, 'greet-handlers.ts')),
    ]);
    expect(registry.get('shout')).toBeDefined();
  });

  test('loads a plain JavaScript module exporting one handler without params', async () => {
    // A user's module outside the project cannot import valibot; it may leave params out.
    await writeFile(
      join(dir, 'plain.mjs'),
      `export default {
        type: 'count',
        async execute(params, ctx) {
          ctx.log('info', 'got ' + JSON.stringify(params));
          return { outputs: { keys: String(Object.keys(params).length) } };
        },
      };\n`,
    );
    const registry = createStepRegistry();
    await loadHandlerModules(registry, ['plain.mjs'], { cwd: dir });
    const ctx = _testContext(dir);
    const result = await runStep(
      registry,
      _step({ name: 'c', type: 'custom', handler: 'count', params: { a: 1, b: [2] } }),
      ctx,
    );
    expect(result.outputs).toEqual({ keys: '2' });
    expect(ctx.linesOf('info')).toEqual(['got {"a":1,"b":[2]}']);
  });

  test('loads the same module once when it is named twice', async () => {
    const registry = createStepRegistry();
    await loadHandlerModules(registry, ['greet-handlers.ts', './greet-handlers.ts'], {
      cwd: fixtures,
    });
    expect(registry.get('greet')).toBeDefined();
  });

  describe('bad modules', () => {
    test('a missing file', async () => {
      const e = await loadError(['./nope.js']);
      expect(e.message).toBe(
        `[ORC1402] handler module ./nope.js: not found (looked for ${join(fixtures, 'nope.js')})`,
      );
    });

    test('a module without a default export lists what it exports', async () => {
      const e = await loadError(['no-default.ts']);
      expect(e.message).toContain(
        'has no default export; end it with `export default [myHandler]` (it exports greet)',
      );
    });

    test('a malformed handler, by index, and nothing gets registered', async () => {
      const registry = createStepRegistry();
      const e: unknown = await loadHandlerModules(
        registry,
        ['greet-handlers.ts', 'bad-handler.ts'],
        { cwd: fixtures },
      ).catch((error: unknown) => error);
      expect(e).toBeInstanceOf(HandlerModuleError);
      expect((e as Error).message).toBe(
        '[ORC1402] handler module bad-handler.ts: the default export[1] ("broken") needs "execute": an async function (params, ctx) (found nothing)',
      );
      expect(registry.get('greet')).toBeUndefined();
      expect(registry.get('fine')).toBeUndefined();
    });

    test('a module that throws on import', async () => {
      await writeFile(join(dir, 'boom.mjs'), `throw new Error('missing config');\n`);
      const e = await loadError(['boom.mjs'], dir);
      expect(e.message).toBe(
        '[ORC1402] handler module boom.mjs: cannot be imported: missing config',
      );
      expect(e.cause).toBeInstanceOf(Error);
    });

    test('a syntax error', async () => {
      await writeFile(join(dir, 'syntax.mjs'), `export default {\n`);
      const e = await loadError(['syntax.mjs'], dir);
      expect(e.message).toContain('handler module syntax.mjs: cannot be imported:');
    });

    test('a handler type that is taken, by a built-in or another module', async () => {
      await writeFile(
        join(dir, 'echo.mjs'),
        `export default { type: 'echo', async execute() {} };\n`,
      );
      await writeFile(
        join(dir, 'greet.mjs'),
        `export default [{ type: 'greet', async execute() {} }];\n`,
      );
      expect((await loadError(['echo.mjs'], dir)).message).toContain(
        'exports a handler of type "echo", which is already registered; rename one',
      );
      const e = await loadError([join(fixtures, 'greet-handlers.ts'), 'greet.mjs'], dir);
      expect(e.message).toContain(
        `handler module greet.mjs: exports a handler of type "greet", which ${join(fixtures, 'greet-handlers.ts')} already exports`,
      );
    });

    test('an empty array and a non-object', async () => {
      await writeFile(join(dir, 'empty.mjs'), `export default [];\n`);
      await writeFile(join(dir, 'fn.mjs'), `export default function make() {}\n`);
      expect((await loadError(['empty.mjs'], dir)).message).toContain(
        'exports an empty array of handlers',
      );
      expect((await loadError(['fn.mjs'], dir)).message).toContain(
        'the default export must be an object { type, params, execute }, found a function',
      );
    });
  });
});

describe('parseHandlerList', () => {
  test('splits a comma list and drops blanks', () => {
    expect(parseHandlerList(' ./a.js, b.mjs ,,')).toEqual(['./a.js', 'b.mjs']);
    expect(parseHandlerList(undefined)).toEqual([]);
    expect(parseHandlerList('')).toEqual([]);
  });
});
