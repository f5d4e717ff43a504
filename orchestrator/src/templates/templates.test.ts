import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, test } from 'vitest';
import { stringify } from 'yaml';
import { validateWorkflowFile } from '../plan/load-and-plan.ts';
import type { TemplateContext } from './context.ts';
import { renderValue, TemplateError } from './render.ts';

const tmp = mkdtempSync(join(tmpdir(), 'muster-templates-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const context: TemplateContext = {
  inputs: { version: '1.2.3', tags: ['a', 'b'] },
  env: 'prod',
  run: { id: 'run-1' },
  task: { id: 'deploy:web@web-1', operation: 'deploy', item: 'web', attempt: 1 },
  server: { name: 'web-1', address: '10.0.0.5', labels: { role: 'web' } },
  steps: { build: { outputs: { tag: 'v7' } } },
  operations: {},
  secrets: { db: { password: 'pw-123456' } },
};

function renderError(value: unknown): TemplateError {
  try {
    renderValue(value, context, 'params');
  } catch (e: unknown) {
    if (e instanceof TemplateError) return e;
    throw e;
  }
  throw new Error('expected a TemplateError');
}

describe('templates', () => {
  describe('rendering', () => {
    test('renders strings deep in params, and leaves the rest alone', () => {
      expect(
        renderValue(
          {
            args: [
              '--version',
              '{{ inputs.version }}',
              '{% for t in inputs.tags %}{{ t }};{% endfor %}',
            ],
            env: {
              TAG: '{{ steps.build.outputs.tag }}',
              HOST: '{{ server.labels.role }}-{{ env }}',
            },
            n: 3,
            html: '<b>&{{ run.id }}</b>',
          },
          context,
          'params',
        ),
      ).toEqual({
        args: ['--version', '1.2.3', 'a;b;'],
        env: { TAG: 'v7', HOST: 'web-prod' },
        n: 3,
        html: '<b>&run-1</b>',
      });
    });

    test('a missing name fails with the param path and what is missing', () => {
      expect(renderError({ args: ['{{ inputs.nope }}'] }).message).toBe(
        '[ORC1921] params.args[0]: input "nope" has no value; give it with --set nope=… or a default',
      );
      expect(renderError('{{ steps.build.outputs.sha }}').message).toContain(
        'step "build" published no output "sha"; its outputs: tag',
      );
      expect(renderError('{{ steps.test.outputs.x }}').message).toContain(
        'no earlier step named "test" has run in this task; earlier steps: build',
      );
      expect(renderError('{{ secrets.db.user }}').message).toContain(
        'no secret "db.user"; secrets at that level: password',
      );
    });

    test('a syntax error says where', () => {
      expect(renderError('{{ inputs.version }').message).toContain('line 1, column');
    });
  });

  describe('checks at validate time', () => {
    async function problems(workflow: Record<string, unknown>) {
      const file = join(tmp, `${Math.random().toString(36).slice(2)}.yaml`);
      writeFileSync(file, stringify(workflow));
      const result = await validateWorkflowFile(file);
      return result.problems.map(
        (p) => `${p.line ?? '?'} ${p.path}: ${p.message}${p.hint ? ` (${p.hint})` : ''}`,
      );
    }
    const script = (name: string, ...args: string[]) => ({
      name,
      type: 'script',
      params: { command: 'echo', args },
    });
    const base = {
      name: 'wf',
      inputs: { version: { type: 'string', default: '1' } },
      servers: [{ name: 'web-1', labels: { role: 'web' } }],
    };

    test('unknown inputs, later steps, unknown steps and server facts', async () => {
      const found = await problems({
        ...base,
        operations: [
          {
            id: 'deploy',
            type: 'update',
            target: 'server',
            steps: [
              script(
                'a',
                '{{ inputs.verison }}',
                '{{ steps.b.outputs.x }}',
                '{{ steps.zz.outputs.x }}',
              ),
              script('b', '{{ server.labels.zone }}', '{{ server.address }}', '{{ foo }}'),
            ],
          },
        ],
      });
      expect(found).toEqual([
        expect.stringMatching(
          /^\d+ operations\[0\]\.steps\[0\]\.params\.args\[0\]: \{\{ inputs\.verison \}\} names input "verison", which does not exist \(known: version\) \(did you mean "version"\?\)$/,
        ),
        expect.stringContaining(
          'operations[0].steps[0].params.args[1]: {{ steps.b.outputs.x }} reads step "b", which runs after this one',
        ),
        expect.stringContaining(
          'operations[0].steps[0].params.args[2]: {{ steps.zz.outputs.x }} names step "zz", which does not exist',
        ),
        expect.stringContaining(
          'operations[0].steps[1].params.args[0]: {{ server.labels.zone }} names label of server "web-1" "zone", which does not exist (known: role)',
        ),
        expect.stringContaining(
          'operations[0].steps[1].params.args[1]: {{ server.address }}: server "web-1" has no address',
        ),
        expect.stringContaining(
          'operations[0].steps[1].params.args[2]: {{ foo }} names variable "foo", which does not exist',
        ),
      ]);
    });

    test('an operation reads the outputs of those it waits for through others, not later ones', async () => {
      const op = (id: string, depends_on: string[], reads: string) => ({
        id,
        type: 'update',
        target: 'cluster',
        items: ['x'],
        depends_on,
        steps: [script('s', reads)],
      });
      const found = await problems({
        ...base,
        operations: [
          op('one', [], '{{ operations.three.outputs.v }}'),
          op('two', ['one'], 'ok'),
          op('three', ['two'], '{{ operations.one.outputs.v }}'),
        ],
      });
      expect(found).toEqual([
        expect.stringContaining(
          'reads operation "three", which operation "one" does not depend on',
        ),
      ]);
    });

    test('operations not depended on, servers of cluster tasks, secrets, syntax', async () => {
      const found = await problems({
        ...base,
        secrets: { provider: 'env', env: ['API_TOKEN'] },
        operations: [
          {
            id: 'one',
            type: 'update',
            target: 'cluster',
            items: ['x'],
            steps: [script('s', 'ok')],
          },
          {
            id: 'two',
            type: 'update',
            target: 'cluster',
            items: ['x'],
            steps: [
              script(
                's',
                '{{ operations.one.outputs.v }}',
                '{{ server.name }}',
                '{{ secrets.API_TOKN }}',
                '{{ inputs.version }',
              ),
            ],
          },
        ],
      });
      expect(found).toEqual([
        expect.stringContaining(
          'args[0]: {{ operations.one.outputs.v }} reads operation "one", which operation "two" does not depend on, so its outputs may not exist yet (add "one" to depends_on of "two")',
        ),
        expect.stringContaining(
          'args[1]: {{ server.name }} reads a server fact, but the tasks of operation "two" run on no server',
        ),
        expect.stringContaining(
          'args[2]: {{ secrets.API_TOKN }} names secret "API_TOKN", which does not exist (known: API_TOKEN) (did you mean "API_TOKEN"?)',
        ),
        expect.stringContaining('args[3]: invalid template: line 1, column'),
      ]);
    });

    test('a template in shell script text is refused; as an argument it is fine', async () => {
      const op = (steps: unknown[]) => ({
        id: 'one',
        type: 'update',
        target: 'cluster',
        items: ['x'],
        steps,
      });
      expect(
        await problems({
          ...base,
          operations: [
            op([
              {
                name: 'a',
                type: 'script',
                params: { command: 'deploy {{ inputs.version }}', shell: true },
              },
              {
                name: 'b',
                type: 'script',
                params: { command: 'bash', args: ['-c', 'deploy {{ inputs.version }}'] },
              },
              {
                name: 'c',
                type: 'script',
                params: {
                  command: 'sh',
                  args: ['-c', 'deploy "$1"', 'sh', '{{ inputs.version }}'],
                },
              },
              {
                name: 'd',
                type: 'script',
                params: { command: 'deploy "$1"', shell: true, args: ['{{ inputs.version }}'] },
              },
            ]),
          ],
        }),
      ).toEqual([
        expect.stringContaining(
          'operations[0].steps[0].params.command: a template in shell script text puts its value into the script unquoted',
        ),
        expect.stringContaining(
          'operations[0].steps[1].params.args[1]: a template in shell script text',
        ),
      ]);
    });

    test('paths into nested params, odd keys, rollbacks and taskserv steps', async () => {
      const found = await problems({
        ...base,
        taskservs: [
          {
            name: 'svc',
            install: [{ name: 'get', type: 'echo', params: { message: '{{ inputs.nope }}' } }],
            uninstall: [{ name: 'drop', type: 'echo', params: { message: '{{ nope2 }}' } }],
          },
        ],
        servers: [{ name: 'web-1', labels: { role: 'web' }, taskservs: ['svc'] }],
        operations: [
          {
            id: 'one',
            type: 'update',
            target: 'server',
            steps: [
              {
                name: 'a',
                type: 'custom',
                handler: 'x',
                params: {
                  env: { 'MY VAR': '{{ nope3 }}', plain: 'fine', $ref: '{{ nope6 }}' },
                  args: ['ok', ['{{ nope4 }}']],
                },
                rollback: {
                  type: 'custom',
                  handler: 'x',
                  params: { args: ['{{ steps.a.outputs.x }}', '{{ nope5 }}'] },
                },
              },
            ],
          },
          { id: 'two', type: 'create', target: 'taskserv', items: ['svc'], depends_on: ['one'] },
        ],
      });
      expect(found.map((f) => f.replace(/^\S+ /, ''))).toEqual(
        [
          'operations[0].steps[0].params.env["MY VAR"]: {{ nope3 }} names variable "nope3", which does not exist',
          // Spelt as every other problem path: `$` and `#` keys bare, as formatPath writes them.
          'operations[0].steps[0].params.env.$ref: {{ nope6 }} names variable "nope6", which does not exist',
          'operations[0].steps[0].params.args[1][0]: {{ nope4 }} names variable "nope4", which does not exist',
          'operations[0].steps[0].rollback.params.args[1]: {{ nope5 }} names variable "nope5", which does not exist',
          'taskservs[0].install[0].params.message: {{ inputs.nope }} names input "nope", which does not exist (known: version)',
          'taskservs[0].uninstall[0].params.message: {{ nope2 }} names variable "nope2", which does not exist',
        ].map((line) => expect.stringContaining(line)),
      );
    });

    test('a template that reads secrets needs a secrets block; valid ones pass', async () => {
      expect(
        await problems({
          ...base,
          operations: [
            {
              id: 'one',
              type: 'update',
              target: 'cluster',
              items: ['x'],
              steps: [script('s', '{{ secrets.x }}')],
            },
          ],
        }),
      ).toEqual([expect.stringContaining('reads a secret, but the workflow has no secrets block')]);
      expect(
        await problems({
          ...base,
          operations: [
            {
              id: 'one',
              type: 'update',
              target: 'cluster',
              items: ['x'],
              steps: [script('s', '{{ run.id }} {{ task.item }} {{ env }}')],
            },
            {
              id: 'two',
              type: 'update',
              target: 'server',
              depends_on: ['one'],
              steps: [
                script('a', '{{ operations.one.outputs.v }} {{ server.labels.role }}'),
                script('b', '{{ steps.a.outputs.y | default("none") }}'),
              ],
            },
          ],
        }),
      ).toEqual([]);
    });
  });
});
